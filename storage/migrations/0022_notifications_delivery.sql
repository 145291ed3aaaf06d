-- What the service told whom: every notification (reports, critical results, re-sends,
-- duty-administrator alerts, returned studies, addenda, referrals), pushed to the users of
-- a facility in one role or to one named user; and the DICOM copies of each report sent to
-- the clinic's workstation, retried until they are taken.

create table notification (
    id           bigint generated always as identity primary key,
    at           timestamptz not null default clock_timestamp(),
    kind         text not null,
    facility_id  bigint not null references facility (id),
    audience     text not null check (audience in ('clinic', 'reader', 'admin')),
    user_id      bigint references app_user (id),
    case_id      bigint references reading_case (id),
    report_id    bigint references report (id),
    detail       jsonb not null default '{}'
);
create index notification_facility_idx on notification (facility_id, id);
create index notification_user_idx on notification (user_id, id) where user_id is not null;
create index notification_report_idx on notification (report_id) where report_id is not null;

create table dicom_send (
    id                bigint generated always as identity primary key,
    report_id         bigint not null references report (id),
    object_key        text not null,
    sop_class_uid     text not null,
    sop_instance_uid  text not null unique,
    ae_title          text not null,
    host              text not null,
    port              integer not null,
    status            text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts          integer not null default 0,
    next_attempt_at   timestamptz not null default now(),
    last_error        text,
    sent_at           timestamptz
);
create index dicom_send_due_idx on dicom_send (next_attempt_at) where status = 'pending';
create index dicom_send_report_idx on dicom_send (report_id);

-- A facility and every facility above it, nearest first (with their tiers).
create function facility_ancestry(p_facility bigint) returns table (id bigint, tier text)
language sql stable as $$
    with recursive up(id, tier, parent_id, depth) as (
        select f.id, f.tier, f.parent_id, 0 from facility f where f.id = p_facility
        union all
        select f.id, f.tier, f.parent_id, up.depth + 1 from facility f join up on f.id = up.parent_id
    )
    select up.id, up.tier from up order by up.depth
$$;
