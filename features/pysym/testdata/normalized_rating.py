# The tutorial's get_normalized_rating (seeds/000), first version: over the
# item's all-time review count.
from __future__ import annotations

from chalk.features import DataFrame, _, features, online


@features
class Item:
    id: int
    reviews: DataFrame[Review]
    total_reviews: int = _.reviews.count()
    average_rating: float | None = _.reviews[_.star_rating].mean()


@features
class Review:
    id: int
    item_id: Item.id
    item: Item
    star_rating: int
    normalized_rating: float | None


@online
def get_normalized_rating(
    review_rating: Review.star_rating,
    review_count_across_all_items: Review.item.total_reviews,
    average_rating_across_all_items: Review.item.average_rating,
) -> Review.normalized_rating:
    minimum_reviews: float = review_count_across_all_items / 10
    return (
        review_count_across_all_items
        / (review_count_across_all_items + minimum_reviews)
    ) * review_rating + (
        minimum_reviews / (review_count_across_all_items + minimum_reviews)
    ) * average_rating_across_all_items
