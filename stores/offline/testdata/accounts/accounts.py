from chalk.features import features, feature, DataFrame, _, windowed, Windowed, FeatureTime

@features
class Account:
    id: int
    name: str | None
    score: float
    label: str = _.name + "!"
    payments: "DataFrame[Payment]"
    spent: Windowed[float] = windowed("1d", default=0, expression=_.payments[_.amount, _.paid_at > _.chalk_window].sum())
    tier: str | None = feature(etl_offline_to_online=True)

@features
class Payment:
    id: int
    account_id: Account.id
    amount: float
    paid_at: FeatureTime
