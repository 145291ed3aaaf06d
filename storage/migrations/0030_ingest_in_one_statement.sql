-- Ingest in one round trip: patient, study, series and instance are written by one function
-- call (one statement, its own transaction), instead of ten statements per instance.
-- Conflicting patient data inside one study is recorded here, not silently merged: the
-- instance is stored under its study (the file is kept as sent) and administrators see
-- what differed. A late instance of a study in reading tells the case's pool.

create table ingest_identity_conflict (
    id                bigint generated always as identity primary key,
    at                timestamptz not null default clock_timestamp(),
    facility_id       bigint not null references facility (id),
    study_id          bigint not null references study (id) on delete cascade,
    sop_instance_uid  text not null,
    -- The DICOM keyword that differs: PatientID, PatientName, PatientBirthDate, PatientSex.
    attribute         text not null,
    study_value       text,
    instance_value    text
);
create index ingest_identity_conflict_study_idx on ingest_identity_conflict (study_id);
create index ingest_rejection_at_idx on ingest_rejection (at);
create index instance_object_key_idx on instance (object_key);

-- Raised for a refusal (same UID with other content, another facility's study or series):
-- SQLSTATE TM409, the message written for the sender. Nothing of the call is kept.
create function ingest_instance(
    p_facility_id bigint,
    p_sop_instance_uid text,
    p_sop_class_uid text,
    p_transfer_syntax_uid text,
    p_study_uid text,
    p_series_uid text,
    p_patient_id text,
    p_patient_name text,
    p_birth_date text,
    p_sex text,
    p_accession text,
    p_study_date text,
    p_study_time text,
    p_study_description text,
    p_referring text,
    p_modality text,
    p_series_number integer,
    p_series_description text,
    p_body_part text,
    p_instance_number integer,
    p_object_key text,
    p_size_bytes bigint,
    p_dataset_sha256 text,
    p_sender_ae text,
    p_via text,
    p_metadata bytea,
    p_priority text,
    p_clinical_question text
) returns table (o_outcome text, o_study_id bigint, o_object_key text, o_conflicts text[],
                 o_late boolean)
language plpgsql as $$
declare
    v_existing record;
    v_study record;
    v_series record;
    v_patient_ref bigint;
    v_new_study boolean := false;
    v_conflicts text[] := '{}';
    v_p record;
    v_case record;
    v_told integer := 0;
begin
    select i.dataset_sha256, st.facility_id, i.object_key, st.id as study_id into v_existing
    from instance i join series se on se.id = i.series_id join study st on st.id = se.study_id
    where i.sop_instance_uid = p_sop_instance_uid;
    if found then
        if v_existing.facility_id <> p_facility_id then
            raise exception using errcode = 'TM409',
                message = format('instance %s was sent by another facility', p_sop_instance_uid);
        end if;
        if v_existing.dataset_sha256 <> p_dataset_sha256 then
            raise exception using errcode = 'TM409',
                message = format('instance %s is already stored with different content; '
                                 'the stored copy is kept', p_sop_instance_uid);
        end if;
        return query select 'duplicate', v_existing.study_id, v_existing.object_key,
                            '{}'::text[], false;
        return;
    end if;

    select st.id, st.facility_id, st.state, st.patient_ref into v_study
    from study st where st.study_instance_uid = p_study_uid;
    if not found then
        insert into patient (issuer_facility_id, patient_id, name, birth_date, sex)
        values (p_facility_id, p_patient_id, p_patient_name, p_birth_date, p_sex)
        on conflict (issuer_facility_id, patient_id) do update
            set name = coalesce(patient.name, excluded.name),
                birth_date = coalesce(patient.birth_date, excluded.birth_date),
                sex = coalesce(patient.sex, excluded.sex)
        returning id into v_patient_ref;
        insert into study (study_instance_uid, facility_id, patient_ref, accession_number,
                           study_date, study_time, description, referring_physician, priority,
                           clinical_question)
        values (p_study_uid, p_facility_id, v_patient_ref, p_accession, p_study_date,
                p_study_time, p_study_description, p_referring, p_priority, p_clinical_question)
        on conflict (study_instance_uid) do nothing
        returning id, facility_id, state, patient_ref into v_study;
        v_new_study := found;
        if not v_new_study then
            -- Another sender created it between our look-up and insert.
            select st.id, st.facility_id, st.state, st.patient_ref into v_study
            from study st where st.study_instance_uid = p_study_uid;
        end if;
    end if;
    if v_study.facility_id <> p_facility_id then
        raise exception using errcode = 'TM409',
            message = format('study %s was sent by another facility; a study belongs to one '
                             'facility', p_study_uid);
    end if;

    if v_new_study then
        insert into event (kind, facility_id, study_id) values ('received', p_facility_id, v_study.id);
    else
        -- One study, one patient: what differs is recorded, never merged in silence.
        select p.patient_id, p.name, p.birth_date, p.sex into v_p
        from patient p where p.id = v_study.patient_ref;
        if v_p.patient_id is distinct from p_patient_id then
            v_conflicts := v_conflicts || 'PatientID'::text;
            insert into ingest_identity_conflict (facility_id, study_id, sop_instance_uid,
                                                  attribute, study_value, instance_value)
            values (p_facility_id, v_study.id, p_sop_instance_uid, 'PatientID',
                    v_p.patient_id, p_patient_id);
        end if;
        if p_patient_name is not null and v_p.name is not null
           and rtrim(v_p.name, '^= ') <> rtrim(p_patient_name, '^= ') then
            v_conflicts := v_conflicts || 'PatientName'::text;
            insert into ingest_identity_conflict (facility_id, study_id, sop_instance_uid,
                                                  attribute, study_value, instance_value)
            values (p_facility_id, v_study.id, p_sop_instance_uid, 'PatientName',
                    v_p.name, p_patient_name);
        end if;
        if p_birth_date is not null and v_p.birth_date is not null
           and v_p.birth_date <> p_birth_date then
            v_conflicts := v_conflicts || 'PatientBirthDate'::text;
            insert into ingest_identity_conflict (facility_id, study_id, sop_instance_uid,
                                                  attribute, study_value, instance_value)
            values (p_facility_id, v_study.id, p_sop_instance_uid, 'PatientBirthDate',
                    v_p.birth_date, p_birth_date);
        end if;
        if p_sex is not null and v_p.sex is not null and v_p.sex <> p_sex then
            v_conflicts := v_conflicts || 'PatientSex'::text;
            insert into ingest_identity_conflict (facility_id, study_id, sop_instance_uid,
                                                  attribute, study_value, instance_value)
            values (p_facility_id, v_study.id, p_sop_instance_uid, 'PatientSex',
                    v_p.sex, p_sex);
        end if;
        if cardinality(v_conflicts) > 0 then
            -- No patient data in the event: the attribute names only.
            insert into event (kind, facility_id, study_id, detail)
            values ('identity_conflict', p_facility_id, v_study.id,
                    jsonb_build_object('sop_instance_uid', p_sop_instance_uid,
                                       'attributes', to_jsonb(v_conflicts)));
        end if;
    end if;

    insert into series (study_id, series_instance_uid, modality, series_number, description,
                        body_part)
    values (v_study.id, p_series_uid, p_modality, p_series_number, p_series_description,
            p_body_part)
    on conflict (series_instance_uid) do update
        set modality = coalesce(series.modality, excluded.modality)
    returning id, study_id, (xmax = 0) as inserted into v_series;
    if v_series.study_id <> v_study.id then
        raise exception using errcode = 'TM409',
            message = format('series %s already belongs to another study', p_series_uid);
    end if;

    insert into instance (series_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid,
                          instance_number, object_key, size_bytes, dataset_sha256, sender_ae,
                          received_via, metadata_zlib)
    values (v_series.id, p_sop_instance_uid, p_sop_class_uid, p_transfer_syntax_uid,
            p_instance_number, p_object_key, p_size_bytes, p_dataset_sha256, p_sender_ae, p_via,
            p_metadata)
    on conflict (sop_instance_uid) do nothing;
    if not found then
        -- A concurrent sender committed the same UID between our look-up and insert.
        select i.dataset_sha256, i.object_key into v_existing
        from instance i where i.sop_instance_uid = p_sop_instance_uid;
        if v_existing.dataset_sha256 <> p_dataset_sha256 then
            raise exception using errcode = 'TM409',
                message = format('instance %s is already stored with different content; '
                                 'the stored copy is kept', p_sop_instance_uid);
        end if;
        return query select 'duplicate', v_study.id, v_existing.object_key, '{}'::text[], false;
        return;
    end if;

    update series set num_instances = num_instances + 1 where id = v_series.id;
    update study
    set num_instances = num_instances + 1,
        num_series = num_series + case when v_series.inserted then 1 else 0 end,
        modalities = case when p_modality is null or p_modality = any(modalities) then modalities
                          else array_append(modalities, p_modality) end,
        last_received_at = now(),
        priority = case
            when p_priority = 'high' or priority = 'high' then 'high'
            when p_priority = 'medium' or priority = 'medium' then 'medium'
            else 'low' end,
        clinical_question = coalesce(clinical_question, p_clinical_question)
    where id = v_study.id;

    if v_study.state = 'complete' then
        -- The readers of every open case are told: the one who claimed it, else the pool.
        for v_case in
            select c.id, c.pool_facility_id, c.claimed_by from reading_case c
            where c.study_id = v_study.id and c.status in ('scheduled', 'in_progress')
        loop
            v_told := v_told + 1;
            insert into event (kind, facility_id, study_id, case_id, detail)
            values ('late_instance', p_facility_id, v_study.id, v_case.id,
                    jsonb_build_object('series_instance_uid', p_series_uid,
                                       'sop_instance_uid', p_sop_instance_uid));
            if to_regclass('notification') is not null then
                execute 'insert into notification (kind, facility_id, audience, user_id, case_id,'
                        ' detail) values ($1, $2, $3, $4, $5, $6)'
                using 'late_instance', v_case.pool_facility_id, 'reader', v_case.claimed_by,
                      v_case.id, jsonb_build_object('study_id', v_study.id,
                                                    'series_instance_uid', p_series_uid);
            end if;
        end loop;
        if v_told = 0 then
            -- No open case: the study's own log keeps it.
            insert into event (kind, facility_id, study_id, detail)
            values ('late_instance', p_facility_id, v_study.id,
                    jsonb_build_object('series_instance_uid', p_series_uid,
                                       'sop_instance_uid', p_sop_instance_uid));
        end if;
    end if;
    return query select 'stored', v_study.id, p_object_key, v_conflicts,
                        v_study.state = 'complete';
end
$$;
