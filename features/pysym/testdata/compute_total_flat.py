# compute_total over a transaction's own columns (the tax rate copied onto
# it), for the benchmark: the body is the talk's.
from __future__ import annotations

from chalk.features import features, online


@features
class Transaction:
    id: int
    subtotal: float
    discount: float | None
    sales_tax_rate: float | None
    taxable: bool
    total: float | None


@online
def compute_total(
    subtotal: Transaction.subtotal,  # float
    discount: Transaction.discount,  # float | None
    tax_rate: Transaction.sales_tax_rate,  # float
    is_taxable: Transaction.taxable,  # bool
) -> Transaction.total:

    if discount is not None:
        # Apply any discount, but don't allow it to become negative.
        subtotal = max(subtotal - discount, 0.0)

    if not is_taxable or tax_rate is None:
        return subtotal

    return subtotal * (1.0 + tax_rate)
