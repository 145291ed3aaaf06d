-- name: facility_upsert
insert into facility (code, name, tier, parent_id)
values ($1, $2, $3, (select id from facility where code = $4))
on conflict (code) do update
    set name = excluded.name, tier = excluded.tier, parent_id = excluded.parent_id,
        updated_at = now()
returning id;

-- name: facility_ae_owner
select f.code from facility_ae a join facility f on f.id = a.facility_id where a.ae_title = $1;

-- name: facility_ae_delete_others
delete from facility_ae where facility_id = $1 and not (ae_title = any($2::text[]));

-- name: facility_ae_insert
insert into facility_ae (ae_title, facility_id) values ($1, $2)
on conflict (ae_title) do nothing;

-- name: user_upsert
insert into app_user (username, display_name, role, facility_id, specialties, password_hash)
values ($1, $2, $3, (select id from facility where code = $4), $5, $6)
on conflict (username) do update
    set display_name = excluded.display_name, role = excluded.role,
        facility_id = excluded.facility_id, specialties = excluded.specialties,
        password_hash = coalesce(excluded.password_hash, app_user.password_hash),
        active = true, updated_at = now()
returning id;

-- name: facility_count
select count(*) from facility;

-- name: facility_by_ae
select f.id, f.code, f.name, f.tier, f.parent_id
from facility_ae a join facility f on f.id = a.facility_id
where a.ae_title = $1;

-- name: facility_by_id
select id, code, name, tier, parent_id from facility where id = $1;

-- name: facility_chain
with recursive up(id, code, name, tier, parent_id, depth) as (
    select id, code, name, tier, parent_id, 0 from facility where id = $1
    union all
    select f.id, f.code, f.name, f.tier, f.parent_id, up.depth + 1
    from facility f join up on f.id = up.parent_id
)
select id, code, name, tier, parent_id from up order by depth;

-- name: facility_list
select id, code, name, tier, parent_id from facility order by id;

-- name: user_by_username
select id, username, display_name, role, facility_id, specialties, active
from app_user where username = $1;

-- name: user_list
select id, username, display_name, role, facility_id, specialties, active
from app_user order by id;

-- name: user_password_hash
select id, password_hash from app_user where username = $1 and active;

-- name: token_insert
insert into api_token (token_sha256, user_id, expires_at) values ($1, $2, $3);

-- name: user_by_token
select u.id, u.username, u.display_name, u.role, u.facility_id, u.specialties, u.active
from api_token t join app_user u on u.id = t.user_id
where t.token_sha256 = $1 and t.revoked_at is null
  and (t.expires_at is null or t.expires_at > now()) and u.active;

-- name: ae_title_list
select ae_title from facility_ae order by ae_title;

-- name: audit_insert
insert into audit (user_id, action, object_type, object_id, detail)
values ($1, $2, $3, $4, coalesce($5::jsonb, '{}'::jsonb));

-- name: audit_of_object
select user_id, action, at from audit where object_type = $1 and object_id = $2 order by id;

-- name: facility_id_by_code
select id from facility where code = $1;
