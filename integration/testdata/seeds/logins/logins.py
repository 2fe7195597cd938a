# Seed 004 (Aggregations), the failed-logins example as written.
from chalk import Windowed, windowed
from chalk.features import DataFrame, _, features
from datetime import datetime

@features
class LoginAttempt:
    id: int
    user: "User.id"
    status: str
    at: datetime

@features
class User:
    id: int
    login_attempts: DataFrame[LoginAttempt]
    num_failed_logins: Windowed[int] = windowed(
        "10m", "30m", "1d",
        max_staleness="10m",
        expression=_.login_attempts[
            _.status=="failed",
            _.at > _.chalk_window
        ].count(),
        default=0,
    )
