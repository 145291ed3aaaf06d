-- name: turnaround
-- Received (first instance, server clock) to first final report, per sending facility
-- (case_turnaround, migration 0065, keeps both times of each case).
select f.id as facility_id, f.code, f.name, count(*) as reports,
       percentile_cont(0.5) within group (order by t.final_s) as median_s,
       percentile_cont(0.9) within group (order by t.final_s) as p90_s,
       avg(t.final_s) as mean_s, max(t.final_s) as max_s
from case_turnaround t join facility f on f.id = t.facility_id
where t.final_at >= $2 and t.final_at < $3
  and t.facility_id in (select facility_subtree($1))
group by f.id, f.code, f.name
order by f.code;

-- name: turnaround_segments
-- $4..$6: segment names with their start and end event kinds. Study-level events
-- (received, complete) count for each case of the study; acknowledgement is of the case's
-- first final report.
with cases as (
    select t.case_id as id, t.study_id
    from case_turnaround t
    where t.facility_id in (select facility_subtree($1))
      and (($7::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $7)
),
-- the first event of each kind of each case, found by the events' indexes
firsts as (
    select cs.id as case_id, x.kind, min(x.at) as at
    from cases cs
    cross join lateral (
        select e.kind, e.at from event e where e.case_id = cs.id
        union all
        select e.kind, e.at from event e where e.study_id = cs.study_id and e.case_id is null
    ) x
    group by cs.id, x.kind
),
seg as (
    select s.name, extract(epoch from (b.at - a.at)) as seconds
    from unnest($4::text[], $5::text[], $6::text[]) as s(name, start_kind, end_kind)
    join firsts a on a.kind = s.start_kind
    join firsts b on b.kind = s.end_kind and b.case_id = a.case_id
    where b.at >= a.at
)
select name as segment, count(*)::int as cases,
       percentile_cont(0.5) within group (order by seconds) as median_s,
       percentile_cont(0.9) within group (order by seconds) as p90_s,
       max(seconds) as max_s
from seg group by name;
