-- name: studies_stable_lock
-- A study returned to its clinic completes again only after a new instance arrived.
select st.id, st.study_instance_uid, st.facility_id, st.modalities, st.priority,
       st.suspected_stemi
from study st
where st.state = 'receiving'
  and (st.returned_at is null or st.last_received_at > st.returned_at)
  and (st.last_received_at < now() - $1::interval
       or (st.ready_at is not null and (st.returned_at is null or st.ready_at > st.returned_at)))
order by st.last_received_at
for update skip locked
limit $2;

-- name: study_mark_complete
update study set state = 'complete', completed_at = now() where id = $1;

-- name: case_insert
insert into reading_case (study_id, facility_id, specialty, priority, pool_facility_id,
                          first_pool_facility_id, escalation_facility_id, deadline, stemi,
                          second_read_of, reading_pool_id)
values ($1, $2, $3, $4, $5, $5, $6, now() + $7::interval, $8, $9, $10)
on conflict do nothing
returning id;

-- name: facility_code_by_id
select code from facility where id = $1;

-- name: worklist
-- A reader's worklist is the open cases of the pools they read for now.
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
       c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question
from reading_case c
join app_user u on u.id = $1
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
join facility pf on pf.id = c.pool_facility_id
where c.status in ('scheduled', 'in_progress') and case_visible_to($1, c.id)
  and (u.role <> 'reader' or c.pool_facility_id = u.facility_id)
order by case c.priority when 'high' then 0 when 'medium' then 1 else 2 end, c.deadline, c.id
limit $2;

-- name: case_for_user
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
       c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question
from reading_case c
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
join facility pf on pf.id = c.pool_facility_id
where c.id = $1 and case_visible_to($2, c.id);

-- name: cases_returned_to_facility
-- The latest case of each study the readers returned to the clinic for quality, newest first.
select * from (
    select distinct on (c.study_id)
           c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
           c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
           c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
           p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
           c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question,
           c.return_note, c.updated_at as returned_at
    from reading_case c
    join study st on st.id = c.study_id
    join patient p on p.id = st.patient_ref
    join facility f on f.id = c.facility_id
    join facility pf on pf.id = c.pool_facility_id
    where c.facility_id = $2 and c.return_code is not null and case_visible_to($1, c.id)
    order by c.study_id, c.updated_at desc
) returned
order by returned_at desc
limit $3;

-- name: case_lock_for_user
-- A case in the user's scope, locked until the transaction ends.
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
       c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question
from reading_case c
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
join facility pf on pf.id = c.pool_facility_id
where c.id = $1 and case_visible_to($2, c.id)
for update of c;

-- name: case_next_for_user
-- The most urgent claimable cases of a reader's pools; rows other readers hold are skipped.
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
       c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question
from reading_case c
join app_user u on u.id = $1
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
join facility pf on pf.id = c.pool_facility_id
where u.role = 'reader' and u.active and c.pool_facility_id = u.facility_id
  and c.specialty = any(u.specialties)
  and (c.status = 'scheduled' or (c.status = 'in_progress' and c.lease_expires_at < now()))
  and not (c.second_read_of is not null and (
      exists (select 1 from report r where r.case_id = c.second_read_of and r.author_id = u.id)
      or exists (select 1 from event e where e.case_id = c.second_read_of
                 and e.kind = 'claimed' and e.user_id = u.id)))
order by case c.priority when 'high' then 0 when 'medium' then 1 else 2 end, c.deadline, c.id
limit $2
for update of c skip locked;

-- name: case_first_reader_is
select exists (select 1 from report r where r.case_id = $1 and r.author_id = $2)
    or exists (select 1 from event e where e.case_id = $1 and e.kind = 'claimed'
               and e.user_id = $2);

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
update reading_case c
set status = 'scheduled', claimed_by = null, lease_expires_at = null, updated_at = now()
from reading_case old
where old.id = c.id and c.status = 'in_progress' and c.lease_expires_at < now()
returning c.id, c.facility_id, c.study_id, old.claimed_by as holder;

-- name: case_escalate
-- Into the pool $2, whose own escalation pool is the nearest county or city above it.
update reading_case
set pool_facility_id = $2, escalation_facility_id = (
        with recursive up(id, tier, parent_id, depth) as (
            select id, tier, parent_id, 0 from facility where id = $2
            union all
            select f.id, f.tier, f.parent_id, up.depth + 1
            from facility f join up on f.id = up.parent_id
        )
        select id from up where depth > 0 and tier in ('county', 'city') order by depth limit 1),
    question = coalesce($3, question), escalated_at = now(), escalated_by = $4,
    reading_pool_id = null,
    status = 'scheduled', claimed_by = null, lease_expires_at = null, updated_at = now()
where id = $1
returning (select code from facility where id = $2) as pool_code;

