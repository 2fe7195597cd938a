# The marketplace of the tutorial: users review and buy items that sellers
# list. fletch parses this file; it is never executed.
from datetime import date, datetime

import chalk.functions as F
from chalk import Windowed, windowed
from chalk.features import DataFrame, FeatureTime, _, feature, features, online


@features(owner="ml-core@example.com", tags=["marketplace"])
class User:
    id: str
    created_at: datetime
    first_name: str
    last_name: str
    email: str | None
    birthday: date | None
    full_name: str = _.first_name + " " + _.last_name
    # computed after first and last name are fetched

    reviews: DataFrame[Review]
    purchases: "DataFrame[ItemPrice]"

    average_rating_given: float | None = _.reviews.star_rating.mean()
    review_count: Windowed[int] = windowed(
        "7d",
        "30d",
        "60d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
        materialization={"bucket_duration": "1d"},
    )
    average_purchase_price: float | None = _.purchases[_.type == "purchase", _.value].mean()
    total_spend: Windowed[float] = windowed(
        "30d",
        "90d",
        expression=_.purchases[_.value, _.type == "purchase", _.created_at > _.chalk_window].sum(),
        default=0,
    )
    name_email_sim: float | None = F.jaccard_similarity(a=F.lower(_.full_name), b=F.lower(_.email))


@features
class Seller:
    id: str
    name: str
    joined_at: datetime
    items: "DataFrame[Item]"
    item_count: int = _.items.count()


@features
class Review:
    id: int
    created_at: FeatureTime
    review_headline: str | None
    review_body: str | None
    star_rating: int = feature(min=1, max=5, description="1 to 5 stars")
    user_id: User.id
    user: User
    item_id: "Item.id"
    item: "Item"
    # computed by the tutorial's get_normalized_rating resolver below
    normalized_rating: float | None
    is_positive: bool = _.star_rating >= 4


# The tutorial's Python resolver: a Bayesian average that pulls sparse items
# towards their mean rating. fletch compiles its body to an expression
# (docs/PYTHON.md); `fletch plan` shows it.
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


@features
class Item:
    id: str
    title: str
    seller_id: Seller.id
    seller: Seller
    genre_from_llm: str | None = feature(max_staleness="infinity")
    price: float
    prices: "DataFrame[ItemPrice]"
    reviews: "DataFrame[Review]"
    times_purchased: int = _.prices[_.type == "purchase"].count()
    average_price: float | None = _.prices[_.value].mean()
    most_recent_price: float | None = _.prices[_.value].max_by(_.created_at)
    lowest_price: float | None = F.min_by(_.prices[_.value], sort=_.value)
    is_discounted: bool | None = _.price < _.average_price
    average_rating: float | None = _.reviews[_.star_rating].mean()
    rating_stddev: float | None = _.reviews[_.star_rating].std()
    total_reviews: int = _.reviews.count()
    distinct_reviewers: int = _.reviews[_.user_id].approx_count_distinct()
    most_recent_review_rating: int | None = _.reviews[_.star_rating].max_by(_.created_at)
    review_count: Windowed[int] = windowed(
        "7d",
        "30d",
        "90d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
    )
    purchase_count: Windowed[int] = windowed(
        "1d",
        "7d",
        "30d",
        expression=_.prices[_.type == "purchase", _.created_at > _.chalk_window].count(),
        default=0,
    )
    purchase_value: Windowed[float] = windowed(
        "1d",
        "7d",
        "30d",
        expression=_.prices[_.value, _.type == "purchase", _.created_at > _.chalk_window].sum(),
    )
    max_purchase_price: Windowed[float | None] = windowed(
        "7d",
        "30d",
        expression=_.prices[_.value, _.type == "purchase", _.created_at > _.chalk_window].max(),
    )
    # a windowed feature built from its siblings, window by window
    average_purchase_value: Windowed[float | None] = windowed(
        "1d",
        "7d",
        "30d",
        expression=F.safe_divide(_.purchase_value[_.chalk_window], _.purchase_count[_.chalk_window]),
    )


@features
class ItemPrice:
    id: int
    item_id: Item.id
    item: Item
    user_id: "User.id"
    type: str
    value: float | None
    created_at: FeatureTime


@features
class UserItem:
    id: str = _.user_id + "-" + _.item_id
    user_id: "User.id"
    user: "User"
    item_id: "Item.id"
    item: "Item"

    price_diff: float | None = F.abs(_.item.most_recent_price - _.user.average_purchase_price)
    price_diff_ratio: float | None = _.price_diff / _.user.average_purchase_price
    affordability_cap: float | None = F.sigmoid(_.price_diff_ratio)
    price_fit: float | None = 1 / (1 + _.price_diff_ratio**2)
