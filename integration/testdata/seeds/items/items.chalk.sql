-- resolves: Item
-- source: db
select id, title, genre_from_llm, price from items
