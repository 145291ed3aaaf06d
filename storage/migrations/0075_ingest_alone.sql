-- An instance indexed alone (no other arriving meanwhile: one association, one client) is
-- written in one round trip: the hold check, the index row and its receipt in one statement,
-- its own transaction, instead of BEGIN, the check, the row, the receipt and COMMIT.

-- A record naming studies by id or UID, and their patients (issuer code:patient ID): the
-- names resolved as the audit_append statement resolved them, now in one place.
create function audit_append_named(
    p_user_id bigint, p_username text, p_role text, p_facility_id bigint,
    p_action text, p_object_type text, p_object_id text, p_patients text[], p_studies text[],
    p_address text, p_result text, p_detail jsonb, p_study_ids bigint[]
) returns bigint
language sql as $$
    with named as (
        select s.study_instance_uid as uid, f.code || ':' || p.patient_id as patient
        from study s
        join patient p on p.id = s.patient_ref
        join facility f on f.id = p.issuer_facility_id
        where s.id = any(p_study_ids) or s.study_instance_uid = any(p_studies)
    )
    select audit_append(
        p_user_id, p_username, p_role, p_facility_id, p_action, p_object_type, p_object_id,
        array(select distinct x from unnest(p_patients || array(select patient from named)) x
              order by x),
        array(select distinct x from unnest(p_studies || array(select uid from named)) x
              order by x),
        p_address, p_result, p_detail
    );
$$;

-- The hold check of open_cases_for_hold (the study's open cases locked against a claim until
-- this statement commits), then ingest_instance and object_guard as the ingest_instance
-- statement calls them, then the receipt (the audit chain's lock taken last). Outcome
-- 'hold': a reader has claimed the study's case; nothing was written (hold it in a
-- transaction). A receipt that cannot be written raises TM503.
create function ingest_instance_alone(
    p_hold boolean,
    p_facility_id bigint, p_sop_instance_uid text, p_sop_class_uid text,
    p_transfer_syntax_uid text, p_study_uid text, p_series_uid text, p_patient_id text,
    p_patient_name text, p_birth_date text, p_sex text, p_accession text, p_study_date text,
    p_study_time text, p_study_description text, p_referring text, p_modality text,
    p_series_number integer, p_series_description text, p_body_part text,
    p_instance_number integer, p_object_key text, p_size_bytes bigint, p_dataset_sha256 text,
    p_sender_ae text, p_via text, p_metadata bytea, p_priority text, p_clinical_question text,
    a_user_id bigint, a_username text, a_role text, a_facility_id bigint, a_action text,
    a_object_type text, a_object_id text, a_patients text[], a_studies text[], a_address text,
    a_result text, a_detail jsonb, a_study_ids bigint[]
) returns table (o_outcome text, o_study_id bigint, o_object_key text, o_conflicts text[],
                 o_late boolean)
language plpgsql as $$
declare
    v_claimed boolean := false;
    v_case record;
    r record;
begin
    if p_hold then
        for v_case in
            select c.status from reading_case c join study s on s.id = c.study_id
            where s.study_instance_uid = p_study_uid and s.facility_id = p_facility_id
              and c.status in ('scheduled', 'in_progress')
              and not exists (select 1 from instance i where i.sop_instance_uid = p_sop_instance_uid)
            order by c.id
            for share of c
        loop
            v_claimed := v_claimed or v_case.status = 'in_progress';
        end loop;
        if v_claimed then
            return query select 'hold'::text, null::bigint, null::text, null::text[], null::boolean;
            return;
        end if;
    end if;
    select * into r from ingest_instance(
        p_facility_id, p_sop_instance_uid, p_sop_class_uid, p_transfer_syntax_uid, p_study_uid,
        p_series_uid, p_patient_id, p_patient_name, p_birth_date, p_sex, p_accession,
        p_study_date, p_study_time, p_study_description, p_referring, p_modality,
        p_series_number, p_series_description, p_body_part, p_instance_number, p_object_key,
        p_size_bytes, p_dataset_sha256, p_sender_ae, p_via, p_metadata, p_priority,
        p_clinical_question);
    perform object_guard(p_object_key);
    begin
        perform audit_append_named(
            a_user_id, a_username, a_role, a_facility_id, a_action, a_object_type, a_object_id,
            a_patients, a_studies, a_address, a_result, a_detail, a_study_ids);
    exception when others then
        raise exception using errcode = 'TM503',
            message = format('the receipt could not be written (%s)', sqlstate);
    end;
    return query select r.o_outcome, r.o_study_id, r.o_object_key, r.o_conflicts, r.o_late;
end $$;
