-- resolves: User
-- source: db
select id, average_purchase_price from users
