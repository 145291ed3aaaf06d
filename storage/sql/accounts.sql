-- name: tokens_of_user
-- A user's tokens that still work, the newest first.
select t.id, u.username, t.kind, t.created_at, t.expires_at
from api_token t join app_user u on u.id = t.user_id
where t.user_id = $1 and t.revoked_at is null and t.expires_at > now()
order by t.created_at desc, t.id desc;

-- name: tokens_in_admin_scope
-- The working tokens of the users of an administrator's network ($1), optionally of one
-- user ($2).
select t.id, u.username, t.kind, t.created_at, t.expires_at
from app_user a
join app_user u on u.facility_id in (select facility_subtree(a.facility_id))
join api_token t on t.user_id = u.id
where a.id = $1 and a.role = 'admin' and a.active
  and t.revoked_at is null and t.expires_at > now()
  and ($2::text is null or u.username = $2)
order by u.username, t.created_at desc, t.id desc;

-- name: token_revoke_own
update api_token set revoked_at = now()
where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()
returning id;

-- name: token_revoke_in_admin_scope
update api_token t set revoked_at = now()
from app_user a, app_user u
where t.id = $1 and a.id = $2 and a.role = 'admin' and a.active and u.id = t.user_id
  and u.facility_id in (select facility_subtree(a.facility_id))
  and t.revoked_at is null and t.expires_at > now()
returning t.id;

-- name: tokens_revoke_user
-- Every token of a user, but the one ($2, its SHA-256) the change was made with.
update api_token set revoked_at = now()
where user_id = $1 and revoked_at is null and ($2::bytea is null or token_sha256 <> $2);

-- name: tokens_still_valid
-- Which of these tokens (SHA-256) still let their user in.
select t.token_sha256
from api_token t join app_user u on u.id = t.user_id join facility f on f.id = u.facility_id
where t.token_sha256 = any($1::bytea[]) and t.revoked_at is null and t.expires_at > now()
  and u.active and f.active;

-- name: user_set_active
update app_user set active = $2, updated_at = now() where id = $1;

-- name: user_set_password
update app_user
set password_hash = $2, demo_password = false, demo_checked = true, updated_at = now()
where id = $1;

-- name: user_password_hash_by_id
select password_hash from app_user where id = $1 and active;

-- name: password_links_drop
-- A new link replaces the user's unused ones.
update password_link set used_at = now() where user_id = $1 and used_at is null;

-- name: password_link_insert
insert into password_link (link_sha256, user_id, created_by, expires_at)
values ($1, $2, $3, $4);

-- name: password_link_use
-- A link works once, before it expires, for a user still active.
update password_link l set used_at = now()
from app_user u
where l.link_sha256 = $1 and l.used_at is null and l.expires_at > now()
  and u.id = l.user_id and u.active
returning l.user_id, u.username;

-- name: password_link_user
select u.username
from password_link l join app_user u on u.id = l.user_id
where l.link_sha256 = $1 and l.used_at is null and l.expires_at > now() and u.active;

-- name: user_unlock
update app_user set signin_unlocked_at = now() where id = $1;

-- name: user_unlocked_at
select max(signin_unlocked_at) from app_user where lower(username) = lower($1);

-- name: demo_password_users
-- Active users whose password is the public demo one.
select username from app_user where demo_password and active order by username;

-- name: demo_tokens_live
select count(*) from api_token
where kind = 'demo' and revoked_at is null and expires_at > now();

-- name: demo_tokens_revoke
update api_token set revoked_at = now() where kind = 'demo' and revoked_at is null;

-- name: users_in_admin_scope
select u.id, u.username, u.display_name, u.role, u.facility_id, u.specialties, u.active,
       u.language, f.code as facility_code, u.password_hash is not null as has_password
from app_user a
join app_user u on u.facility_id in (select facility_subtree(a.facility_id))
join facility f on f.id = u.facility_id
where a.id = $1 and a.role = 'admin' and a.active
order by f.code, u.username;

-- name: demo_unchecked_users
-- Active users whose hash was never checked against the demo password (imported before it
-- was).
select id, username, password_hash from app_user
where password_hash is not null and not demo_checked and active
order by id;

-- name: demo_mark_checked
-- Unless the password changed meanwhile.
update app_user set demo_checked = true, demo_password = $3
where id = $1 and password_hash = $2;
