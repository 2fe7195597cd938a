-- resolves: User
-- source: marketplace
-- owner: ml-core@example.com
select
    hid as id,
    created_at,
    first_name,
    last_name,
    email,
    birthday
from marketplace_users
