-- resolves: LoginAttempt
-- source: db
select id, user_id as "user", status, "at" from login_attempts
