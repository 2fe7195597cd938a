# Seed 000 (the marketplace tutorial): Item and UserItem as written. The
# seed does not show ItemPrice, nor where User.average_purchase_price comes
# from: ItemPrice is declared here with the features Item uses, and User
# takes average_purchase_price from its SQL resolver.
from datetime import datetime

import chalk.functions as F
from chalk.features import DataFrame, _, feature, features


@features
class ItemPrice:
    id: int
    item_id: "Item.id"
    type: str
    value: float | None
    created_at: datetime


@features
class User:
    id: str
    average_purchase_price: float


@features
class Item:
    id: str
    title: str
    genre_from_llm: str = feature(max_staleness="infinity")
    price: float
    prices: "DataFrame[ItemPrice]"
    times_purchased: int = _.prices[_.type == "purchase"].count()
    average_price: float | None = _.prices[_.value].mean()
    most_recent_price: float | None = _.prices[_.value].max_by(_.created_at)
    is_discounted: bool = _.price < _.average_price


@features
class UserItem:
    id: str = _.user_id + "-" + _.item_id
    user_id: "User.id"
    user: "User"
    item_id: "Item.id"
    item: "Item"
    # import chalk.functions as F
    price_diff: float = F.abs(_.item.most_recent_price - _.user.average_purchase_price)
    price_diff_ratio: float = _.price_diff / _.user.average_purchase_price
    affordability_cap: float = F.sigmoid(_.price_diff_ratio)
    price_fit: float = 1 / (1 + _.price_diff_ratio**2)
