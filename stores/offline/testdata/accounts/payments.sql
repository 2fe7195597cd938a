-- resolves: Payment
-- source: db
select id, account_id, amount, paid_at from payments
