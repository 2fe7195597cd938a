-- resolves: ItemPrice
-- source: marketplace
select
    id,
    item_id,
    buyer_hid as user_id,
    kind as type,
    value,
    created_at
from marketplace_item_prices
