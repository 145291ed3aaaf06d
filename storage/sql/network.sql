-- name: facility_upsert
-- $5 null keeps the facility as active or inactive as it is (a new one is active).
insert into facility (code, name, tier, parent_id, active)
values ($1, $2, $3, (select id from facility where code = $4), coalesce($5::boolean, true))
on conflict (code) do update
    set name = excluded.name, tier = excluded.tier, parent_id = excluded.parent_id,
        active = coalesce($5::boolean, facility.active), updated_at = now()
returning id;

-- name: facility_ae_owner
select f.code from facility_ae a join facility f on f.id = a.facility_id where a.ae_title = $1;

-- name: facility_ae_delete_others
delete from facility_ae where facility_id = $1 and not (ae_title = any($2::text[]));

-- name: facility_ae_insert
-- $3, $4: the title's peer host and client certificate fingerprint (null: not bound by it).
insert into facility_ae (ae_title, facility_id, peer_host, cert_sha256) values ($1, $2, $3, $4)
on conflict (ae_title) do update set peer_host = excluded.peer_host,
                                     cert_sha256 = excluded.cert_sha256
where facility_ae.facility_id = excluded.facility_id;

-- name: dicom_peers
-- Every AE title that may call us, with what binds it: workstations (facility_ae) and the
-- nodes that may query (dicom_node: its host binds it unless peer_host says where else).
-- A deactivated facility's titles, and nodes of a deactivated facility or user, are not.
select a.ae_title, a.peer_host, a.cert_sha256
from facility_ae a join facility f on f.id = a.facility_id
where f.active
union all
select n.ae_title, coalesce(n.peer_host, n.host), n.cert_sha256
from dicom_node n left join app_user u on u.id = n.user_id
join facility f on f.id = coalesce(n.facility_id, u.facility_id)
where n.may_query and (n.user_id is null or u.active) and f.active;

-- name: user_upsert
-- A file that gives no password keeps the one set; one that says nothing of ``active``
-- ($7 null) keeps the user as they are (a new user is active).
-- The import checked a given hash against the demo password ($8): it is marked checked.
insert into app_user (username, display_name, role, facility_id, specialties, password_hash,
                      active, demo_password, demo_checked)
values ($1, $2, $3, (select id from facility where code = $4), $5, $6::text,
        coalesce($7::boolean, true), $6::text is not null and $8::boolean, true)
on conflict (username) do update
    set display_name = excluded.display_name, role = excluded.role,
        facility_id = excluded.facility_id, specialties = excluded.specialties,
        password_hash = coalesce(excluded.password_hash, app_user.password_hash),
        demo_password = case when excluded.password_hash is null then app_user.demo_password
                             else excluded.demo_password end,
        demo_checked = excluded.password_hash is not null or app_user.demo_checked,
        active = coalesce($7, app_user.active), updated_at = now()
returning id, password_hash is null as needs_password;

-- name: facility_count
select count(*) from facility;

-- name: facility_by_ae
select f.id, f.code, f.name, f.tier, f.parent_id
from facility_ae a join facility f on f.id = a.facility_id
where a.ae_title = $1 and f.active;

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

-- name: user_id_by_username
select id from app_user where username = $1;

-- name: user_by_username
select id, username, display_name, role, facility_id, specialties, active, language
from app_user where username = $1;

-- name: user_list
select id, username, display_name, role, facility_id, specialties, active, language
from app_user order by id;

-- name: user_password_hash
-- A user of a deactivated facility does not sign in.
select u.id, u.password_hash from app_user u join facility f on f.id = u.facility_id
where u.username = $1 and u.active and f.active;

-- name: token_insert
insert into api_token (token_sha256, user_id, expires_at, kind) values ($1, $2, $3, $4);

-- name: user_by_token
select u.id, u.username, u.display_name, u.role, u.facility_id, u.specialties, u.active,
       u.language
from api_token t join app_user u on u.id = t.user_id join facility f on f.id = u.facility_id
where t.token_sha256 = $1 and t.revoked_at is null and t.expires_at > now() and u.active
  and f.active;

-- name: facility_id_by_code
select id from facility where code = $1;

-- name: duty_delete
delete from duty_shift where user_id = $1;

-- name: duty_insert
insert into duty_shift (user_id, weekdays, starts, ends) values ($1, $2, $3, $4);

-- name: policy_upsert
insert into network_policy (facility_id, timezone, deadline_high, deadline_medium, deadline_low,
                            deadline_stemi, critical_ack, at_risk_share)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (facility_id) do update
    set timezone = excluded.timezone, deadline_high = excluded.deadline_high,
        deadline_medium = excluded.deadline_medium, deadline_low = excluded.deadline_low,
        deadline_stemi = excluded.deadline_stemi, critical_ack = excluded.critical_ack,
        at_risk_share = excluded.at_risk_share, updated_at = now();

-- name: routes_delete
delete from routing_rule where sender_facility_id = $1;

-- name: route_insert
insert into routing_rule (sender_facility_id, modality, specialty, priority,
                          first_read_facility_id, escalation_facility_id, deadline, pool_id)
values ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: destination_upsert
insert into report_destination (facility_id, ae_title, host, port, tls)
values ($1, $2, $3, $4, $5)
on conflict (facility_id) do update
    set ae_title = excluded.ae_title, host = excluded.host, port = excluded.port,
        tls = excluded.tls;

-- name: destination_of
select ae_title, host, port, tls from report_destination where facility_id = $1;

