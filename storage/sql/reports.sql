-- name: report_insert
-- A final report's version counts the case's final reports (an addendum is the next one).
insert into report (case_id, author_id, status, findings, impression, conclusion,
                    signature_sha256, signed_at, amends_report_id, agreed, discrepancy,
                    compared_report_id, version)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
        case when $3 = 'final'
             then (select count(*) + 1 from report where case_id = $1 and status = 'final')
             else 1 end)
returning id;

-- name: report_latest_preliminary
select id, conclusion from report where case_id = $1 and status = 'preliminary'
order by id desc limit 1;

-- name: report_first_final
select id, conclusion from report where case_id = $1 and status = 'final'
order by id limit 1;

-- name: reports_of_case
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at, r.amends_report_id,
       r.version,
       -- between the readers: not the clinic's (it tells the preliminary's conclusion)
       case when u_self.role = 'clinic' then null else r.agreed end as agreed,
       case when u_self.role = 'clinic' then null else r.discrepancy end as discrepancy,
       r.pdf_key, r.acknowledged_name, r.acknowledged_read_back, r.critical_due_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
join app_user u_self on u_self.id = $2
where r.case_id = $1 and report_visible_to($2, r.id)
order by r.id;

-- name: inbox
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at, r.amends_report_id,
       r.version,
       -- between the readers: not the clinic's (it tells the preliminary's conclusion)
       case when u_self.role = 'clinic' then null else r.agreed end as agreed,
       case when u_self.role = 'clinic' then null else r.discrepancy end as discrepancy,
       r.pdf_key, r.acknowledged_name, r.acknowledged_read_back, r.critical_due_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
join app_user u_self on u_self.id = $1
where r.delivered_at is not null and report_visible_to($1, r.id)
  and ($2::boolean is null or (r.acknowledged_at is null) = $2)
order by r.delivered_at desc, r.id desc
limit $3 offset $4;

-- name: report_for_user
select r.id, r.case_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at, r.amends_report_id,
       r.version,
       -- between the readers: not the clinic's (it tells the preliminary's conclusion)
       case when u_self.role = 'clinic' then null else r.agreed end as agreed,
       case when u_self.role = 'clinic' then null else r.discrepancy end as discrepancy,
       r.pdf_key, r.acknowledged_name, r.acknowledged_read_back, r.critical_due_at
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join app_user u on u.id = r.author_id
join app_user u_self on u_self.id = $2
where r.id = $1 and report_visible_to($2, r.id);

-- name: report_document
select r.id, r.case_id, c.study_id, st.study_instance_uid, c.facility_id, r.author_id,
       u.display_name as author_name, r.status, r.findings, r.impression, r.conclusion,
       r.signed_at, r.signature_sha256, r.delivered_at, r.acknowledged_at, r.amends_report_id,
       r.version, r.agreed, r.discrepancy, r.pdf_key, r.acknowledged_name, r.acknowledged_read_back, r.critical_due_at,
       c.specialty, sf.name as sending_facility, rf.name as reading_facility,
       p.patient_id, p.name as patient_name, p.birth_date, p.sex, st.study_date,
       st.study_time, st.accession_number, st.description, st.modalities,
       st.referring_physician,
       (select i.metadata_zlib from series se join instance i on i.series_id = se.id
        where se.study_id = st.id
        order by se.series_number nulls last, se.id, i.instance_number nulls last, i.id
        limit 1) as first_metadata_zlib
from report r
join reading_case c on c.id = r.case_id
join study st on st.id = c.study_id
join patient p on p.id = st.patient_ref
join app_user u on u.id = r.author_id
join facility sf on sf.id = c.facility_id
join facility rf on rf.id = u.facility_id
where r.id = $1;

-- name: report_deliver
update report r
set delivered_at = now(), pdf_key = coalesce($2, r.pdf_key),
    critical_due_at = case when r.conclusion = 'critical' and r.amends_report_id is null
                           then now() + $3::interval end
from reading_case c
where r.id = $1 and c.id = r.case_id and r.delivered_at is null and r.status = 'final'
returning r.case_id, c.facility_id, c.study_id, r.conclusion, r.amends_report_id, r.version;

-- name: report_acknowledge
update report r set acknowledged_at = now(), acknowledged_by = $2, acknowledged_name = $3,
                    acknowledged_read_back = $4, critical_due_at = null
from reading_case c
where r.id = $1 and c.id = r.case_id and r.acknowledged_at is null
returning r.case_id, c.facility_id, c.study_id;

-- name: critical_overdue_lock
select r.id, r.case_id, r.critical_resends, c.facility_id, c.study_id, f.code as clinic_code,
       coalesce((network_policy_of(c.facility_id)).critical_ack,
                interval '15 minutes') as critical_ack,
       (select id from facility_ancestry(c.facility_id) where tier = 'county' limit 1)
           as county_id
from report r
join reading_case c on c.id = r.case_id
join facility f on f.id = c.facility_id
where r.critical_due_at <= $1 and r.acknowledged_at is null
order by r.critical_due_at
limit $2
for update of r skip locked;

-- name: critical_resent
update report
set critical_resends = critical_resends + 1, critical_due_at = $3::timestamptz + $2::interval,
    critical_alerted_at = coalesce(critical_alerted_at, now())
where id = $1;

-- name: facility_admins
select id from app_user where role = 'admin' and active and facility_id = $1 order by id;

-- name: dicom_send_insert
insert into dicom_send (report_id, object_key, sop_class_uid, sop_instance_uid, ae_title, host,
                        port, tls)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (sop_instance_uid) do nothing;

-- name: dicom_send_due
-- Due sends, pushed a minute ahead so a second worker does not take them meanwhile.
update dicom_send d set next_attempt_at = now() + interval '1 minute'
from (select id from dicom_send
      where status = 'pending' and next_attempt_at <= now()
      order by next_attempt_at limit $1
      for update skip locked) due
where d.id = due.id
returning d.id, d.report_id, d.object_key, d.ae_title, d.host, d.port, d.tls, d.attempts;

-- name: dicom_send_sent
update dicom_send set status = 'sent', attempts = attempts + 1, sent_at = now(),
                      last_error = null
where id = $1;

-- name: dicom_send_failed
-- $3 null: no more attempts.
update dicom_send
set attempts = attempts + 1, last_error = $2,
    status = case when $3::interval is null then 'failed' else 'pending' end,
    next_attempt_at = now() + coalesce($3::interval, interval '0')
where id = $1;

-- name: dicom_sends_of_report
select sop_class_uid, sop_instance_uid, ae_title, status, attempts, last_error, sent_at
from dicom_send where report_id = $1 order by id;

-- name: reads_above_author
-- Whether the user ($1) works at a facility above the one the author ($2) signed at: in the
-- author's own line up to the top of the network (a city reader over a county's).
with recursive up(id) as (
    select f.parent_id from app_user a join facility f on f.id = a.facility_id
    where a.id = $2 and f.parent_id is not null
    union all
    select f.parent_id from facility f join up on f.id = up.id where f.parent_id is not null
)
select exists (
    select 1 from app_user u where u.id = $1 and u.facility_id in (select id from up)
);
