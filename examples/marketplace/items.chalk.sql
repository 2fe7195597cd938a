-- resolves: Item
-- source: marketplace
select
    id,
    title,
    seller_id,
    genre as genre_from_llm,
    list_price as price
from marketplace_items
