-- resolves: Review
-- source: db
select id, created_at, user_id, body, sentiment_from_llm from reviews
