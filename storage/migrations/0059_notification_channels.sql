-- Notifications beyond the page: the channels a facility (or one of its users) is told on
-- (e-mail, a WeChat Work or DingTalk group robot, a generic JSON webhook), each message that
-- leaves the network (one per notification and channel) and each attempt to send it; and
-- the read-back (复述) of whoever acknowledged a critical result.

alter table report add column acknowledged_read_back text;

create table notification_channel (
    id                  bigint generated always as identity primary key,
    facility_id         bigint not null references facility (id) on delete cascade,
    -- a user's own channel (their e-mail); null: the facility's
    user_id             bigint references app_user (id) on delete cascade,
    kind                text not null
                        check (kind in ('email', 'wechat_work', 'dingtalk', 'webhook')),
    label               text not null default '',
    -- an e-mail address, or the robot's or webhook's https:// (or http://) URL
    target              text not null,
    -- DingTalk's signing secret (SEC…): the URL is signed with a timestamp and HMAC
    secret              text,
    markdown            boolean not null default false,
    -- no patient name or ID leaves on this channel unless it says so
    allow_patient_name  boolean not null default false,
    -- final normal and abnormal reports too (critical results go on every channel)
    reports             boolean not null default true,
    active              boolean not null default true,
    created_at          timestamptz not null default now()
);
create unique index notification_channel_target_idx
    on notification_channel (facility_id, coalesce(user_id, 0), kind, target);
create index notification_channel_user_idx on notification_channel (user_id)
    where user_id is not null;

create table outbound_message (
    id               bigint generated always as identity primary key,
    notification_id  bigint not null references notification (id),
    channel_id       bigint not null references notification_channel (id) on delete cascade,
    report_id        bigint not null references report (id),
    -- report | addendum | critical | critical_resend | critical_alert
    kind             text not null,
    resend           integer not null default 0,
    status           text not null default 'pending'
                     check (status in ('pending', 'sent', 'failed', 'skipped')),
    attempts         integer not null default 0,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (notification_id, channel_id)
);
create index outbound_message_failed_idx on outbound_message (updated_at) where status = 'failed';
create index outbound_message_report_idx on outbound_message (report_id);

-- What each attempt got back: the HTTP status or SMTP code and the answer's first words
-- (the receiver's text, never the message sent).
create table outbound_attempt (
    id          bigint generated always as identity primary key,
    message_id  bigint not null references outbound_message (id) on delete cascade,
    at          timestamptz not null default clock_timestamp(),
    ok          boolean not null,
    code        text not null,
    answer      text not null default ''
);
create index outbound_attempt_message_idx on outbound_attempt (message_id, id);
