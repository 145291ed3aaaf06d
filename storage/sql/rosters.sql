-- name: pools_in_scope
-- The reading pools at facilities of the administrator's network ($1), with their members.
select p.id, p.code, p.name, p.specialty, p.facility_id, f.code as facility_code,
       f.name as facility_name, p.active,
       coalesce(array(select u.username from reading_pool_member m
                      join app_user u on u.id = m.user_id
                      where m.pool_id = p.id order by u.username), '{}') as members
from app_user a
join reading_pool p on p.facility_id in (select facility_subtree(a.facility_id))
join facility f on f.id = p.facility_id
where a.id = $1 and a.role = 'admin' and a.active
  and ($2::text is null or p.code = $2)
order by f.id, p.code;

-- name: pool_by_code
select p.id, p.facility_id, p.specialty, p.active from reading_pool p where p.code = $1;

-- name: pool_code_taken
select exists (select 1 from reading_pool where code = $1);

-- name: pool_insert
insert into reading_pool (code, name, specialty, facility_id) values ($1, $2, $3, $4)
returning id;

-- name: pool_update
update reading_pool
set name = $2, specialty = $3, facility_id = $4, active = $5, updated_at = now()
where id = $1;

-- name: pool_members_delete
delete from reading_pool_member where pool_id = $1;

-- name: pool_member_insert
insert into reading_pool_member (pool_id, user_id) values ($1, $2) on conflict do nothing;

-- name: roster_users
-- Users by username with their weekly shifts (one row per shift; none: a null shift).
select u.id, u.username, u.display_name, d.weekdays, d.starts, d.ends
from app_user u left join duty_shift d on d.user_id = u.id
where u.username = any($1::text[])
order by u.username, d.id;

-- name: roster_exceptions
-- The duty exceptions of users ($1, usernames) on local dates from $2 to $3 (inclusive).
select e.id, u.username, e.day, e.exception_kind as kind, e.starts, e.ends
from duty_exception e join app_user u on u.id = e.user_id
where u.username = any($1::text[]) and e.day between $2 and $3
order by e.day, e.starts nulls first, e.id;

-- name: exception_insert
insert into duty_exception (user_id, day, exception_kind, starts, ends)
values ($1, $2, $3, $4, $5)
returning id;

-- name: exception_delete_in_scope
-- Delete a duty exception of a user in the administrator's network ($2); what it was.
delete from duty_exception e
using app_user t, app_user a
where e.id = $1 and t.id = e.user_id and a.id = $2 and a.role = 'admin' and a.active
  and t.facility_id in (select facility_subtree(a.facility_id))
returning e.id, t.username, e.day, e.exception_kind as kind, e.starts, e.ends;

-- name: case_reading_pool
select p.code from reading_case c join reading_pool p on p.id = c.reading_pool_id
where c.id = $1;

-- name: facility_tier
select tier from facility where id = $1;
