-- The operations page of a network's administrator: refused instances, studies returned for
-- quality, failed jobs, and the queue's and the stores' health. Nothing here names a patient.

-- name: rejections_for_user
-- Refused instances of the administrator's ($1) network, newest first; of one facility
-- ($2, a code) and between $3 and $4 when given; $5 rows from $6, each with the total (one
-- row of nulls but the total when the page is empty).
with found as (
    select r.id, r.at, f.code as facility_code, f.name as facility_name, r.sender_ae,
           r.sop_class_uid, r.reason
    from ingest_rejection r
    join facility f on f.id = r.facility_id
    join app_user u on u.id = $1
    where u.role = 'admin' and u.active
      and r.facility_id in (select facility_subtree(u.facility_id))
      and ($2::text is null or f.code = $2)
      and ($3::timestamptz is null or r.at >= $3)
      and ($4::timestamptz is null or r.at < $4)
)
select (select count(*) from found) as total, p.*
from (select 1) one
left join lateral (select * from found order by at desc, id desc limit $5 offset $6) p on true;

-- name: returned_cases_for_user
-- Cases readers returned to their clinic for quality, in the user's ($1) scope, newest
-- first ($2 rows from $3, each with the total), and whether the clinic sent the study
-- again since.
with found as (
    select c.id as case_id, c.study_id, f.code as facility_code, f.name as facility_name,
           c.specialty, st.modalities, c.return_code, c.return_note,
           c.updated_at as returned_at,
           (st.last_received_at > c.updated_at
            or exists (select 1 from reading_case n
                       where n.study_id = c.study_id and n.specialty = c.specialty
                         and n.id > c.id)) as resent
    from reading_case c
    join study st on st.id = c.study_id
    join facility f on f.id = c.facility_id
    where c.return_code is not null and case_visible_to($1, c.id)
)
select (select count(*) from found) as total, p.*
from (select 1) one
left join lateral (
    select * from found order by returned_at desc, case_id desc limit $2 offset $3
) p on true;

-- name: failed_jobs_for_user
-- Jobs pgqueuer holds as failed whose report (named in the payload, or through the
-- notification message it names) is in the user's ($1) scope; one ($2) or all, newest
-- first, at most $3; with the last error the job's log recorded.
with failed as (
    select j.id, j.entrypoint, j.attempts, j.created, j.updated,
           convert_from(j.payload, 'UTF8')::jsonb as body
    from pgqueuer j
    where j.status = 'failed' and ($2::bigint is null or j.id = $2)
), named as (
    select fj.*,
           coalesce(case when fj.body ->> 'report_id' ~ '^[0-9]{1,18}$'
                         then (fj.body ->> 'report_id')::bigint end,
                    m.report_id) as report_id
    from failed fj
    left join outbound_message m
        on fj.body ->> 'message_id' ~ '^[0-9]{1,18}$'
       and m.id = (fj.body ->> 'message_id')::bigint
)
select n.id, n.entrypoint, n.attempts, n.created, n.updated, n.report_id, r.case_id,
       f.code as facility_code,
       (select l.traceback ->> 'exception_type' from pgqueuer_log l
        where l.job_id = n.id and l.traceback is not null
        order by l.created desc, l.id desc limit 1) as error_type,
       (select l.traceback ->> 'exception_message' from pgqueuer_log l
        where l.job_id = n.id and l.traceback is not null
        order by l.created desc, l.id desc limit 1) as error_message
from named n
join report r on r.id = n.report_id
join reading_case c on c.id = r.case_id
join facility f on f.id = c.facility_id
where case_visible_to($1, r.case_id)
order by n.updated desc, n.id desc
limit $3;

-- name: failed_job_lock
-- A failed job, locked until the caller's transaction ends (a second retry waits, then
-- finds it queued).
select id from pgqueuer where id = $1 and status = 'failed' for update;

-- name: queue_depth
-- The job queue per kind: queued (and of those due now, the oldest's wait in seconds),
-- picked, picked with a heartbeat older than $1 seconds (their runner is gone), failed.
select entrypoint,
       count(*) filter (where status = 'queued') as queued,
       extract(epoch from now() - min(execute_after)
                 filter (where status = 'queued' and execute_after <= now()))::float8
           as oldest_due_s,
       count(*) filter (where status = 'picked') as picked,
       count(*) filter (where status = 'picked'
                          and heartbeat < now() - make_interval(secs => $1)) as stale,
       count(*) filter (where status = 'failed') as failed
from pgqueuer
group by entrypoint
order by entrypoint;

-- name: store_sizes
-- Cheap sizes: the database's bytes, and the planner's estimate of the instances stored.
select pg_database_size(current_database()) as database_bytes,
       (select greatest(c.reltuples, 0)::bigint from pg_class c
        where c.oid = 'instance'::regclass) as instances_estimate;
