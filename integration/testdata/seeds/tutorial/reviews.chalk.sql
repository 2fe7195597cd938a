-- resolves: Review
-- source: postgres
select id, created_at, review_headline, review_body, star_rating, normalized_rating, user_id from reviews
