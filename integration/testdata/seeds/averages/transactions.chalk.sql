-- resolves: Transaction
-- source: db
select id, user_id, amount, "at" from transactions
