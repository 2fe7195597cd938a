-- resolves: Transaction
-- source: db
select id, user_id, total, created_at from transactions
