-- DICOM nodes for query/retrieve: readers' desktop viewers (C-FIND, C-GET, C-MOVE as the
-- calling AE; scoped as their user) and C-MOVE destinations (where a move may send to).
-- Workstations of a facility stay in facility_ae; they may query their own facility's studies.
create table dicom_node (
    ae_title        text primary key,
    user_id         bigint references app_user (id) on delete cascade,
    facility_id     bigint references facility (id) on delete cascade,
    host            text,
    port            integer check (port between 1 and 65535),
    -- May call us for C-FIND / C-GET / C-MOVE (scoped by user_id, else facility_id).
    may_query       boolean not null default true,
    -- May be named as a C-MOVE destination (needs host and port).
    move_destination boolean not null default false,
    created_at      timestamptz not null default now(),
    check (user_id is not null or facility_id is not null),
    check (not move_destination or (host is not null and port is not null))
);
