-- name: ecg_pending_lock
-- ECG waveform instances (PS3.4 B.5: 1.2.840.10008.5.1.4.1.1.9.1.*) not analyzed yet.
select i.id, i.object_key, i.sop_instance_uid, se.study_id
from instance i
join series se on se.id = i.series_id
left join ecg_analysis a on a.instance_id = i.id
where a.id is null and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%'
order by i.id
for update of i skip locked
limit $1;

-- name: ecg_analysis_insert
insert into ecg_analysis (instance_id, result, error, suspected_stemi)
values ($1, $2::jsonb, $3, $4)
on conflict (instance_id) do nothing
returning id;

-- name: ecg_original_insert
insert into ecg_original (instance_id, object_key, format, filename, size_bytes)
select i.id, $2, $3, $4, $5 from instance i where i.sop_instance_uid = $1
on conflict (instance_id) do nothing
returning object_guard($2);

-- name: ecg_for_user
select i.id as instance_id, i.sop_instance_uid, i.object_key, se.study_id,
       st.study_instance_uid, st.patient_ref, p.patient_id, p.name as patient_name,
       f.code as facility_code, f.name as facility_name,
       a.id as analysis_id, a.analyzed_at, a.result::text as result, a.error,
       a.suspected_stemi, a.edited_measurements::text as edited_measurements,
       a.edited_statements::text as edited_statements, a.edited_at,
       o.object_key as original_key, o.format as original_format, o.filename as original_filename
from instance i
join series se on se.id = i.series_id
join study st on st.id = se.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = st.facility_id
left join ecg_analysis a on a.instance_id = i.id
left join ecg_original o on o.instance_id = i.id
where i.sop_instance_uid = $1 and study_visible_to($2, st.id)
  and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%';

-- name: ecg_sheets_of_studies
-- The ECG waveform instances of the studies $1 that user $2 may see, in arrival order.
select st.study_instance_uid, i.sop_instance_uid
from study st
join series se on se.study_id = st.id
join instance i on i.series_id = se.id
where st.study_instance_uid = any($1::text[]) and study_visible_to($2, st.id)
  and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%'
order by i.id;

-- name: ecg_of_study
select i.sop_instance_uid, a.suspected_stemi, a.analyzed_at
from instance i join series se on se.id = i.series_id
left join ecg_analysis a on a.instance_id = i.id
where se.study_id = $1 and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%'
order by i.id;

-- name: ecg_priors
-- The other ECGs of the patient of instance $1 and of every record linked to it (the county
-- patient index), at any facility, that user $2 may see (the rule of imaging priors), newest
-- first; `earlier` when received before instance $1.
select i.sop_instance_uid, st.id as study_id, st.study_instance_uid, st.first_received_at,
       f.code as facility_code, f.name as facility_name,
       (st.first_received_at, i.id) < (cur_st.first_received_at, cur.id) as earlier,
       a.result::text as result, a.edited_measurements::text as edited_measurements,
       a.edited_statements::text as edited_statements
from instance cur
join series cur_se on cur_se.id = cur.series_id
join study cur_st on cur_st.id = cur_se.study_id
join study st on st.patient_ref in (select linked_patients(cur_st.patient_ref))
join series se on se.study_id = st.id
join instance i on i.series_id = se.id
join facility f on f.id = st.facility_id
left join ecg_analysis a on a.instance_id = i.id
where cur.id = $1 and i.id <> cur.id
  and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%'
  and study_visible_to($2, st.id)
order by st.first_received_at desc, i.id desc
limit $3;

-- name: ecg_analysis_lock
select id, edited_measurements::text as edited_measurements,
       edited_statements::text as edited_statements
from ecg_analysis where id = $1 for update;

-- name: ecg_analysis_edit
update ecg_analysis
set edited_measurements = $2::jsonb, edited_statements = $3::jsonb,
    edited_by = $4, edited_at = now()
where id = $1;

-- name: ecg_edit_insert
insert into ecg_edit (analysis_id, user_id, field, old_value, new_value)
values ($1, $2, $3, $4::jsonb, $5::jsonb);

-- name: ecg_edits
select e.at, e.field, e.old_value::text as old_value, e.new_value::text as new_value,
       u.username, u.display_name
from ecg_edit e join app_user u on u.id = e.user_id
where e.analysis_id = $1
order by e.at, e.id;

-- name: ecg_original_of_facility
-- An earlier upload of the same original file (content-addressed key) by the same facility.
select i.sop_instance_uid, st.study_instance_uid, p.patient_id
from ecg_original o
join instance i on i.id = o.instance_id
join series se on se.id = i.series_id
join study st on st.id = se.study_id
join patient p on p.id = st.patient_ref
where o.object_key = $1 and st.facility_id = $2
order by o.id
limit 1;

-- name: ecg_instances_of_study
-- The study's ECG waveform instances, in arrival order.
select i.sop_instance_uid from instance i join series se on se.id = i.series_id
where se.study_id = $1 and i.sop_class_uid like '1.2.840.10008.5.1.4.1.1.9.1.%'
order by i.id;

-- name: instance_key_of_facility
-- The object of an instance with this SOP Instance UID in a study of this facility.
select i.object_key
from instance i
join series se on se.id = i.series_id
join study st on st.id = se.study_id
where i.sop_instance_uid = $1 and st.facility_id = $2;

-- name: ecg_editable_by
-- Whether the user reads this ECG: they hold a claim on an ECG case of its study, or signed
-- a report on one. Seeing it (as a prior, or in an administrator's network) is not enough.
select exists (
    select 1 from instance i
    join series se on se.id = i.series_id
    join reading_case c on c.study_id = se.study_id and c.specialty = 'ecg'
    where i.sop_instance_uid = $1
      and ((c.status = 'in_progress' and c.claimed_by = $2)
           or exists (select 1 from report r where r.case_id = c.id and r.author_id = $2))
);

-- name: refused_ecg_insert
-- Keep a refused file unless the facility has kept $7 already today (UTC).
insert into refused_ecg (facility_id, user_id, filename, size_bytes, object_key, reason)
select $1, $2, $3, $4, $5, $6
where (select count(*) from refused_ecg
       where facility_id = $1 and received_at >= date_trunc('day', now() at time zone 'UTC')
                                                  at time zone 'UTC') < $7
returning id, object_guard($5);

-- name: refused_ecg_for_user
-- Refused files of the user's facility (a clinic) or network (an administrator), newest first.
select r.id, r.received_at, r.filename, r.size_bytes, r.reason, f.code as facility
from refused_ecg r
join facility f on f.id = r.facility_id
join app_user u on u.id = $1
where (u.role = 'clinic' and r.facility_id = u.facility_id)
   or (u.role = 'admin' and r.facility_id in (select facility_subtree(u.facility_id)))
order by r.received_at desc, r.id desc
limit $2;

-- name: refused_ecg_of_user
select r.id, r.object_key, r.filename, r.facility_id
from refused_ecg r
join app_user u on u.id = $1
where r.id = $2
  and ((u.role = 'clinic' and r.facility_id = u.facility_id)
    or (u.role = 'admin' and r.facility_id in (select facility_subtree(u.facility_id))));
