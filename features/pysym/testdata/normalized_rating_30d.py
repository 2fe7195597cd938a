# The tutorial's second get_normalized_rating (seeds/000): the same body
# over the item's windowed review count of the past month.
from __future__ import annotations

from datetime import datetime

from chalk import Windowed, windowed
from chalk.features import DataFrame, _, features, online


@features
class Item:
    id: int
    reviews: DataFrame[Review]
    review_count: Windowed[int] = windowed("7d", "30d", expression=_.reviews[_.created_at > _.chalk_window].count())
    average_rating: float | None = _.reviews[_.star_rating].mean()


@features
class Review:
    id: int
    item_id: Item.id
    item: Item
    star_rating: int
    created_at: datetime
    normalized_rating: float | None


@online
def get_normalized_rating(
    review_rating: Review.star_rating,
    review_count_past_month: Review.item.review_count["30d"],
    average_rating_across_all_items: Review.item.average_rating,
) -> Review.normalized_rating:
    minimum_reviews: float = review_count_past_month / 10
    return (
        review_count_past_month
        / (review_count_past_month + minimum_reviews)
    ) * review_rating + (
        minimum_reviews / (review_count_past_month + minimum_reviews)
    ) * average_rating_across_all_items
