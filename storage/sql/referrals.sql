-- name: referral_source
select r.patient_ref, r.from_facility_id, r.case_id from referral r
where r.id = $1 and referral_visible_to($2, r.id);

-- name: case_patient_for_user
select st.patient_ref, c.facility_id from reading_case c join study st on st.id = c.study_id
where c.id = $1 and case_visible_to($2, c.id);

-- name: facility_by_code
select id, code, name, tier, parent_id from facility where code = $1;

-- name: referral_insert
insert into referral (direction, patient_ref, case_id, in_reply_to, from_facility_id,
                      to_facility_id, urgency, reason, discharge_summary, follow_up_plan,
                      created_by, preliminary_diagnosis, history, findings)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
returning id;

-- name: referral_lock_for_user
select r.id, r.direction, r.status, r.case_id, r.from_facility_id, r.to_facility_id,
       r.created_at
from referral r where r.id = $1 and referral_visible_to($2, r.id)
for update;

-- name: referral_respond
update referral
set status = $2, responded_by = $3, responded_at = now(), appointment_at = $4,
    decline_reason = case when $2 = 'declined' then $5 end,
    department = $6, doctor = $7, green_channel = $8
where id = $1;

-- name: referral_arrive
update referral set status = 'arrived', arrived_at = $2, arrived_by = $3 where id = $1;

-- name: referral_return
update referral
set status = 'returned', returned_at = now(), returned_by = $2, return_kind = $3,
    return_diagnosis = $4, return_orders = $5, return_follow_up = $6
where id = $1;

-- name: referral_patient
select p.id, p.issuer_facility_id from patient p where p.id = $1;

-- name: referral_attachable_studies
-- Of the studies asked, those of the patient (or a record linked to them) the user may see.
select s.id from study s
where s.id = any($1::bigint[]) and s.patient_ref in (select linked_patients($2))
  and study_visible_to($3, s.id);

-- name: referral_attachable_reports
select r.id from report r
join reading_case c on c.id = r.case_id
join study s on s.id = c.study_id
where r.id = any($1::bigint[]) and s.patient_ref in (select linked_patients($2))
  and report_visible_to($3, r.id);

-- name: referral_attach
insert into referral_attachment (referral_id, study_id, report_id)
select $1::bigint, unnest($2::bigint[]), null::bigint
union all
select $1::bigint, null::bigint, unnest($3::bigint[]);

-- name: referral_attachments
select a.study_id, a.report_id, s.study_instance_uid, s.modalities, s.study_date,
       s.description, rp.conclusion, rp.impression,
       (select i.sop_instance_uid from series se join instance i on i.series_id = se.id
        where se.study_id = s.id and se.modality = 'ECG' order by i.id limit 1) as ecg_sop
from referral_attachment a
left join report rp on rp.id = a.report_id
left join reading_case c on c.id = rp.case_id
join study s on s.id = coalesce(a.study_id, c.study_id)
where a.referral_id = $1
order by a.report_id nulls first, a.id;

-- name: referral_results_of_patient
-- What a referral form may attach: the patient's studies and reports the user may see.
select s.id as study_id, null::bigint as report_id, s.study_instance_uid, s.modalities,
       s.study_date, s.description, null::text as conclusion, null::text as impression,
       null::text as ecg_sop
from study s
where s.patient_ref in (select linked_patients($1)) and study_visible_to($2, s.id)
union all
select null, rp.id, s.study_instance_uid, s.modalities, s.study_date, s.description,
       rp.conclusion, rp.impression, null
from report rp
join reading_case c on c.id = rp.case_id
join study s on s.id = c.study_id
where s.patient_ref in (select linked_patients($1)) and report_visible_to($2, rp.id)
order by study_date desc nulls last, study_instance_uid, report_id nulls first
limit 200;

