-- name: event_insert_full
insert into event (kind, facility_id, study_id, case_id, report_id, user_id, referral_id, detail)
values ($1, $2, $3, $4, $5, $6, $7, coalesce($8::jsonb, '{}'::jsonb));

-- name: notification_insert
insert into notification (kind, facility_id, audience, user_id, case_id, report_id, detail)
values ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{}'::jsonb));

-- name: notifications_after
-- New notifications after id $1 (the event stream's poller), oldest first.
select id, at, kind, facility_id, audience, user_id, case_id, report_id, detail
from notification where id > $1 order by id limit $2;

-- name: notifications_for_user
-- The notifications addressed to a user after id $2 (replay on reconnect).
select n.id, n.at, n.kind, n.facility_id, n.audience, n.user_id, n.case_id, n.report_id,
       n.detail
from notification n join app_user u on u.id = $1
where n.id > $2
  and ((n.user_id = u.id)
       or (n.user_id is null and n.facility_id = u.facility_id and n.audience = u.role))
order by n.id limit $3;

-- name: notification_last_id
select coalesce(max(id), 0) from notification;

-- name: notifications_of_report
select id, at, kind, facility_id, audience, user_id, case_id, report_id, detail
from notification where report_id = $1 order by id;
