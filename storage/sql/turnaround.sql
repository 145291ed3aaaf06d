-- name: turnaround
-- Received (first instance, server clock) to final report, per sending facility.
with done as (
    select c.facility_id,
           extract(epoch from (rep.at - rec.at)) as seconds
    from reading_case c
    join lateral (select min(e.at) as at from event e
                  where e.study_id = c.study_id and e.kind = 'received') rec on true
    join lateral (select min(e.at) as at from event e
                  where e.case_id = c.id and e.kind = 'final') rep on true
    where rep.at is not null and rec.at is not null
      and rep.at >= $2 and rep.at < $3
      and c.facility_id in (select facility_subtree($1))
)
select f.id as facility_id, f.code, f.name, count(d.seconds) as reports,
       percentile_cont(0.5) within group (order by d.seconds) as median_s,
       percentile_cont(0.9) within group (order by d.seconds) as p90_s,
       avg(d.seconds) as mean_s, max(d.seconds) as max_s
from done d join facility f on f.id = d.facility_id
group by f.id, f.code, f.name
order by f.code;

-- name: turnaround_segments
-- $4..$6: segment names with their start and end event kinds. Study-level events
-- (received, complete) count for each case of the study; acknowledgement is of the case's
-- first final report.
with cases as (
    select c.id, c.study_id
    from reading_case c
    join lateral (select min(e.at) as at from event e
                  where e.case_id = c.id and e.kind = 'final') rep on true
    where c.facility_id in (select facility_subtree($1))
      and (($7::bigint is null and rep.at >= $2 and rep.at < $3) or c.id = $7)
),
firsts as (
    select cs.id as case_id, e.kind, min(e.at) as at
    from cases cs
    join event e on e.case_id = cs.id or (e.study_id = cs.study_id and e.case_id is null)
    group by cs.id, e.kind
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
