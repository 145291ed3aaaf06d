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
-- Each workflow segment (storage.turnaround.SEGMENTS, in its order) of the cases finally
-- reported in [$2, $3) or of the one case $4: the seconds from the first time of its start
-- step to that of its end step, kept on the case's case_turnaround row (migrations 0065,
-- 0068; study-level events, received and complete, count for each case of the study;
-- acknowledgement is of the case's first final report). One read of the rows computes
-- every segment side by side; a segment no case went through forwards (seconds < 0 or
-- missing) is left out.
with seg as (
    select date_part('epoch', t.complete_at - t.received_at) as s1,
           date_part('epoch', t.routed_at - t.complete_at) as s2,
           date_part('epoch', t.claimed_at - t.routed_at) as s3,
           date_part('epoch', t.escalated_at - t.claimed_at) as s4,
           date_part('epoch', t.preliminary_at - t.claimed_at) as s5,
           date_part('epoch', t.final_at - t.escalated_at) as s6,
           date_part('epoch', t.final_at - t.claimed_at) as s7,
           date_part('epoch', t.delivered_at - t.final_at) as s8,
           date_part('epoch', t.acknowledged_at - t.delivered_at) as s9,
           date_part('epoch', t.final_at - t.received_at) as s10,
           date_part('epoch', t.acknowledged_at - t.received_at) as s11
    from case_turnaround t
    where t.facility_id in (select facility_subtree($1))
      and (($4::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $4)
), agg as (
    select count(*) filter (where s1 >= 0) as c1,
           percentile_cont(0.5) within group (order by s1) filter (where s1 >= 0) as m1,
           percentile_cont(0.9) within group (order by s1) filter (where s1 >= 0) as p1,
           max(s1) filter (where s1 >= 0) as x1,
           count(*) filter (where s2 >= 0) as c2,
           percentile_cont(0.5) within group (order by s2) filter (where s2 >= 0) as m2,
           percentile_cont(0.9) within group (order by s2) filter (where s2 >= 0) as p2,
           max(s2) filter (where s2 >= 0) as x2,
           count(*) filter (where s3 >= 0) as c3,
           percentile_cont(0.5) within group (order by s3) filter (where s3 >= 0) as m3,
           percentile_cont(0.9) within group (order by s3) filter (where s3 >= 0) as p3,
           max(s3) filter (where s3 >= 0) as x3,
           count(*) filter (where s4 >= 0) as c4,
           percentile_cont(0.5) within group (order by s4) filter (where s4 >= 0) as m4,
           percentile_cont(0.9) within group (order by s4) filter (where s4 >= 0) as p4,
           max(s4) filter (where s4 >= 0) as x4,
           count(*) filter (where s5 >= 0) as c5,
           percentile_cont(0.5) within group (order by s5) filter (where s5 >= 0) as m5,
           percentile_cont(0.9) within group (order by s5) filter (where s5 >= 0) as p5,
           max(s5) filter (where s5 >= 0) as x5,
           count(*) filter (where s6 >= 0) as c6,
           percentile_cont(0.5) within group (order by s6) filter (where s6 >= 0) as m6,
           percentile_cont(0.9) within group (order by s6) filter (where s6 >= 0) as p6,
           max(s6) filter (where s6 >= 0) as x6,
           count(*) filter (where s7 >= 0) as c7,
           percentile_cont(0.5) within group (order by s7) filter (where s7 >= 0) as m7,
           percentile_cont(0.9) within group (order by s7) filter (where s7 >= 0) as p7,
           max(s7) filter (where s7 >= 0) as x7,
           count(*) filter (where s8 >= 0) as c8,
           percentile_cont(0.5) within group (order by s8) filter (where s8 >= 0) as m8,
           percentile_cont(0.9) within group (order by s8) filter (where s8 >= 0) as p8,
           max(s8) filter (where s8 >= 0) as x8,
           count(*) filter (where s9 >= 0) as c9,
           percentile_cont(0.5) within group (order by s9) filter (where s9 >= 0) as m9,
           percentile_cont(0.9) within group (order by s9) filter (where s9 >= 0) as p9,
           max(s9) filter (where s9 >= 0) as x9,
           count(*) filter (where s10 >= 0) as c10,
           percentile_cont(0.5) within group (order by s10) filter (where s10 >= 0) as m10,
           percentile_cont(0.9) within group (order by s10) filter (where s10 >= 0) as p10,
           max(s10) filter (where s10 >= 0) as x10,
           count(*) filter (where s11 >= 0) as c11,
           percentile_cont(0.5) within group (order by s11) filter (where s11 >= 0) as m11,
           percentile_cont(0.9) within group (order by s11) filter (where s11 >= 0) as p11,
           max(s11) filter (where s11 >= 0) as x11
    from seg
)
select v.segment, v.cases::int as cases, v.median_s, v.p90_s, v.max_s
from agg cross join lateral (values
    ('received_to_complete', c1, m1, p1, x1),
    ('complete_to_routed', c2, m2, p2, x2),
    ('routed_to_claimed', c3, m3, p3, x3),
    ('claimed_to_escalated', c4, m4, p4, x4),
    ('claimed_to_preliminary', c5, m5, p5, x5),
    ('escalated_to_final', c6, m6, p6, x6),
    ('claimed_to_final', c7, m7, p7, x7),
    ('final_to_delivered', c8, m8, p8, x8),
    ('delivered_to_acknowledged', c9, m9, p9, x9),
    ('received_to_final', c10, m10, p10, x10),
    ('received_to_acknowledged', c11, m11, p11, x11)
) as v(segment, cases, median_s, p90_s, max_s)
where v.cases > 0;
