-- resolves: User
-- source: db
select id from users
