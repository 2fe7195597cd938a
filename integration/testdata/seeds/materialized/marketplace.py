# Seed 000 (the marketplace tutorial): the caching and materialization
# snippets as written.
from datetime import datetime

from chalk import Windowed, windowed
from chalk.features import DataFrame, _, feature, features, MaterializationWindowConfig


@features
class Review:
    id: int
    created_at: datetime
    user_id: "User.id"
    body: str
    sentiment_from_llm: str = feature(max_staleness="infinity") # or 30d for a credit score


@features
class User:
    id: str
    reviews: DataFrame[Review]
    review_count: Windowed[int] = windowed(
        "7d",
        "30d",
        "60d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
        materialization=MaterializationWindowConfig(
            bucket_duration="3d",
            backfill_schedule="0 0 * * *",
        )
    )
    review_count_fine: Windowed[int] = windowed(
        "1d",
        "60d",
        "365d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
        materialization=MaterializationWindowConfig(
            bucket_durations={
                # 10-minute buckets for the 1d window
                "10m": "1d",
                # 5-day buckets for 60d and 365d windows
                "5d": ["60d", "365d"],
            },
        )
    )
