-- ECGs: the original cart file kept beside the DICOM waveform made from it, the automatic
-- analysis of every ECG waveform instance, and every change a reader makes to it.

create table ecg_original (
    id                 bigint generated always as identity primary key,
    instance_id        bigint not null unique references instance (id) on delete cascade,
    object_key         text not null,
    format             text not null,
    filename           text,
    size_bytes         bigint not null,
    received_at        timestamptz not null default now()
);

create table ecg_analysis (
    id                 bigint generated always as identity primary key,
    instance_id        bigint not null unique references instance (id) on delete cascade,
    analyzed_at        timestamptz not null default now(),
    -- null when the analysis failed; `error` says why
    result             jsonb,
    error              text,
    suspected_stemi    boolean not null default false,
    -- what readers changed: the current measurements and statements over the automatic ones
    edited_measurements jsonb not null default '{}',
    edited_statements  jsonb,
    edited_by          bigint references app_user (id),
    edited_at          timestamptz
);

create table ecg_edit (
    id           bigint generated always as identity primary key,
    analysis_id  bigint not null references ecg_analysis (id) on delete cascade,
    user_id      bigint not null references app_user (id),
    at           timestamptz not null default clock_timestamp(),
    field        text not null,
    old_value    jsonb,
    new_value    jsonb
);
create index ecg_edit_analysis_idx on ecg_edit (analysis_id, at);
