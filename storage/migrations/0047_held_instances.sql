-- An instance sent into a study whose case a reader has claimed is held for that reader,
-- not added under them while they read: its object is stored (so the sender is answered
-- only once it is durable) and this row records it; the instance is indexed when the reader
-- or an administrator lets it in, and its object collected when they discard it.
create table held_instance (
    id                  bigint generated always as identity primary key,
    case_id             bigint not null references reading_case (id),
    study_id            bigint not null references study (id),
    facility_id         bigint not null references facility (id),
    sop_instance_uid    text not null unique,
    series_instance_uid text not null,
    sop_class_uid       text not null,
    object_key          text not null,
    size_bytes          bigint not null,
    dataset_sha256      text not null,
    sender_ae           text,
    received_via        text not null,
    received_at         timestamptz not null default now()
);
create index held_instance_case_idx on held_instance (case_id);
-- The collector asks whether a row refers to an object.
create index held_instance_object_key_idx on held_instance (object_key);
