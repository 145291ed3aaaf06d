-- name: turnaround_final_seconds
-- The sending facility and the received -> final seconds of each case finally reported in
-- [$2, $3) below $1, each column one string of its values in binary form, back to back.
select string_agg(int8send(t.facility_id), '') as facilities,
       string_agg(float8send(t.final_s), '') as seconds
from case_turnaround t
where t.final_at >= $2 and t.final_at < $3
  and t.facility_id in (select facility_subtree($1));

-- name: turnaround_step_times
-- The sending facility and the time of each step (storage.turnaround.STEPS, in its order;
-- 'infinity' where the case has not been through it) of the cases finally reported in
-- [$2, $3) below $1, or of the one case $4, each column one string of its values in
-- PostgreSQL's binary form, back to back (a time as microseconds since 2000: the durations
-- are taken on the client, without an interval and its seconds computed per case here).
select string_agg(int8send(t.facility_id), ''),
       string_agg(timestamptz_send(t.received_at), ''),
       string_agg(timestamptz_send(coalesce(t.complete_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.routed_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.claimed_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.escalated_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.preliminary_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.final_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.delivered_at, 'infinity')), ''),
       string_agg(timestamptz_send(coalesce(t.acknowledged_at, 'infinity')), '')
from case_turnaround t
where t.facility_id in (select facility_subtree($1))
  and (($4::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $4);