-- name: referral_clinic_patients
-- The patients a clinic may refer: its own records, those with a study most recent first.
select p.id, p.patient_id, p.name, p.sex, p.birth_date
from patient p
where p.issuer_facility_id = $1
order by (select max(s.id) from study s where s.patient_ref = p.id) desc nulls last, p.id desc
limit $2;

-- name: referral_statistics
-- Per facility and month (the month, in the network's time zone $4, the referral was raised),
-- each step counted at the facility that took it: up-referrals (and how many were accepted,
-- arrived, returned down) at the sender; down-referrals and returns down at the hospital.
with step as (
    select r.from_facility_id as facility_id, r.created_at, 'up' as step, r.status
    from referral r where r.direction = 'up'
    union all
    select r.from_facility_id, r.created_at, 'down', r.status
    from referral r where r.direction = 'down'
    union all
    select r.to_facility_id, r.created_at, 'return', r.status
    from referral r where r.direction = 'up' and r.status = 'returned'
)
select f.code, f.name, to_char(s.created_at at time zone $4, 'YYYY-MM') as month,
       count(*) filter (where s.step = 'up')::int as up,
       count(*) filter (where s.step = 'up'
                          and s.status in ('accepted', 'arrived', 'returned'))::int as accepted,
       count(*) filter (where s.step = 'up' and s.status = 'declined')::int as declined,
       count(*) filter (where s.step = 'up' and s.status in ('arrived', 'returned'))::int
           as arrived,
       count(*) filter (where s.step = 'up' and s.status = 'returned')::int as returned,
       count(*) filter (where s.step in ('down', 'return'))::int as down
from step s join facility f on f.id = s.facility_id
where s.facility_id in (select facility_subtree($1))
  and s.created_at >= $2 and s.created_at < $3
group by f.code, f.name, month
order by month, f.code;

-- name: referral_for_user
select r.*, ff.code as from_code, tf.code as to_code, p.name as patient_name
from referral r
join facility ff on ff.id = r.from_facility_id
join facility tf on tf.id = r.to_facility_id
join patient p on p.id = r.patient_ref
where r.id = $1 and referral_visible_to($2, r.id);

-- name: referral_papers
-- What the printed documents show beside the referral: the patient as the index holds them
-- (the national ID only as its stored keyed hash), the facilities' and people's names.
select p.patient_id, p.sex, p.birth_date, pf.name as issuer_name, pe.national_id_digest,
       ff.name as from_name, tf.name as to_name, cu.display_name as created_by_name,
       ru.display_name as responded_by_name, au.display_name as arrived_by_name,
       tu.display_name as returned_by_name
from referral r
join patient p on p.id = r.patient_ref
join facility pf on pf.id = p.issuer_facility_id
left join patient_link l on l.patient_id = p.id
left join person pe on pe.id = l.person_id
join facility ff on ff.id = r.from_facility_id
join facility tf on tf.id = r.to_facility_id
join app_user cu on cu.id = r.created_by
left join app_user ru on ru.id = r.responded_by
left join app_user au on au.id = r.arrived_by
left join app_user tu on tu.id = r.returned_by
where r.id = $1 and referral_visible_to($2, r.id);

-- name: referrals_for_user
select r.*, ff.code as from_code, tf.code as to_code, p.name as patient_name
from referral r
join facility ff on ff.id = r.from_facility_id
join facility tf on tf.id = r.to_facility_id
join patient p on p.id = r.patient_ref
where referral_visible_to($1, r.id)
order by r.created_at desc, r.id desc
limit $2 offset $3;

-- name: referral_stats
select r.from_facility_id, f.code, r.direction, r.status, count(*)::int as n,
       percentile_cont(0.5) within group (
           order by extract(epoch from (r.responded_at - r.created_at))) as median_s
from referral r join facility f on f.id = r.from_facility_id
where r.from_facility_id in (select facility_subtree($1))
  and r.created_at >= $2 and r.created_at < $3
group by r.from_facility_id, f.code, r.direction, r.status
order by f.code, r.direction, r.status;
