-- resolves: Document
-- source: db
select id from documents
