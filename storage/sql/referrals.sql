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
                      created_by)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
returning id;

-- name: referral_lock_for_user
select r.id, r.direction, r.status, r.case_id, r.from_facility_id, r.to_facility_id
from referral r where r.id = $1 and referral_visible_to($2, r.id)
for update;

-- name: referral_respond
update referral
set status = $2, responded_by = $3, responded_at = now(), appointment_at = $4,
    decline_reason = case when $2 = 'declined' then $5 end
where id = $1;

-- name: referral_for_user
select r.*, ff.code as from_code, tf.code as to_code, p.name as patient_name
from referral r
join facility ff on ff.id = r.from_facility_id
join facility tf on tf.id = r.to_facility_id
join patient p on p.id = r.patient_ref
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
