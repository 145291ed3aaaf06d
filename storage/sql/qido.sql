-- QIDO-RS / C-FIND searches. The {scope} and {filters} markers are replaced by
-- storage/qido.py with fixed SQL fragments whose values travel as $n parameters; $1 and $2 are
-- always the limit and the offset.

-- name: qido_studies
select st.id as study_id, st.study_instance_uid, st.study_date, st.study_time,
       st.accession_number, st.description as study_description, st.referring_physician,
       st.modalities, st.num_series, st.num_instances, p.patient_id,
       p.name as patient_name, p.birth_date as patient_birth_date, p.sex as patient_sex,
       f.code as issuer{metadata}
from study st
join patient p on p.id = st.patient_ref
join facility f on f.id = p.issuer_facility_id
where {scope} and {filters}
order by st.study_date desc nulls last, st.study_time desc nulls last, st.id desc
limit $1 offset $2;

-- name: qido_studies_json
-- The study search answered as one DICOM JSON array built here: the hits are qido_studies,
-- the object is what storage/qido.py writes for the attributes asked for (from the qido_json_*
-- expressions of migration 0013). One row: the number of results and the body.
with hit as ({hits})
select count(*)::int as count,
       convert_to('[' || coalesce(string_agg({object}, ','
           order by h.study_date desc nulls last, h.study_time desc nulls last, h.study_id desc),
           '') || ']', 'UTF8') as body,
       coalesce(array_agg(h.study_instance_uid), '{}') as study_uids,
       coalesce(array_agg(distinct h.issuer || ':' || h.patient_id), '{}') as patients
from hit h;

-- Scopes, as conditions on the study `st` (fragments: their comment lines are dropped where
-- they are used), given the user's id parameter in place of the user marker. These are the
-- rules of study_visible_to (and, for readers, case_visible_to) written as joins the planner
-- can use, instead of one function call per candidate row: keep them equal to those functions
-- (tests/integration/test_qido_scale.py compares them on every user and study).

-- name: qido_scope_clinic
-- A clinic's own facility.
st.facility_id = (select u.facility_id from app_user u
                  where u.id = {user} and u.active and u.role = 'clinic')

-- name: qido_scope_admin
-- An administrator's network: their facility and everything below it.
st.facility_id = any(array(select facility_subtree(u.facility_id) from app_user u
                           where u.id = {user} and u.active and u.role = 'admin'))

-- name: qido_scope_reader
-- A reader: every study of a patient (or of a record linked to that patient) who has a case
-- the reader may see: routed to the pool they read for in one of their specialties, or
-- escalated from it. One correlated probe per candidate study, through the indexes on
-- study.patient_ref, patient_link.patient_id and reading_case.study_id.
exists (
    select 1
    from (select st.patient_ref
          union all
          select l2.patient_id from patient_link l1
          join patient_link l2 on l2.person_id = l1.person_id
          where l1.patient_id = st.patient_ref) lp (patient_ref)
    join study s2 on s2.patient_ref = lp.patient_ref
    join reading_case c on c.study_id = s2.id
    where c.specialty = any((select u.specialties from app_user u
                             where u.id = {user} and u.active and u.role = 'reader')::text[])
      and (c.pool_facility_id = (select u.facility_id from app_user u
                                 where u.id = {user} and u.active and u.role = 'reader')
           or (c.escalated_at is not null
               and c.first_pool_facility_id = (select u.facility_id from app_user u
                                               where u.id = {user} and u.active
                                                 and u.role = 'reader'))))

-- name: qido_scope_referral
-- Any user: a study attached to a referral their facility receives and has not declined
-- (attachment_granted, migration 0060).
st.id = any(array(
    select a.study_id from referral_attachment a
    join referral r on r.id = a.referral_id
    join app_user u on u.facility_id = r.to_facility_id
    where u.id = {user} and u.active and r.status <> 'declined' and a.study_id is not null))

-- name: qido_scope_reader_cases
-- The same reader rule driven from the other end, for a reader who sees few cases (a city
-- reader who gets only escalations, a township ECG pool): the patients of the cases they may
-- see, and the records linked to them, gathered once; the studies are then found by
-- study.patient_ref instead of probing every candidate study. Cases come from
-- reading_case_pool_idx and reading_case_escalated_from_idx (migration 0041).
st.patient_ref = any(array(
    with reader as (
        select u.facility_id, u.specialties from app_user u
        where u.id = {user} and u.active and u.role = 'reader'),
    seen (patient_ref) as (
        select s2.patient_ref
        from reader r
        join reading_case c on c.pool_facility_id = r.facility_id
                           and c.specialty = any(r.specialties)
        join study s2 on s2.id = c.study_id
        union
        select s2.patient_ref
        from reader r
        join reading_case c on c.first_pool_facility_id = r.facility_id
                           and c.specialty = any(r.specialties)
                           and c.escalated_at is not null
        join study s2 on s2.id = c.study_id)
    select seen.patient_ref from seen
    union
    select l2.patient_id from seen
    join patient_link l1 on l1.patient_id = seen.patient_ref
    join patient_link l2 on l2.person_id = l1.person_id))

-- name: qido_reader_cases_upto
-- How many cases a reader may see, counted up to $2 (which search shape fits them).
select count(*)::int from (
    select 1
    from app_user u
    join reading_case c on c.pool_facility_id = u.facility_id and c.specialty = any(u.specialties)
    where u.id = $1 and u.active and u.role = 'reader'
    union all
    select 1
    from app_user u
    join reading_case c on c.first_pool_facility_id = u.facility_id
                       and c.specialty = any(u.specialties) and c.escalated_at is not null
    where u.id = $1 and u.active and u.role = 'reader'
    limit $2) upto;

