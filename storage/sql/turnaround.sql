-- name: turnaround_final_seconds
-- The packed figures (case_turnaround.figures: the ids, then the received -> final seconds)
-- of each case finally reported in [$2, $3) below $1, as one string, back to back.
select string_agg(t.figures, '')
from case_turnaround t
where t.final_at >= $2 and t.final_at < $3
  and t.facility_id in (select facility_subtree($1));

-- name: turnaround_step_times
-- The packed steps (case_turnaround.steps: the sending facility and the time of each step
-- of storage.turnaround.STEPS, as microseconds since 2000, 'infinity' where the case has
-- not been through it) of the cases finally reported in [$2, $3) below $1, or of the one
-- case $4, as one string, back to back (the durations are taken on the client).
select string_agg(t.steps, '')
from case_turnaround t
where t.facility_id in (select facility_subtree($1))
  and (($4::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $4);
