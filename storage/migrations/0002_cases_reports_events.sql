-- Reading cases, reports, and the server-clock event log turnaround is computed from.

create table reading_case (
    id                 bigint generated always as identity primary key,
    study_id           bigint not null references study (id),
    facility_id        bigint not null references facility (id),
    specialty          text not null check (specialty in ('radiology', 'ecg')),
    priority           text not null check (priority in ('high', 'medium', 'low')),
    status             text not null default 'scheduled'
                       check (status in ('scheduled', 'in_progress', 'completed', 'canceled')),
    pool_facility_id   bigint not null references facility (id),
    escalation_facility_id bigint references facility (id),
    claimed_by         bigint references app_user (id),
    lease_expires_at   timestamptz,
    deadline           timestamptz not null,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    check ((status = 'in_progress') = (claimed_by is not null))
);
-- One open case per study and specialty.
create unique index reading_case_open_uniq on reading_case (study_id, specialty)
    where status in ('scheduled', 'in_progress');
create index reading_case_pool_idx on reading_case (pool_facility_id, specialty, status);

create table report (
    id               bigint generated always as identity primary key,
    case_id          bigint not null references reading_case (id),
    author_id        bigint not null references app_user (id),
    status           text not null check (status in ('preliminary', 'final')),
    findings         text not null,
    impression       text not null,
    conclusion       text not null check (conclusion in ('normal', 'abnormal', 'critical')),
    signed_at        timestamptz not null default now(),
    signature_sha256 text not null,
    delivered_at     timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  bigint references app_user (id)
);
create index report_case_idx on report (case_id);

create table event (
    id           bigint generated always as identity primary key,
    at           timestamptz not null default clock_timestamp(),
    kind         text not null,
    facility_id  bigint references facility (id),
    study_id     bigint references study (id),
    case_id      bigint references reading_case (id),
    report_id    bigint references report (id),
    user_id      bigint references app_user (id),
    detail       jsonb not null default '{}'
);
create index event_study_idx on event (study_id, kind);
create index event_case_idx on event (case_id, kind);

-- Who read or changed what: every access to patient data.
create table audit (
    id           bigint generated always as identity primary key,
    at           timestamptz not null default clock_timestamp(),
    user_id      bigint references app_user (id),
    action       text not null,
    object_type  text not null,
    object_id    text not null,
    detail       jsonb not null default '{}'
);

-- Ingest refusals an administrator must see (same UID with other content, unknown AE, ...).
create table ingest_rejection (
    id                 bigint generated always as identity primary key,
    at                 timestamptz not null default clock_timestamp(),
    facility_id        bigint references facility (id),
    sender_ae          text,
    sop_instance_uid   text,
    reason             text not null,
    object_key         text
);
