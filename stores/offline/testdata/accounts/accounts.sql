-- resolves: Account
-- source: db
select id, name, score, tier from accounts
