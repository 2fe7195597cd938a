-- resolves: Revision
-- source: db
select id, document_id, size_bytes, timestamp from revisions
