-- resolves: Transaction
-- source: db
select id, subtotal, discount, taxable, locale_id from transactions
