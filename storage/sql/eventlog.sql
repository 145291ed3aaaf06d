-- name: event_insert_full
insert into event (kind, facility_id, study_id, case_id, report_id, user_id, referral_id, detail)
values ($1, $2, $3, $4, $5, $6, $7, coalesce($8::jsonb, '{}'::jsonb));

-- name: notification_insert
-- The event streams of every process are woken when the transaction commits.
with added as (
    insert into notification (kind, facility_id, audience, user_id, case_id, report_id, detail)
    values ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '{}'::jsonb))
    returning id
)
select id, pg_notify('telemed_notification', id::text) from added;

-- name: notification_horizon
-- Every transaction below this one has ended: what it wrote is there to read, for good.
select pg_snapshot_xmin(pg_current_snapshot())::text;

-- name: notifications_after
-- Notifications after the cursor ($1 tx, $2 id), in (tx, id) order, written by transactions
-- that have all ended (the event stream's poller): none can later fall behind the cursor.
select n.id, n.tx::text as tx, n.at, n.kind, n.facility_id, n.audience, n.user_id, n.case_id,
       n.report_id, n.detail
from notification n
where (n.tx, n.id) > ($1::text::xid8, $2) and n.tx < pg_snapshot_xmin(pg_current_snapshot())
order by n.tx, n.id limit $3;

-- name: notifications_held
-- Whether a committed notification waits behind a transaction still running.
select exists (
    select 1 from notification where tx >= pg_snapshot_xmin(pg_current_snapshot())
);

-- name: notifications_for_user
-- The notifications addressed to a user after the cursor ($2 tx, $3 id), as the poller reads
-- them (replay on reconnect).
select n.id, n.tx::text as tx, n.at, n.kind, n.facility_id, n.audience, n.user_id, n.case_id,
       n.report_id, n.detail
from notification n join app_user u on u.id = $1
where (n.tx, n.id) > ($2::text::xid8, $3) and n.tx < pg_snapshot_xmin(pg_current_snapshot())
  and ((n.user_id = u.id)
       or (n.user_id is null and n.facility_id = u.facility_id and n.audience = u.role))
order by n.tx, n.id limit $4;

-- name: notification_tx
-- The transaction of a notification named by its id alone (a cursor of an older release).
select tx::text from notification where id = $1;

-- name: notifications_of_report
select id, tx::text as tx, at, kind, facility_id, audience, user_id, case_id, report_id, detail
from notification where report_id = $1 order by id;
