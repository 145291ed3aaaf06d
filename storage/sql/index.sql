-- name: instance_existing
select i.dataset_sha256, st.facility_id, i.object_key
from instance i join series se on se.id = i.series_id join study st on st.id = se.study_id
where i.sop_instance_uid = $1;

-- name: patient_upsert
insert into patient (issuer_facility_id, patient_id, name, birth_date, sex)
values ($1, $2, $3, $4, $5)
on conflict (issuer_facility_id, patient_id) do update
    set name = coalesce(patient.name, excluded.name),
        birth_date = coalesce(patient.birth_date, excluded.birth_date),
        sex = coalesce(patient.sex, excluded.sex)
returning id;

-- name: study_upsert
insert into study (study_instance_uid, facility_id, patient_ref, accession_number, study_date,
                   study_time, description, referring_physician, priority, clinical_question)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (study_instance_uid) do update
    set last_received_at = now(),
        priority = case
            when excluded.priority = 'high' or study.priority = 'high' then 'high'
            when excluded.priority = 'medium' or study.priority = 'medium' then 'medium'
            else 'low' end,
        clinical_question = coalesce(study.clinical_question, excluded.clinical_question)
returning id, facility_id, state, (xmax = 0) as inserted;

-- name: series_upsert
insert into series (study_id, series_instance_uid, modality, series_number, description, body_part)
values ($1, $2, $3, $4, $5, $6)
on conflict (series_instance_uid) do update set modality = coalesce(series.modality, excluded.modality)
returning id, study_id, (xmax = 0) as inserted;

-- name: instance_insert
insert into instance (series_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid,
                      instance_number, object_key, size_bytes, dataset_sha256, sender_ae,
                      received_via, metadata_zlib)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
on conflict (sop_instance_uid) do nothing
returning id;

-- name: series_count_instance
update series set num_instances = num_instances + 1 where id = $1;

-- name: study_count_instance
update study
set num_instances = num_instances + 1,
    num_series = num_series + $2,
    modalities = case when $3::text is null or $3 = any(modalities) then modalities
                      else array_append(modalities, $3) end,
    last_received_at = now()
where id = $1;

-- name: event_insert
insert into event (kind, facility_id, study_id, case_id, report_id, user_id, detail)
values ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{}'::jsonb))
returning id;

-- name: rejection_insert
insert into ingest_rejection (facility_id, sender_ae, sop_instance_uid, reason, object_key)
values ($1, $2, $3, $4, $5);

-- name: object_key_referenced
select exists (select 1 from instance where object_key = $1);

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
