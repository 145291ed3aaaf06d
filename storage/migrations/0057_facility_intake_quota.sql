-- What each facility sent per UTC day (bytes and instances, every way in together), and its
-- own daily limits. An instance's bytes are reserved against the limit before its object is
-- written, in one statement that refuses past the limit (so concurrent senders, processes
-- and nodes cannot overshoot it), and given back when nothing new was stored.
create table facility_intake (
    facility_id  bigint not null references facility (id) on delete cascade,
    day          date not null,
    bytes        bigint not null default 0 check (bytes >= 0),
    instances    integer not null default 0 check (instances >= 0),
    primary key (facility_id, day)
);

-- A facility's own daily limits; a null column takes the service's default (settings).
create table facility_quota (
    facility_id        bigint primary key references facility (id) on delete cascade,
    bytes_per_day      bigint check (bytes_per_day >= 0),
    instances_per_day  integer check (instances_per_day >= 0),
    updated_at         timestamptz not null default now()
);
