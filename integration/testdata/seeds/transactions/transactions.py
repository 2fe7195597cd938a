# Seed 004 (Aggregations), the transactions example as written.
from chalk import Windowed, windowed
from chalk.features import DataFrame, _, features
from datetime import datetime

@features
class Transaction:
    id: int
    user_id: "User.id"
    amount: float
    at: datetime

@features
class User:
    id: int
    transactions: DataFrame[Transaction]
    total_spend: Windowed[float] = windowed(
        "30d", "60d", "90d",
        default=0,
        expression=_.transactions[
            _.amount,
            _.at > _.chalk_window
        ].sum(),
        materialization={"bucket_duration": "1d"},
    )
