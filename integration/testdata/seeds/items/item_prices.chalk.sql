-- resolves: ItemPrice
-- source: db
select id, item_id, type, value, created_at from item_prices
