# Seed 002 (the design notes): Transaction and User as written.
from datetime import datetime

import chalk.functions as F
from chalk.features import DataFrame, _, features


@features
class Transaction:
    id: int

 
    # user_id: int
    user_id: User.id
    user: User

    total: float
    is_expensive: bool = _.total > 1000
    created_at: datetime

@features
class User:
    id: id
    name: str

    # inferred with Transaction.user_id
    transactions: DataFrame[Transaction]

    total_spend: float = _.transactions[_.total].sum()
    most_recent_transaction: float = F.max_by(
        _.transactions[_.total],
        sort=_.created_at,
    )
