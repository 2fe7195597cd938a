# The talk's compute_total (seeds/002), as written there, over a has-one
# path; the annotations are not evaluated (CPython runs it with the chalk
# stand-in).
from __future__ import annotations

from chalk.features import features, online


@features
class Locale:
    id: int
    sales_tax_rate: float | None


@features
class Transaction:
    id: int
    subtotal: float
    discount: float | None
    locale_id: Locale.id
    locale: Locale
    taxable: bool
    total: float | None


@online
def compute_total(
    subtotal: Transaction.subtotal,           # float
    discount: Transaction.discount,           # float | None
    tax_rate: Transaction.locale.sales_tax_rate, # float
    is_taxable: Transaction.taxable,         # bool
) -> Transaction.total:

    if discount is not None:
        # Apply any discount, but don't allow it to become negative.
        subtotal = max(subtotal - discount, 0.0)

    if not is_taxable or tax_rate is None:
        return subtotal

    return subtotal * (1.0 + tax_rate)
