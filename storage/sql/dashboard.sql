-- The administrator's dashboard, over case_turnaround (migration 0065). Every query takes
-- the network's root and the filters as $1 and $4..$9 (tier, facility subtree, specialty,
-- modality, priority, reader; null keeps all) and the period as $2 (from) and $3 (until,
-- excluded). Durations are in seconds.

-- name: dashboard_figures
-- Cases whose first final report was signed in the period, by one dimension ($10: all,
-- tier, facility, specialty, modality, priority or reader; one query each, run side by
-- side): received->final and final->acknowledged p50/p90, and the deadline kept. The
-- key groups in the "C" collation: byte order sorts the period's cases several times
-- faster than the language's rules, and the order of the rows is set below.
with b as (
    select case $10::text when 'tier' then t.tier
                          when 'facility' then t.facility_id::text
                          when 'specialty' then t.specialty
                          when 'modality' then t.modality
                          when 'priority' then t.priority
                          when 'reader' then t.reader_id::text
                          else '' end collate "C" as key,
           count(*)::int as cases,
           percentile_cont(array[0.5, 0.9]) within group (order by t.final_s) as final_q,
           count(t.ack_s)::int as acknowledged,
           percentile_cont(array[0.5, 0.9]) within group (order by t.ack_s) as ack_q,
           count(*) filter (where t.sla_met)::int as sla_met
    from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
    where t.final_at >= $2 and t.final_at < $3
    group by 1
)
select b.*, coalesce(f.code, u.username, b.key) as code,
       coalesce(f.name, u.display_name, b.key) as label, coalesce(rf.code, '') as extra
from b
left join facility f on $10::text = 'facility' and f.id::text = b.key
left join app_user u on $10::text = 'reader' and u.id::text = b.key
left join facility rf on rf.id = u.facility_id
order by b.cases desc, 4;

-- name: dashboard_reported
-- The cases whose first final report was signed in the period, by their tier, specialty,
-- modality and priority (a few groups: the client codes each group's values once, where a
-- code looked up per case costs a comparison with each listed value), and each group's
-- cases as one string of their packed figures (case_turnaround.figures, 34 bytes a case:
-- ids, seconds, the time of the final report and the deadline kept), back to back.
select t.tier, t.specialty, t.modality, t.priority, string_agg(t.figures, '') as figures
from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
where t.final_at >= $2 and t.final_at < $3
group by 1, 2, 3, 4;

-- name: dashboard_facility_names
-- The code and name of each facility of $1.
select id, code, name from facility where id = any($1::bigint[]);

-- name: dashboard_reader_names
-- The username, name and facility code of each user of $1.
select u.id, u.username, u.display_name, coalesce(f.code, '') as facility_code
from app_user u left join facility f on f.id = u.facility_id
where u.id = any($1::bigint[]);

-- name: dashboard_trend
-- The same figures for each day, week or month ($10) of the period in the zone $11, for
-- all specialties together (specialty null) and for each.
select date_trunc($10, t.final_at, $11) as bucket, t.specialty,
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
-- Cases received in the period: per day, week or month (its start: the last of the bucket
-- starts $10 at or before the receipt) and specialty, and per sending facility with how
-- many of them readers returned for quality (grouped by id, named after). The cases are
-- grouped once by all three, and those few groups summed up by each grouping set: one
-- pass over the period's cases instead of one per set.
with c as (
    select width_bucket(t.received_at, $10::timestamptz[]) as place, t.specialty,
           t.facility_id,
           count(*)::int as cases,
           count(*) filter (where t.returned_at is not null)::int as returned,
           count(*) filter (where t.final_at is not null)::int as reported
    from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
    where t.received_at >= $2 and t.received_at < $3
    group by 1, 2, 3
), x as (
    select c.place, c.specialty, c.facility_id, sum(c.cases)::int as cases,
           sum(c.returned)::int as returned, sum(c.reported)::int as reported
    from c
    group by grouping sets ((1, 2), (3))
)
select ($10::timestamptz[])[x.place] as bucket, x.specialty, f.code as facility_code,
       f.name as facility_name, x.cases, x.returned, x.reported
from x left join facility f on f.id = x.facility_id
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

-- name: dashboard_facilities
-- The facilities of the network, for the filter.
select f.code, f.name, f.tier from facility f
where f.id in (select facility_subtree($1))
order by f.code;

-- name: dashboard_escalations
-- Cases escalated in the period (sent up from the pool that first had them, automatically
-- or by a reader): in all, by that pool, by specialty and by priority; how many have a
-- final report, escalation->final p50/p90 in seconds, and the deadline kept. The cases are
-- read first (from the index on the time they went up: grouping sets over the inlined
-- filters would otherwise read the whole table), then grouped.
with e as materialized (
    select t.first_pool_facility_id, t.specialty, t.priority, t.final_at, t.sla_met,
           extract(epoch from (t.final_at - t.escalated_at))::float8 as answer_s
    from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
    where t.escalated_at >= $2 and t.escalated_at < $3
), g as (
    select case when grouping(e.first_pool_facility_id) = 0 then 'pool'
                when grouping(e.specialty) = 0 then 'specialty'
                when grouping(e.priority) = 0 then 'priority'
                else 'all' end as dimension,
           e.first_pool_facility_id, e.specialty, e.priority,
           count(*)::int as escalated,
           count(e.final_at)::int as answered,
           percentile_cont(array[0.5, 0.9]) within group (order by e.answer_s) as answer_q,
           count(*) filter (where e.sla_met)::int as sla_met
    from e
    group by grouping sets ((), (e.first_pool_facility_id), (e.specialty), (e.priority))
)
select g.dimension, coalesce(f.code, g.specialty, g.priority, '') as key,
       coalesce(f.name, '') as name, g.escalated, g.answered, g.answer_q, g.sla_met
from g left join facility f on g.dimension = 'pool' and f.id = g.first_pool_facility_id
order by 1, g.escalated desc, 2;

-- name: dashboard_second_reads
-- Cases whose first final report, signed in the period, was compared with an earlier read
-- (an escalated case's, a second read's): in all, by the first reader (the earlier read's
-- author, or who escalated), by specialty and by sending facility; how many disagreed.
with s as materialized (
    select t.first_reader_id, t.specialty, t.facility_id, t.agreed
    from dashboard_cases($1, $4, $5, $6, $7, $8, $9) t
    where t.final_at >= $2 and t.final_at < $3 and t.agreed is not null
), g as (
    select case when grouping(s.first_reader_id) = 0 then 'reader'
                when grouping(s.specialty) = 0 then 'specialty'
                when grouping(s.facility_id) = 0 then 'facility'
                else 'all' end as dimension,
           s.first_reader_id, s.specialty, s.facility_id,
           count(*)::int as reads,
           count(*) filter (where not s.agreed)::int as discrepancies
    from s
    group by grouping sets ((), (s.first_reader_id), (s.specialty), (s.facility_id))
)
select g.dimension,
       coalesce(u.username, f.code, g.specialty, '') as key,
       coalesce(u.display_name, f.name, '') as name,
       coalesce(uf.code, '') as facility,
       g.reads, g.discrepancies
from g
left join app_user u on g.dimension = 'reader' and u.id = g.first_reader_id
left join facility uf on uf.id = u.facility_id
left join facility f on g.dimension = 'facility' and f.id = g.facility_id
order by 1, g.reads desc, 2;