-- name: qido_series
select st.id as study_id, st.study_instance_uid, st.study_date, st.study_time,
       st.accession_number, st.description as study_description, st.referring_physician,
       st.modalities, st.num_series, st.num_instances, p.patient_id,
       p.name as patient_name, p.birth_date as patient_birth_date, p.sex as patient_sex,
       f.code as issuer, se.id as series_id, se.series_instance_uid, se.modality,
       se.series_number, se.description as series_description, se.body_part,
       se.num_instances as series_num_instances{metadata}
from series se
join study st on st.id = se.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = p.issuer_facility_id
where {scope} and {filters}
order by st.study_date desc nulls last, st.study_time desc nulls last, st.id desc,
         se.series_number nulls last, se.id
limit $1 offset $2;

-- name: qido_instances
select st.id as study_id, st.study_instance_uid, st.study_date, st.study_time,
       st.accession_number, st.description as study_description, st.referring_physician,
       st.modalities, st.num_series, st.num_instances, p.patient_id,
       p.name as patient_name, p.birth_date as patient_birth_date, p.sex as patient_sex,
       f.code as issuer, se.id as series_id, se.series_instance_uid, se.modality,
       se.series_number, se.description as series_description, se.body_part,
       se.num_instances as series_num_instances, i.sop_instance_uid, i.sop_class_uid,
       i.instance_number, i.transfer_syntax_uid, i.metadata_zlib, i.object_key, i.size_bytes
from instance i
join series se on se.id = i.series_id
join study st on st.id = se.study_id
join patient p on p.id = st.patient_ref
join facility f on f.id = p.issuer_facility_id
where {scope} and {filters}
order by st.study_date desc nulls last, st.study_time desc nulls last, st.id desc,
         se.series_number nulls last, se.id, i.instance_number nulls last, i.id
limit $1 offset $2;

-- name: qido_patients
select p.patient_id, p.name as patient_name, p.birth_date as patient_birth_date,
       p.sex as patient_sex, f.code as issuer, count(*) as num_studies,
       sum(st.num_series) as num_series, sum(st.num_instances) as num_instances
from study st
join patient p on p.id = st.patient_ref
join facility f on f.id = p.issuer_facility_id
where {scope} and {filters}
group by p.id, f.code
order by p.patient_id, p.id
limit $1 offset $2;

-- name: wado_instances
-- The stored instances of one study (optionally one series, one instance), in reading order.
-- The study's scope is checked once by the caller (wado_study_for_scope).
select i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.object_key,
       i.size_bytes, i.instance_number, se.series_instance_uid, i.metadata_zlib
from instance i join series se on se.id = i.series_id
where se.study_id = $1
  and ($2::text is null or se.series_instance_uid = $2)
  and ($3::text is null or i.sop_instance_uid = $3)
order by se.series_number nulls last, se.id, i.instance_number nulls last, i.id;

-- name: wado_instance_keys
-- Only what a frame or bulk data request needs: no metadata.
select i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.object_key,
       i.size_bytes, i.instance_number, se.series_instance_uid, null::bytea as metadata_zlib
from instance i join series se on se.id = i.series_id
where se.study_id = $1 and se.series_instance_uid = $2 and i.sop_instance_uid = $3;

-- name: series_metadata_cached
select body_zlib, num_instances from series_metadata
where series_id = (select se.id from series se where se.study_id = $1 and se.series_instance_uid = $2)
  and num_instances = (select se.num_instances from series se
                       where se.study_id = $1 and se.series_instance_uid = $2);

-- name: series_metadata_source
select se.id as series_id, se.num_instances, i.sop_instance_uid, i.metadata_zlib,
       i.object_key
from series se join instance i on i.series_id = se.id
where se.study_id = $1 and se.series_instance_uid = $2
order by i.instance_number nulls last, i.id;

-- name: series_metadata_store
insert into series_metadata (series_id, num_instances, body_zlib)
values ($1, $2, $3)
on conflict (series_id) do update
    set num_instances = excluded.num_instances, body_zlib = excluded.body_zlib,
        built_at = now()
where series_metadata.num_instances <= excluded.num_instances;

-- name: dicom_node_upsert
insert into dicom_node (ae_title, user_id, facility_id, host, port, may_query, move_destination,
                        peer_host, cert_sha256, tls)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (ae_title) do update
    set user_id = excluded.user_id, facility_id = excluded.facility_id, host = excluded.host,
        port = excluded.port, may_query = excluded.may_query,
        move_destination = excluded.move_destination, peer_host = excluded.peer_host,
        cert_sha256 = excluded.cert_sha256, tls = excluded.tls;

-- name: dicom_node_by_ae
-- owner_facility_id: the node's facility, else its user's.
select n.ae_title, n.user_id, n.facility_id, n.host, n.port, n.may_query, n.move_destination,
       n.peer_host, n.cert_sha256, n.tls,
       coalesce(n.facility_id, u.facility_id) as owner_facility_id
from dicom_node n left join app_user u on u.id = n.user_id where n.ae_title = $1;

-- name: dicom_caller_scope
-- Who a calling AE title queries as: a node's user (its role and facility), a node's
-- facility, or a workstation's facility (facility_ae).
select u.id as user_id, u.role, u.facility_id
from dicom_node n join app_user u on u.id = n.user_id
where n.ae_title = $1 and n.may_query and u.active
union all
select null, 'clinic', n.facility_id
from dicom_node n where n.ae_title = $1 and n.may_query and n.user_id is null
union all
select null, 'clinic', a.facility_id
from facility_ae a where a.ae_title = $1
  and not exists (select 1 from dicom_node n where n.ae_title = $1)
limit 1;