-- name: policy_nearest
-- $1: a facility chain, nearest first: the first facility in it with a policy.
select p.timezone, p.deadline_high, p.deadline_medium, p.deadline_low, p.deadline_stemi,
       p.critical_ack, p.at_risk_share
from unnest($1::bigint[]) with ordinality as c(id, n)
join network_policy p on p.facility_id = c.id
order by c.n
limit 1;

-- name: routes_of
-- A rule whose pool was deactivated reads at the pool's facility, as any of its readers.
select r.sender_facility_id, r.modality, r.specialty, r.priority, r.first_read_facility_id,
       r.escalation_facility_id, r.deadline, case when p.active then p.id end as pool_id
from routing_rule r left join reading_pool p on p.id = r.pool_id
where r.sender_facility_id = any($1::bigint[])
order by r.id;

-- name: named_pools_on_duty
-- The reading pools among $1 with an active reader member on duty at $2.
select distinct m.pool_id
from reading_pool_member m join app_user u on u.id = m.user_id
where m.pool_id = any($1::bigint[]) and u.role = 'reader' and u.active and on_duty(u.id, $2);

-- name: pools_on_duty
select distinct u.facility_id, s.specialty
from app_user u cross join unnest(u.specialties) as s(specialty)
where u.role = 'reader' and u.active and u.facility_id = any($1::bigint[])
  and on_duty(u.id, $2);

-- name: pool_readers
select u.id, u.username, u.display_name, u.facility_id, s.specialty,
       on_duty(u.id, $2) as on_duty,
       (select count(*) from reading_case c
        where c.claimed_by = u.id and c.status = 'in_progress')::int as open_cases
from app_user u cross join unnest(u.specialties) as s(specialty)
where u.role = 'reader' and u.active and u.facility_id = any($1::bigint[])
order by on_duty desc, open_cases, u.id;

-- name: duty_admins
-- Administrators of a facility on duty at $2 (those without a schedule always are).
select u.id from app_user u
where u.role = 'admin' and u.active and u.facility_id = $1 and on_duty(u.id, $2)
order by u.id;

-- name: facility_in_admin_scope
-- A facility by code, when it is in the administrator's network ($2).
select f.id from facility f join app_user u on u.id = $2
where f.code = $1 and u.role = 'admin' and u.active
  and f.id in (select facility_subtree(u.facility_id));

-- name: facility_in_admin_reach
-- A facility by code that an administrator's ($2) routing rules may send cases to: one of
-- their network, or one above it (the county and city hospitals it escalates to).
with recursive up(id, parent_id) as (
    select f.id, f.parent_id from facility f join app_user u on u.facility_id = f.id
    where u.id = $2 and u.role = 'admin' and u.active
    union all
    select f.id, f.parent_id from facility f join up on f.id = up.parent_id
)
select f.id from facility f
where f.code = $1
  and (f.id in (select id from up)
       or f.id in (select facility_subtree(u.facility_id) from app_user u
                   where u.id = $2 and u.role = 'admin' and u.active));

-- name: user_in_admin_scope
select t.id from app_user t join app_user u on u.id = $2
where t.username = $1 and u.role = 'admin' and u.active
  and t.facility_id in (select facility_subtree(u.facility_id));

-- name: routing_facilities_in_scope
select f.code, f.name, f.tier, p.timezone, p.deadline_high, p.deadline_medium, p.deadline_low,
       p.deadline_stemi, p.critical_ack, p.at_risk_share, d.ae_title, d.host, d.port, d.tls
from app_user u
join facility f on f.id in (select facility_subtree(u.facility_id))
left join network_policy p on p.facility_id = f.id
left join report_destination d on d.facility_id = f.id
where u.id = $1 and u.role = 'admin'
order by f.id;

-- name: routing_rules_in_scope
select s.code as sender, r.modality, r.specialty, r.priority, fr.code as first_read,
       er.code as escalation, r.deadline, rp.code as pool
from app_user u
join routing_rule r on r.sender_facility_id in (select facility_subtree(u.facility_id))
join facility s on s.id = r.sender_facility_id
join facility fr on fr.id = r.first_read_facility_id
left join facility er on er.id = r.escalation_facility_id
left join reading_pool rp on rp.id = r.pool_id
where u.id = $1 and u.role = 'admin'
order by r.id;

-- name: duty_in_scope
select t.username, f.code as facility, t.role, d.weekdays, d.starts, d.ends
from app_user u
join app_user t on t.facility_id in (select facility_subtree(u.facility_id))
join facility f on f.id = t.facility_id
left join duty_shift d on d.user_id = t.id
where u.id = $1 and u.role = 'admin' and t.active and t.role in ('reader', 'admin')
order by t.id, d.id;

-- name: facility_own_policy
select timezone, deadline_high, deadline_medium, deadline_low, deadline_stemi, critical_ack,
       at_risk_share
from network_policy where facility_id = $1;

-- name: routing_rules_of_sender
select s.code as sender, r.modality, r.specialty, r.priority, fr.code as first_read,
       er.code as escalation, r.deadline, rp.code as pool
from routing_rule r
join facility s on s.id = r.sender_facility_id
join facility fr on fr.id = r.first_read_facility_id
left join facility er on er.id = r.escalation_facility_id
left join reading_pool rp on rp.id = r.pool_id
where r.sender_facility_id = $1
order by r.id;

-- name: user_language_set
-- A user's language for pages, PDFs and e-mails; the language it replaced.
update app_user u set language = $2 from app_user old
where u.id = $1 and old.id = u.id
returning old.language as before;
