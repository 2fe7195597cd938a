# Seed 000 (the marketplace tutorial): User and Review as written, with the
# reviews DataFrame and its aggregations.
from datetime import datetime

from chalk import Windowed, windowed
from chalk.features import DataFrame, _, feature, features


@features
class Review:
    id: int
    created_at: datetime
    review_headline: str
    review_body: str
    star_rating: int = feature(min=1, max=5)
    normalized_rating: float
    # user_id: str
    user_id: User.id
    user: User


@features(owner="ml-core@chalk.ai")
class User:
    id: str
    first_name: str
    last_name: str
    full_name: str = _.first_name + " " + _.last_name
    # computed after we've fetched first and last name
    reviews: DataFrame[Review] # has-many relationship
    average_rating_given: float = _.reviews.star_rating.mean()
    review_count: Windowed[int] = windowed(
        "7d",
        "30d",
        "60d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
    )
