-- resolves: Seller
-- source: marketplace
select
    id,
    name,
    joined_at
from marketplace_sellers
