-- name: studies_stable_lock
select st.id, st.study_instance_uid, st.facility_id, st.modalities, st.priority
from study st
where st.state = 'receiving'
  and (st.last_received_at < now() - $1::interval or st.ready_at is not null)
order by st.last_received_at
for update skip locked
limit $2;

-- name: study_mark_complete
update study set state = 'complete', completed_at = now() where id = $1;

-- name: case_insert
insert into reading_case (study_id, facility_id, specialty, priority, pool_facility_id,
                          escalation_facility_id, deadline)
values ($1, $2, $3, $4, $5, $6, now() + $7::interval)
on conflict do nothing
returning id;

-- name: worklist
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name
from reading_case c
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
where c.status in ('scheduled', 'in_progress') and case_visible_to($1, c.id)
order by case c.priority when 'high' then 0 when 'medium' then 1 else 2 end, c.deadline, c.id
limit $2;

-- name: case_for_user
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name
from reading_case c
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
where c.id = $1 and case_visible_to($2, c.id);

-- name: case_lock_for_user
select c.id, c.status, c.claimed_by, c.lease_expires_at < now() as lease_expired,
       c.facility_id, c.study_id
from reading_case c
where c.id = $1 and case_visible_to($2, c.id)
for update;

-- name: case_claim
update reading_case
set status = 'in_progress', claimed_by = $2, lease_expires_at = now() + $3::interval,
    updated_at = now()
where id = $1;

-- name: case_release
update reading_case
set status = 'scheduled', claimed_by = null, lease_expires_at = null, updated_at = now()
where id = $1;

-- name: case_complete
update reading_case
set status = 'completed', claimed_by = null, lease_expires_at = null, updated_at = now()
where id = $1;

-- name: case_expire_leases
update reading_case
set status = 'scheduled', claimed_by = null, lease_expires_at = null, updated_at = now()
where status = 'in_progress' and lease_expires_at < now()
returning id, facility_id, study_id;

-- name: report_insert
insert into report (case_id, author_id, status, findings, impression, conclusion,
                    signature_sha256, signed_at)
values ($1, $2, $3, $4, $5, $6, $7, $8)
returning id;

-- name: reports_of_case
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
where r.case_id = $1
order by r.id;

-- name: inbox
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
where r.delivered_at is not null and case_visible_to($1, c.id)
  and ($2::boolean is null or (r.acknowledged_at is null) = $2)
order by r.delivered_at desc, r.id desc
limit $3 offset $4;

-- name: report_for_user
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
where r.id = $1 and case_visible_to($2, c.id);

-- name: report_deliver
update report r set delivered_at = now()
from reading_case c
where r.id = $1 and c.id = r.case_id and r.delivered_at is null
returning r.case_id, c.facility_id, c.study_id;

-- name: report_acknowledge
update report r set acknowledged_at = now(), acknowledged_by = $2
from reading_case c
where r.id = $1 and c.id = r.case_id and r.acknowledged_at is null
returning r.case_id, c.facility_id, c.study_id;

-- name: turnaround
-- Received (first instance, server clock) to final report, per sending facility.
with done as (
    select c.facility_id,
           extract(epoch from (rep.at - rec.at)) as seconds
    from reading_case c
    join lateral (select min(e.at) as at from event e
                  where e.study_id = c.study_id and e.kind = 'received') rec on true
    join lateral (select min(e.at) as at from event e
                  where e.case_id = c.id and e.kind = 'reported') rep on true
    where rep.at is not null and rec.at is not null
      and rep.at >= $2 and rep.at < $3
      and c.facility_id in (select facility_subtree($1))
)
select f.id as facility_id, f.code, f.name, count(d.seconds) as reports,
       percentile_cont(0.5) within group (order by d.seconds) as median_s,
       percentile_cont(0.9) within group (order by d.seconds) as p90_s,
       avg(d.seconds) as mean_s, max(d.seconds) as max_s
from done d join facility f on f.id = d.facility_id
group by f.id, f.code, f.name
order by f.code;

-- name: events_of_case
select e.kind, e.at, e.user_id, e.detail from event e
where e.case_id = $1 or (e.study_id = $2 and e.case_id is null)
order by e.at, e.id;
