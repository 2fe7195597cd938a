-- resolves: Review
-- source: marketplace
select
    id,
    created_at,
    review_headline,
    review_body,
    star_rating,
    user_hid as user_id,
    item_id
from marketplace_reviews
