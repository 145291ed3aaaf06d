-- Report deliveries as administrators see them: the jobs pgqueuer holds as failed after their
-- last attempt, the DICOM copies given up, and final reports left without a delivery job.

-- name: failed_deliveries_for_user
-- Held report-delivery jobs, given-up DICOM copies and given-up outbound notices of the
-- reports in the user's scope.
select 'report' as kind, j.id, r.id as report_id, r.case_id, f.code as facility_code,
       j.attempts, null::text as last_error, j.updated as failed_at
from pgqueuer j
join report r on r.id = (convert_from(j.payload, 'UTF8')::jsonb ->> 'report_id')::bigint
join reading_case c on c.id = r.case_id
join facility f on f.id = c.facility_id
where j.entrypoint = $2 and j.status = 'failed' and case_visible_to($1, r.case_id)
union all
select 'dicom_copy', d.id, r.id, r.case_id, f.code, d.attempts, d.last_error, d.next_attempt_at
from dicom_send d
join report r on r.id = d.report_id
join reading_case c on c.id = r.case_id
join facility f on f.id = c.facility_id
where d.status = 'failed' and case_visible_to($1, r.case_id)
union all
select 'notice', m.id, r.id, r.case_id, f.code, m.attempts,
       (select a.code || ' ' || a.answer from outbound_attempt a
        where a.message_id = m.id order by a.id desc limit 1),
       m.updated_at
from outbound_message m
join report r on r.id = m.report_id
join notification_channel ch on ch.id = m.channel_id
join facility f on f.id = ch.facility_id
where m.status = 'failed' and case_visible_to($1, r.case_id)
order by failed_at desc
limit $3;

-- name: failed_delivery_job_of_user
-- The held delivery job $2, when its report is in the user's scope.
select j.id from pgqueuer j
join report r on r.id = (convert_from(j.payload, 'UTF8')::jsonb ->> 'report_id')::bigint
where j.id = $2 and j.entrypoint = $3 and j.status = 'failed' and case_visible_to($1, r.case_id);

-- name: dicom_copy_retry_for_user
-- A given-up DICOM copy tried again from its first backoff step.
update dicom_send d set status = 'pending', attempts = 0, next_attempt_at = now()
from report r
where d.id = $2 and d.status = 'failed' and r.id = d.report_id and case_visible_to($1, r.case_id)
returning d.id;

-- name: reports_without_delivery
-- Final reports signed before $1, not delivered, and with no delivery job queued, running or
-- held: their job was lost (deleted by hand, a queue restored without it).
select r.id from report r
where r.status = 'final' and r.delivered_at is null and r.signed_at < $1
  and not exists (
      select 1 from pgqueuer j
      where j.entrypoint = $2
        and (convert_from(j.payload, 'UTF8')::jsonb ->> 'report_id')::bigint = r.id)
order by r.id
limit $3;
