-- ECG files a clinic sent that could not be read: the original is kept, with why it was
-- refused, for the clinic and its administrators to look at (and to send to the cart's
-- vendor); at most a few a day per facility.

create table refused_ecg (
    id                 bigint generated always as identity primary key,
    facility_id        bigint not null references facility (id),
    user_id            bigint references app_user (id),
    received_at        timestamptz not null default now(),
    filename           text,
    size_bytes         bigint not null,
    object_key         text not null,
    reason             text not null
);

create index refused_ecg_facility_idx on refused_ecg (facility_id, received_at desc);
create index refused_ecg_object_key_idx on refused_ecg (object_key);
