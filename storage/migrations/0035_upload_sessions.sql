-- Resumable uploads from our own clients (the workstation's `telemed upload`, the township
-- forwarder): a session per study carries the sender's manifest, so the study is complete
-- when the manifest is satisfied, not when a timer fires. Sessions live here, so they
-- survive a restart of the server; the client finds its session again by its key.

create table upload_session (
    id                  bigint generated always as identity primary key,
    -- What the URL names: not guessable, not a count of other facilities' uploads.
    public_id           uuid not null unique default gen_random_uuid(),
    facility_id         bigint not null references facility (id),
    created_by          bigint not null references app_user (id),
    -- Chosen by the client (a hash of its manifest, or the forwarder's study key); opening
    -- the same key again resumes the same session.
    client_key          text not null check (length(client_key) between 1 and 200),
    study_instance_uid  text not null check (length(study_instance_uid) between 1 and 64),
    priority            text not null check (priority in ('high', 'medium', 'low')),
    clinical_question   text,
    state               text not null default 'open' check (state in ('open', 'committed')),
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    committed_at        timestamptz,
    unique (facility_id, client_key)
);
create index upload_session_open_idx on upload_session (updated_at) where state = 'open';

-- One manifest line: an instance the client will send, as the file it sends.
create table upload_item (
    session_id        bigint not null references upload_session (id) on delete cascade,
    sop_instance_uid  text not null check (length(sop_instance_uid) between 1 and 64),
    size_bytes        bigint not null check (size_bytes > 0),
    sha256            text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    -- Set once the instance passed the one ingest path (stored, or already stored).
    stored_at         timestamptz,
    outcome           text check (outcome in ('stored', 'duplicate')),
    -- Whole bodies accepted for this item: 1 for an upload that sent each instance once.
    bodies_received   integer not null default 0,
    primary key (session_id, sop_instance_uid)
);

-- Byte ranges of a large instance sent in parts, each part an object in the object store
-- (durable before the part is acknowledged), assembled and verified when all have arrived.
create table upload_part (
    session_id        bigint not null,
    sop_instance_uid  text not null,
    start_byte        bigint not null check (start_byte >= 0),
    length_bytes      bigint not null check (length_bytes > 0),
    object_key        text not null,
    received_at       timestamptz not null default now(),
    primary key (session_id, sop_instance_uid, start_byte),
    foreign key (session_id, sop_instance_uid)
        references upload_item (session_id, sop_instance_uid) on delete cascade
);
create index upload_part_object_idx on upload_part (object_key);
