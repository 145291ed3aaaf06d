-- name: ingest_instance
-- Patient, study, series and instance in one statement (migration 0030); raises TM409 on
-- a refusal, TM410 when the object was collected meanwhile (object_guard, migration 0045).
select o_outcome, o_study_id, o_object_key, o_conflicts, o_late, object_guard($21)
from ingest_instance($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28);

-- name: ingest_instance_alone
-- One instance indexed alone: the hold check, the row and its receipt in one statement
-- (migration 0075); o_outcome 'hold' when it is to be held for its study's reader.
select o_outcome, o_study_id, o_object_key, o_conflicts, o_late
from ingest_instance_alone($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                           $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28,
                           $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41,
                           $42);

-- name: identity_conflicts_of_study
select c.at, c.sop_instance_uid, c.attribute, c.study_value, c.instance_value
from ingest_identity_conflict c
where c.study_id = $1
order by c.id;

-- name: ae_facility_codes
select a.ae_title, f.code from facility_ae a join facility f on f.id = a.facility_id;

-- name: rejection_insert
insert into ingest_rejection
    (facility_id, sender_ae, sop_instance_uid, reason, object_key, sop_class_uid)
values ($1, $2, $3, $4, $5, $6);

-- name: study_by_uid_for_user
select st.id, st.study_instance_uid, st.facility_id, f.code as facility_code,
       p.patient_id, p.name as patient_name, st.accession_number, st.study_date,
       st.description, st.modalities, st.state, st.priority, st.num_series, st.num_instances,
       st.first_received_at, st.last_received_at, st.completed_at
from study st join patient p on p.id = st.patient_ref join facility f on f.id = st.facility_id
where st.study_instance_uid = $1 and study_visible_to($2, st.id);

-- name: studies_for_user
select st.id, st.study_instance_uid, st.facility_id, f.code as facility_code,
       p.patient_id, p.name as patient_name, st.accession_number, st.study_date,
       st.description, st.modalities, st.state, st.priority, st.num_series, st.num_instances,
       st.first_received_at, st.last_received_at, st.completed_at
from study st join patient p on p.id = st.patient_ref join facility f on f.id = st.facility_id
where study_visible_to($1, st.id)
  and ($2::text is null or st.study_instance_uid = $2)
  and ($3::text is null or p.patient_id = $3)
order by st.first_received_at desc, st.id desc
limit $4 offset $5;

-- name: instances_of_study
select i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.object_key, i.size_bytes,
       se.series_instance_uid
from instance i join series se on se.id = i.series_id
where se.study_id = $1
order by se.series_number nulls last, se.id, i.instance_number nulls last, i.id;

-- name: study_mark_ready
-- The sender says the study is whole (its manifest is satisfied): complete it at the next sweep.
update study set ready_at = coalesce(ready_at, now())
where study_instance_uid = $1 and facility_id = $2 and state = 'receiving'
returning id;

-- name: open_cases_for_hold
-- The open cases of the study an instance not yet stored goes to, locked against a claim or
-- a release until the instance is held or indexed (a claim waits, and then sees it).
select c.id, c.study_id, c.status from reading_case c join study s on s.id = c.study_id
where s.study_instance_uid = $1 and s.facility_id = $2
  and c.status in ('scheduled', 'in_progress')
  and not exists (select 1 from instance i where i.sop_instance_uid = $3)
order by c.id
for share of c;

-- name: held_instance_insert
-- A re-sent held instance returns the row held first (inserted false).
with guard as (select object_guard($7))
insert into held_instance (case_id, study_id, facility_id, sop_instance_uid, series_instance_uid,
                           sop_class_uid, object_key, size_bytes, dataset_sha256, sender_ae,
                           received_via)
select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 from guard
on conflict (sop_instance_uid) do update set sop_instance_uid = excluded.sop_instance_uid
returning id, object_key, dataset_sha256, (xmax = 0) as inserted;

-- name: held_instance_told
-- The case's event log and its reader are told: an instance is held for them.
with told as (
    insert into event (kind, facility_id, study_id, case_id, detail)
    select 'late_instance', $2, c.study_id, c.id,
           jsonb_build_object('sop_instance_uid', $3::text, 'series_instance_uid', $4::text,
                              'held', true)
    from reading_case c where c.id = $1
)
insert into notification (kind, facility_id, audience, user_id, case_id, detail)
select 'late_instance', c.pool_facility_id, 'reader', c.claimed_by, c.id,
       jsonb_build_object('study_id', c.study_id, 'series_instance_uid', $4::text, 'held', true)
from reading_case c where c.id = $1;

-- name: held_of_case
select id, case_id, study_id, facility_id, sop_instance_uid, series_instance_uid, sop_class_uid,
       object_key, size_bytes, sender_ae, received_via, received_at
from held_instance where case_id = $1 order by id;

-- name: held_delete
delete from held_instance where id = $1;
