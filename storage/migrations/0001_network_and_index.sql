-- The facility network, its users, and the DICOM index.

create table facility (
    id          bigint generated always as identity primary key,
    code        text not null unique,
    name        text not null,
    tier        text not null check (tier in ('village', 'township', 'county', 'city')),
    parent_id   bigint references facility (id),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- Calling AE titles of a facility's workstations; an AE title belongs to one facility.
create table facility_ae (
    ae_title     text primary key,
    facility_id  bigint not null references facility (id) on delete cascade
);

create table app_user (
    id             bigint generated always as identity primary key,
    username       text not null unique,
    display_name   text not null,
    role           text not null check (role in ('clinic', 'reader', 'admin')),
    facility_id    bigint not null references facility (id),
    specialties    text[] not null default '{}',
    password_hash  text,
    active         boolean not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    check (specialties <@ array['radiology', 'ecg']::text[])
);

-- Bearer tokens are stored as the SHA-256 of the token, never the token itself.
create table api_token (
    token_sha256  bytea primary key,
    user_id       bigint not null references app_user (id) on delete cascade,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz,
    revoked_at    timestamptz
);

-- A patient ID is qualified by its issuer, the sending facility: never merged on a bare ID.
create table patient (
    id                   bigint generated always as identity primary key,
    issuer_facility_id   bigint not null references facility (id),
    patient_id           text not null,
    name                 text,
    birth_date           text,
    sex                  text,
    created_at           timestamptz not null default now(),
    unique (issuer_facility_id, patient_id)
);

create table study (
    id                   bigint generated always as identity primary key,
    study_instance_uid   text not null unique,
    facility_id          bigint not null references facility (id),
    patient_ref          bigint not null references patient (id),
    accession_number     text,
    study_date           text,
    study_time           text,
    description          text,
    referring_physician  text,
    modalities           text[] not null default '{}',
    state                text not null default 'receiving'
                         check (state in ('receiving', 'complete')),
    priority             text not null default 'medium' check (priority in ('high', 'medium', 'low')),
    clinical_question    text,
    num_series           integer not null default 0,
    num_instances        integer not null default 0,
    first_received_at    timestamptz not null default now(),
    last_received_at     timestamptz not null default now(),
    completed_at         timestamptz
);
create index study_receiving_idx on study (last_received_at) where state = 'receiving';
create index study_facility_idx on study (facility_id);

create table series (
    id                   bigint generated always as identity primary key,
    study_id             bigint not null references study (id) on delete cascade,
    series_instance_uid  text not null unique,
    modality             text,
    series_number        integer,
    description          text,
    body_part            text,
    num_instances        integer not null default 0
);
create index series_study_idx on series (study_id);

-- Objects are keyed by content (SHA-256), never by SOP Instance UID alone.
create table instance (
    id                   bigint generated always as identity primary key,
    series_id            bigint not null references series (id) on delete cascade,
    sop_instance_uid     text not null unique,
    sop_class_uid        text not null,
    transfer_syntax_uid  text not null,
    instance_number      integer,
    object_key           text not null,
    size_bytes           bigint not null,
    -- SHA-256 of the data set after the file meta group: the same instance re-sent with
    -- another meta header is the same content.
    dataset_sha256       text not null,
    sender_ae            text,
    received_via         text not null check (received_via in ('dimse', 'stow', 'upload', 'api')),
    received_at          timestamptz not null default now()
);
create index instance_series_idx on instance (series_id);
