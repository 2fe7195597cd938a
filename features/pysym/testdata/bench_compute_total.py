# CPython's side of BenchmarkComputeTotal: compute_total called row by row
# over the same kind of 1M rows (a discount on half, no tax rate on a
# tenth, a fifth not taxable), the best of 3 runs in CPU time (the machine
# may be shared). Prints ns per row.
import random
import sys
import time


def compute_total(subtotal, discount, tax_rate, is_taxable):
    if discount is not None:
        subtotal = max(subtotal - discount, 0.0)
    if not is_taxable or tax_rate is None:
        return subtotal
    return subtotal * (1.0 + tax_rate)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
r = random.Random(1)
rows = [
    (r.random() * 200, r.random() * 20 if i % 2 else None, None if i % 10 == 0 else 0.05 + r.random() * 0.1, i % 5 != 0)
    for i in range(n)
]
best = None
for _ in range(3):
    t = time.process_time()
    out = [compute_total(s, d, tr, tx) for s, d, tr, tx in rows]
    dt = time.process_time() - t
    best = dt if best is None else min(best, dt)
print(f"{best / n * 1e9:.1f}")
