-- resolves: User
-- source: db
select id, name from users
