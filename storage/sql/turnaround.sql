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
-- $4..$6: segment names with their start and end event kinds. Each step's first time is
-- kept on the case's case_turnaround row (migrations 0065, 0068); study-level events
-- (received, complete) count for each case of the study; acknowledgement is of the case's
-- first final report. The segments group by their place in $4 (an integer, in the order
-- the rows come) and the seconds are double precision from the start.
with seg as (
    select s.n,
           date_part('epoch', case_turnaround_step(t, s.end_kind)
                              - case_turnaround_step(t, s.start_kind)) as seconds
    from case_turnaround t
    cross join unnest($5::text[], $6::text[]) with ordinality as s(start_kind, end_kind, n)
    where t.facility_id in (select facility_subtree($1))
      and (($7::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $7)
)
select ($4::text[])[n] as segment, count(*)::int as cases,
       percentile_cont(0.5) within group (order by seconds) as median_s,
       percentile_cont(0.9) within group (order by seconds) as p90_s,
       max(seconds) as max_s
from seg where seconds >= 0 group by n;
