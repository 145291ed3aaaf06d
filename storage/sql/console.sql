-- The administrator's console: facilities, their workstations' titles, DICOM nodes; and the
-- whole network as the network file writes it (telemed network export).

-- name: console_facilities_in_scope
-- $1: an active administrator: their facility and every facility below it.
select f.id, f.code, f.name, f.tier, p.code as parent, f.active,
       d.ae_title as destination_ae, d.host as destination_host, d.port as destination_port,
       d.tls as destination_tls
from app_user u
join facility f on f.id in (select facility_subtree(u.facility_id))
left join facility p on p.id = f.parent_id
left join report_destination d on d.facility_id = f.id
where u.id = $1 and u.role = 'admin' and u.active
order by f.id;

-- name: console_titles_of
select facility_id, ae_title, peer_host, cert_sha256
from facility_ae where facility_id = any($1::bigint[]) order by ae_title;

-- name: console_facility_lock
select id, code, name, tier, parent_id, active from facility where id = $1 for update;

-- name: console_facility_insert
insert into facility (code, name, tier, parent_id) values ($1, $2, $3, $4) returning id;

-- name: console_facility_update
update facility set name = $2, tier = $3, parent_id = $4, active = $5, updated_at = now()
where id = $1;

-- name: console_children
select code, tier from facility where parent_id = $1 order by code;

-- name: console_in_subtree
-- Whether facility $2 is $1 or below it.
select $2::bigint in (select facility_subtree($1));

-- name: console_nodes_in_scope
-- DICOM nodes of the administrator's network: a facility's, or a user's of a facility in it.
select n.id, n.ae_title, n.user_id, n.facility_id, n.host, n.port, n.may_query,
       n.move_destination, n.peer_host, n.cert_sha256, n.tls,
       coalesce(n.facility_id, t.facility_id) as owner_facility_id,
       t.username, f.code as facility
from app_user u
join dicom_node n on true
left join app_user t on t.id = n.user_id
join facility f on f.id = coalesce(n.facility_id, t.facility_id)
where u.id = $1 and u.role = 'admin' and u.active
  and f.id in (select facility_subtree(u.facility_id))
  and ($2::bigint is null or n.id = $2)
order by n.id;

-- name: console_node_insert
insert into dicom_node (ae_title, user_id, facility_id, host, port, may_query,
                        move_destination, peer_host, cert_sha256, tls)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
returning id;

-- name: console_node_update
update dicom_node
set ae_title = $2, user_id = $3, facility_id = $4, host = $5, port = $6, may_query = $7,
    move_destination = $8, peer_host = $9, cert_sha256 = $10, tls = $11
where id = $1;

-- name: console_destination_follow
update report_destination set ae_title = $2, host = $3, port = $4, tls = $5 where ae_title = $1;

-- name: console_destination_named
select f.code from report_destination d join facility f on f.id = d.facility_id
where d.ae_title = $1 limit 1;

-- name: console_node_delete
delete from dicom_node where id = $1;

-- name: console_node_ae_taken
-- Whether an AE title is a node's other than $2.
select exists (select 1 from dicom_node where ae_title = $1 and ($2::bigint is null or id <> $2));

-- name: export_facilities
select f.id, f.code, f.name, f.tier, p.code as parent, f.active,
       d.ae_title as destination_ae, d.host as destination_host, d.port as destination_port,
       d.tls as destination_tls,
       np.timezone, np.deadline_high, np.deadline_medium, np.deadline_low, np.deadline_stemi,
       np.critical_ack, np.at_risk_share
from facility f
left join facility p on p.id = f.parent_id
left join report_destination d on d.facility_id = f.id
left join network_policy np on np.facility_id = f.id
order by f.id;

-- name: export_titles
select facility_id, ae_title, peer_host, cert_sha256 from facility_ae order by ae_title;

-- name: export_routes
select s.code as sender, r.modality, r.specialty, r.priority, fr.code as first_read,
       er.code as escalation, r.deadline, rp.code as pool
from routing_rule r
join facility s on s.id = r.sender_facility_id
join facility fr on fr.id = r.first_read_facility_id
left join facility er on er.id = r.escalation_facility_id
left join reading_pool rp on rp.id = r.pool_id
order by r.id;

-- name: export_users
select u.id, u.username, u.display_name, u.role, f.code as facility, u.specialties, u.active,
       exists (select 1 from duty_shift d where d.user_id = u.id) as has_duty
from app_user u join facility f on f.id = u.facility_id
order by u.id;

-- name: export_duty
select user_id, weekdays, starts, ends from duty_shift order by user_id, id;
