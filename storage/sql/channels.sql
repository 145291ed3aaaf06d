-- Notification channels, the messages that leave the network on them, and each attempt.

-- name: channel_upsert
-- A facility's channel ($2 null) or a user's own, added or updated by its target.
insert into notification_channel
    (facility_id, user_id, kind, label, target, secret, markdown, allow_patient_name,
     reports, active)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (facility_id, (coalesce(user_id, 0)), kind, target) do update
set label = excluded.label, secret = excluded.secret, markdown = excluded.markdown,
    allow_patient_name = excluded.allow_patient_name, reports = excluded.reports,
    active = excluded.active
returning id;

-- name: channel_update
update notification_channel
set label = $2, target = $3, secret = $4, markdown = $5, allow_patient_name = $6,
    reports = $7, active = $8
where id = $1
returning id;

-- name: channel_delete
delete from notification_channel where id = $1 returning id;

-- name: channels_for_admin
-- The channels of the facilities (and their users) in the administrator's network.
select ch.*, f.code as facility_code, u.username, coalesce(u.language, 'zh-CN') as language
from notification_channel ch
join facility f on f.id = ch.facility_id
left join app_user u on u.id = ch.user_id
join app_user a on a.id = $1
where a.role = 'admin' and a.active and ch.facility_id in (select facility_subtree(a.facility_id))
  and ($2::bigint is null or ch.id = $2)
order by f.code, ch.user_id nulls first, ch.id;

-- name: channels_of_user
-- A user's own channels.
select ch.*, f.code as facility_code, u.username, coalesce(u.language, 'zh-CN') as language
from notification_channel ch
join facility f on f.id = ch.facility_id
join app_user u on u.id = ch.user_id
where ch.user_id = $1
order by ch.id;

-- name: channels_of_clinic
-- The active channels of a clinic: the facility's, and those of its active clinic users.
select ch.*, f.code as facility_code, u.username, coalesce(u.language, 'zh-CN') as language
from notification_channel ch
join facility f on f.id = ch.facility_id
left join app_user u on u.id = ch.user_id
where ch.facility_id = $1 and ch.active
  and (ch.user_id is null or (u.active and u.role = 'clinic'))
order by ch.id;

-- name: channels_of_users
-- The active own channels of the users named (the duty administrators alerted).
select ch.*, f.code as facility_code, u.username, coalesce(u.language, 'zh-CN') as language
from notification_channel ch
join facility f on f.id = ch.facility_id
join app_user u on u.id = ch.user_id
where ch.user_id = any($1::bigint[]) and ch.active and u.active
order by ch.id;

-- name: outbound_insert
-- One message per notification and channel (queued twice: once).
insert into outbound_message (notification_id, channel_id, report_id, kind, resend)
values ($1, $2, $3, $4, $5)
on conflict (notification_id, channel_id) do nothing
returning id;

-- name: outbound_lock
-- A message to send, with its channel; locked while it is tried (another worker skips it).
select m.id, m.report_id, m.kind, m.resend, m.status, m.attempts,
       r.acknowledged_at is not null as acknowledged,
       ch.id as channel_id, ch.facility_id, ch.user_id, ch.kind as channel_kind, ch.label,
       ch.target, ch.secret, ch.markdown, ch.allow_patient_name, ch.reports, ch.active,
       ch.created_at, f.code as facility_code, u.username,
       coalesce(u.language, 'zh-CN') as language
from outbound_message m
join notification_channel ch on ch.id = m.channel_id
join facility f on f.id = ch.facility_id
join report r on r.id = m.report_id
left join app_user u on u.id = ch.user_id
where m.id = $1
for update of m skip locked;

-- name: outbound_attempt_insert
insert into outbound_attempt (message_id, ok, code, answer) values ($1, $2, $3, $4);

-- name: outbound_done
update outbound_message set status = $2, attempts = $3, updated_at = now() where id = $1;

-- name: outbound_of_report
-- The messages a report caused, with their attempts (no message text: none is kept).
select m.id, m.kind, m.resend, m.status, m.attempts, m.created_at, m.updated_at,
       ch.id as channel_id, ch.kind as channel_kind, ch.label, f.code as facility_code,
       u.username,
       coalesce((select jsonb_agg(jsonb_build_object(
                    'at', a.at, 'ok', a.ok, 'code', a.code, 'answer', a.answer) order by a.id)
                 from outbound_attempt a where a.message_id = m.id), '[]'::jsonb) as tries
from outbound_message m
join notification_channel ch on ch.id = m.channel_id
join facility f on f.id = ch.facility_id
left join app_user u on u.id = ch.user_id
where m.report_id = $1
order by m.id;

-- name: outbound_retry_for_user
-- A given-up message tried again from its first attempt, when its report is in the scope.
update outbound_message m set status = 'pending', attempts = 0, updated_at = now()
from report r
where m.id = $2 and m.status = 'failed' and r.id = m.report_id
  and case_visible_to($1, r.case_id)
returning m.id;

-- name: outbound_without_job
-- Messages still pending, untouched since $1, with no job queued or running for them: their
-- job was lost (deleted by hand, a queue restored without it).
select m.id from outbound_message m
where m.status = 'pending' and m.updated_at < $1
  and not exists (
      select 1 from pgqueuer j
      where j.entrypoint = $2
        and (convert_from(j.payload, 'UTF8')::jsonb ->> 'message_id')::bigint = m.id)
order by m.id
limit $3;
