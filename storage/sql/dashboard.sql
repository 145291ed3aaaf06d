-- The administrator's dashboard, over case_turnaround (migration 0065). Every query takes
-- the network's root and the filters as $1 and $4..$9 (tier, facility subtree, specialty,
-- modality, priority, reader; null keeps all) and the period as $2 (from) and $3 (until,
-- excluded). Durations are in seconds.

-- name: dashboard_breakdown
-- Cases whose first final report was signed in the period, all together and by each
-- dimension: received->final and final->acknowledged p50/p90, and the deadline kept.
with b as (
    select case when grouping(t.tier) = 0 then 'tier'
                when grouping(t.facility_id) = 0 then 'facility'
                when grouping(t.specialty) = 0 then 'specialty'
                when grouping(t.modality) = 0 then 'modality'
                when grouping(t.priority) = 0 then 'priority'
                when grouping(t.reader_id) = 0 then 'reader'
                else 'all' end as dimension,
           t.tier, t.facility_id, t.specialty, t.modality, t.priority, t.reader_id,
           count(*)::int as cases,
           percentile_cont(array[0.5, 0.9]) within group (order by t.final_s) as final_q,
           count(t.ack_s)::int as acknowledged,
           percentile_cont(array[0.5, 0.9]) within group (order by t.ack_s) as ack_q,
           count(*) filter (where t.sla_met)::int as sla_met
    from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
    where t.final_at >= $2 and t.final_at < $3
    group by grouping sets ((), (t.tier), (t.facility_id), (t.specialty), (t.modality),
                            (t.priority), (t.reader_id))
)
select b.*, f.code as facility_code, f.name as facility_name,
       u.username as reader_username, u.display_name as reader_name,
       rf.code as reader_facility
from b
left join facility f on f.id = b.facility_id
left join app_user u on u.id = b.reader_id
left join facility rf on rf.id = u.facility_id
order by b.dimension, b.cases desc, coalesce(b.tier, f.code, b.specialty, b.modality,
                                             b.priority, u.username);

-- name: dashboard_trend
-- The same figures for each day, week or month ($10) of the period in the zone $11, for
-- all specialties together (specialty null) and for each.
select date_trunc($10, t.final_at, $11) as bucket,
       t.specialty,
       count(*)::int as cases,
       percentile_cont(array[0.5, 0.9]) within group (order by t.final_s) as final_q,
       count(t.ack_s)::int as acknowledged,
       percentile_cont(array[0.5, 0.9]) within group (order by t.ack_s) as ack_q,
       count(*) filter (where t.sla_met)::int as sla_met
from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
where t.final_at >= $2 and t.final_at < $3
group by grouping sets ((date_trunc($10, t.final_at, $11)),
                        (date_trunc($10, t.final_at, $11), t.specialty))
order by 1, 2 nulls first;

-- name: dashboard_intake
-- Cases received in the period: per day, week or month ($10, zone $11) and specialty, and
-- per sending facility with how many of them readers returned for quality.
select date_trunc($10, t.received_at, $11) as bucket,
       t.specialty, t.facility_id, f.code as facility_code, f.name as facility_name,
       count(*)::int as cases,
       count(*) filter (where t.returned_at is not null)::int as returned,
       count(*) filter (where t.final_at is not null)::int as reported
from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
left join facility f on f.id = t.facility_id
where t.received_at >= $2 and t.received_at < $3
group by grouping sets ((date_trunc($10, t.received_at, $11), t.specialty),
                        (t.facility_id, f.code, f.name))
order by 1, 2, f.code;

-- name: dashboard_referrals
-- Referrals made in the period from or to a facility of the network (or of the facility
-- filter's subtree, $4), up and down: per day, week or month ($5, zone $6), and by status.
select date_trunc($5, r.created_at, $6) as bucket, r.direction, r.status,
       count(*)::int as referrals
from referral r
where r.created_at >= $2 and r.created_at < $3
  and (r.from_facility_id in (select facility_subtree(coalesce($4::bigint, $1)))
       or r.to_facility_id in (select facility_subtree(coalesce($4::bigint, $1))))
  and (r.from_facility_id in (select facility_subtree($1))
       or r.to_facility_id in (select facility_subtree($1)))
group by grouping sets ((date_trunc($5, r.created_at, $6), r.direction),
                        (r.direction, r.status))
order by 1, 2, 3;

-- name: dashboard_choices
-- What the filters offer: the network's facilities, and the modalities and readers of its
-- cases reported in the period ($2, $3).
select 'facility' as kind, f.code as value, f.name as label, f.tier as extra
from facility f where f.id in (select facility_subtree($1))
union all
select 'modality', m.modality, m.modality, null
from (select distinct t.modality from case_turnaround t
      where t.final_at >= $2 and t.final_at < $3 and t.modality <> ''
        and t.facility_id in (select facility_subtree($1))) m
union all
select 'reader', u.username, u.display_name, rf.code
from app_user u join facility rf on rf.id = u.facility_id
where u.id in (select distinct t.reader_id from case_turnaround t
               where t.final_at >= $2 and t.final_at < $3
                 and t.facility_id in (select facility_subtree($1)))
order by 1, 2;
