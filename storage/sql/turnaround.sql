-- name: turnaround_final_seconds
-- The sending facility and the received -> final seconds of each case finally reported in
-- [$2, $3) below $1, as two arrays in PostgreSQL's binary form.
select array_send(array_agg(t.facility_id)) as facilities,
       array_send(array_agg(t.final_s)) as seconds
from case_turnaround t
where t.final_at >= $2 and t.final_at < $3
  and t.facility_id in (select facility_subtree($1));

-- name: turnaround_segment_seconds
-- Each workflow segment's seconds (storage.turnaround.SEGMENTS, in its order; NaN where the
-- case has not both steps) of the cases finally reported in [$2, $3) below $1, or of the
-- one case $4, an array each in PostgreSQL's binary form.
select array_send(array_agg(coalesce(date_part('epoch', t.complete_at - t.received_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.routed_at - t.complete_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.claimed_at - t.routed_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.escalated_at - t.claimed_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.preliminary_at - t.claimed_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.final_at - t.escalated_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.final_at - t.claimed_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.delivered_at - t.final_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.acknowledged_at - t.delivered_at),
                                     'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.final_at - t.received_at), 'NaN'))),
       array_send(array_agg(coalesce(date_part('epoch', t.acknowledged_at - t.received_at),
                                     'NaN')))
from case_turnaround t
where t.facility_id in (select facility_subtree($1))
  and (($4::bigint is null and t.final_at >= $2 and t.final_at < $3) or t.case_id = $4);
