# Seed 002 (the talk): compute_total as written there (its line numbers
# left out), over the Transaction and Locale its parameters name.
from chalk.features import features, online


@features
class Locale:
    id: str
    sales_tax_rate: float | None


@features
class Transaction:
    id: int
    subtotal: float
    discount: float | None
    taxable: bool
    locale_id: Locale.id
    locale: Locale
    total: float


@online
def compute_total(
    subtotal: Transaction.subtotal,           # float
    discount: Transaction.discount,           # float | None
    tax_rate: Transaction.locale.sales_tax_rate, # float
    is_taxable: Transaction.taxable,         # bool
) → Transaction.total:

    if discount is not None:
        # Apply any discount, but don't allow it to become negative.
        subtotal = max(subtotal - discount, 0.0)

    if not is_taxable or tax_rate is None:
        return subtotal

    return subtotal * (1.0 + tax_rate)