-- name: case_return
update reading_case
set status = 'canceled', claimed_by = null, lease_expires_at = null, return_code = $2,
    return_note = $3, updated_at = now()
where id = $1;

-- name: study_mark_returned
update study set state = 'receiving', returned_at = now(), completed_at = null, ready_at = null
where id = $1;

-- name: study_lock_for_user
select st.id, st.facility_id from study st
where st.id = $1 and study_visible_to($2, st.id)
for update;

-- name: study_set_priority
update study set priority = $2, clinical_question = coalesce($3, clinical_question)
where id = $1;

-- name: cases_raise_priority
update reading_case
set priority = $2, deadline = least(deadline, created_at + $3::interval), updated_at = now()
where study_id = $1 and status in ('scheduled', 'in_progress')
  and (case priority when 'high' then 0 when 'medium' then 1 else 2 end)
    > (case $2 when 'high' then 0 when 'medium' then 1 else 2 end)
returning id;

-- name: study_mark_stemi
update study set suspected_stemi = true, priority = 'high' where id = $1
returning facility_id;

-- name: cases_raise_to_stemi
update reading_case
set stemi = true, priority = 'high', deadline = least(deadline, now() + $2::interval),
    updated_at = now()
where study_id = $1 and specialty = 'ecg' and status in ('scheduled', 'in_progress')
returning id, deadline, pool_facility_id;

-- name: cases_at_risk_lock
-- Open cases at risk at $1: past their deadline, or unclaimed with less than the network's
-- at-risk share of their window left; each deadline is handled once.
-- A claimed case's holder who is off duty at $1 will not finish it: it goes back to the pool.
select c.id, c.study_id, st.study_instance_uid, c.facility_id, f.code as facility_code,
       c.specialty, c.priority, c.status, c.pool_facility_id, c.escalation_facility_id,
       c.claimed_by, c.lease_expires_at, c.deadline, c.created_at, st.modalities,
       p.name as patient_name, c.first_pool_facility_id, pf.code as pool_code, c.question,
       c.escalated_at, c.stemi, c.second_read_of, c.return_code, st.clinical_question,
       c.claimed_by is not null and not on_duty(c.claimed_by, $1) as holder_off_duty
from reading_case c
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = c.facility_id
join facility pf on pf.id = c.pool_facility_id
where c.status in ('scheduled', 'in_progress')
  and c.deadline_handled is distinct from c.deadline
  and c.deadline <= $1::timestamptz + (c.deadline - c.created_at)
  and (c.deadline <= $1
       or (c.status = 'scheduled'
           and c.deadline - (c.deadline - c.created_at)
               * coalesce((network_policy_of(c.facility_id)).at_risk_share, 0.1) <= $1))
order by c.deadline
limit $2
for update of c skip locked;

-- name: case_deadline_handled
update reading_case set deadline_handled = $2 where id = $1;

-- name: events_of_case
-- The case's events, its study's, and those of the earlier cases of the same read that were
-- returned to the clinic (a re-sent study keeps its history).
select e.kind, e.at, e.user_id, e.detail, e.case_id from event e
where e.case_id = $1 or (e.study_id = $2 and e.case_id is null)
   or e.case_id in (select old.id from reading_case old join reading_case cur on cur.id = $1
                    where old.study_id = cur.study_id and old.specialty = cur.specialty
                      and old.id < cur.id and old.return_code is not null
                      and (old.second_read_of is null) = (cur.second_read_of is null))
order by e.at, e.id;

-- name: open_case_loads
-- The open cases sent from an administrator's network ($1: its root facility) per reading
-- pool and specialty, and per sending facility (grouping sets), counted at $2.
select pf.code as pool_code, c.specialty, f.code as facility_code,
       count(*)::int as open,
       count(*) filter (where c.status = 'scheduled')::int as scheduled,
       count(*) filter (where c.status = 'in_progress')::int as in_progress,
       count(*) filter (where c.priority = 'high' or c.stemi)::int as urgent,
       count(*) filter (where c.deadline < $2)::int as overdue
from reading_case c
join facility pf on pf.id = c.pool_facility_id
join facility f on f.id = c.facility_id
where c.status in ('scheduled', 'in_progress')
  and c.facility_id in (select facility_subtree($1))
group by grouping sets ((pf.code, c.specialty), (f.code));

-- name: overdue_open_cases
-- The open cases of the network ($1) past their deadline at $2, the longest overdue first,
-- at most $3 (no patient data: the dashboard lists them by case number).
select c.id, c.study_id, f.code as facility_code, pf.code as pool_code, c.specialty,
       c.priority, c.stemi, c.deadline, c.claimed_by
from reading_case c
join facility pf on pf.id = c.pool_facility_id
join facility f on f.id = c.facility_id
where c.status in ('scheduled', 'in_progress') and c.deadline < $2
  and c.facility_id in (select facility_subtree($1))
order by c.deadline, c.id
limit $3;
