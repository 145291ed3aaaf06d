-- name: order_next_number
-- One more accession number of the facility's day: 1, 2, ... (unique with the date).
insert into order_counter as c (facility_id, day, last_number) values ($1, $2, 1)
on conflict (facility_id, day) do update set last_number = c.last_number + 1
returning last_number;

-- name: order_insert
insert into exam_order (facility_id, accession_number, requested_procedure_id, sps_id,
                        patient_id, patient_name, patient_sex, patient_birth_date, modality,
                        station_ae, procedure_description, urgency, clinical_question, history,
                        scheduled_date, scheduled_time, study_instance_uid, created_by)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
returning id;

-- name: order_by_id
select o.*, f.code as facility_code from exam_order o join facility f on f.id = o.facility_id
where o.id = $1 and o.facility_id = $2;

-- name: orders_of_facility
-- A facility's orders, newest scheduled first; $2..$3 the scheduled dates, $4 the status.
select o.*, f.code as facility_code from exam_order o join facility f on f.id = o.facility_id
where o.facility_id = $1
  and ($2::date is null or o.scheduled_date >= $2)
  and ($3::date is null or o.scheduled_date <= $3)
  and ($4::text is null or o.status = $4)
order by o.scheduled_date desc, o.scheduled_time desc nulls last, o.id desc
limit $5 offset $6;

-- name: order_cancel
update exam_order set status = 'canceled', updated_at = now()
where id = $1 and facility_id = $2 and status = 'scheduled'
returning id;

-- name: worklist_orders
-- The open orders of a facility matching a Modality Worklist query ($7, $8: LIKE patterns,
-- backslash the escape; null matches all; the name matches whole or by its alphabetic or
-- ideographic group; $10, $11: times of day, one range with the dates when both are given,
-- else each day's window; an order without a time matches).
select o.*, f.code as facility_code from exam_order o join facility f on f.id = o.facility_id
where o.facility_id = $1 and o.status in ('scheduled', 'in_progress')
  and ($2::text is null or o.modality = $2)
  and ($3::text is null or o.station_ae = $3 or o.station_ae is null)
  and ($4::date is null or o.scheduled_date >= $4)
  and ($5::date is null or o.scheduled_date <= $5)
  and ($10::time is null or o.scheduled_time is null
       or ($4::date is null and o.scheduled_time >= $10)
       or ($4::date is not null and (o.scheduled_date > $4 or o.scheduled_time >= $10)))
  and ($11::time is null or o.scheduled_time is null
       or ($5::date is null and o.scheduled_time <= $11)
       or ($5::date is not null and (o.scheduled_date < $5 or o.scheduled_time <= $11)))
  and ($6::text is null or o.accession_number = $6)
  and ($7::text is null or o.patient_id like $7)
  and ($8::text is null or o.patient_name ilike $8
       or split_part(o.patient_name, '=', 1) ilike $8
       or split_part(o.patient_name, '=', 2) ilike $8)
order by o.scheduled_date, o.scheduled_time nulls last, o.id
limit $9;

-- name: order_of_study
-- The open order a study answers: one of its facility's, by the Study Instance UID the
-- worklist gave, else by a performed step of the order that named the study (its scheduled
-- step or requested procedure), else by the study's accession number.
select o.*, f.code as facility_code
from study st join exam_order o on o.facility_id = st.facility_id
join facility f on f.id = o.facility_id
where st.id = $1 and o.status <> 'canceled'
  and o.study_id is null
  and (o.study_instance_uid = st.study_instance_uid
       or exists (select 1 from performed_step p
                  where p.order_id = o.id and p.study_instance_uid = st.study_instance_uid)
       or (st.accession_number <> '' and o.accession_number = st.accession_number))
order by (o.study_instance_uid = st.study_instance_uid) desc, o.id
limit 1;

-- name: order_of_step
-- The order a performed step names (its scheduled step, requested procedure or accession).
select o.*, f.code as facility_code from exam_order o join facility f on f.id = o.facility_id
where o.facility_id = $1 and o.status <> 'canceled'
  and (o.sps_id = $2 or o.requested_procedure_id = $3 or o.accession_number = $4)
order by (o.sps_id = $2) desc, o.id
limit 1;

-- name: order_link_study
update exam_order set study_id = $2, updated_at = now(),
       status = case when status in ('scheduled', 'in_progress') then 'completed' else status end
where id = $1;

-- name: order_set_status
update exam_order set status = $2, updated_at = now()
where id = $1 and status not in ('canceled', 'completed');

-- name: study_take_order
-- The order's urgency and question on the study (the more urgent priority is kept).
update study set priority = case when $2 = 'high' then 'high' else priority end,
                 clinical_question = coalesce(clinical_question, $3)
where id = $1;

-- name: step_insert
insert into performed_step (sop_instance_uid, facility_id, calling_ae, status,
                            study_instance_uid, order_id)
values ($1, $2, $3, 'in_progress', $4, $5)
on conflict do nothing
returning sop_instance_uid;

-- name: step_by_uid
select * from performed_step where sop_instance_uid = $1;

-- name: step_update
update performed_step
set status = $2, referenced_sops = $3, reason_code = $4, reason_meaning = $5,
    study_instance_uid = coalesce($6, study_instance_uid), updated_at = now()
where sop_instance_uid = $1 and status = 'in_progress'
returning sop_instance_uid;

-- name: step_missing
-- How many instances a completed step names that are not stored (indexed) yet.
select count(*) from unnest($1::text[]) as r(uid)
where not exists (select 1 from instance i where i.sop_instance_uid = r.uid);

-- name: steps_waiting
-- Completed steps of the study not yet found whole, locked by the one who checks them.
select sop_instance_uid, facility_id, study_instance_uid, referenced_sops
from performed_step
where study_instance_uid = $1 and status = 'completed' and ready_at is null
for update;

-- name: step_ready
update performed_step set ready_at = now() where sop_instance_uid = $1;

-- name: steps_of_study
select sop_instance_uid, status, reason_code, reason_meaning, calling_ae, updated_at
from performed_step where study_instance_uid = $1
order by created_at;

-- name: instances_stored
-- Which of the named instances are stored (indexed), with their study and facility.
select i.sop_instance_uid, i.sop_class_uid, st.study_instance_uid, st.facility_id
from instance i join series se on se.id = i.series_id join study st on st.id = se.study_id
where i.sop_instance_uid = any($1::text[]);

-- name: steps_waiting_exist
select exists (select 1 from performed_step
               where study_instance_uid = $1 and status = 'completed' and ready_at is null);
