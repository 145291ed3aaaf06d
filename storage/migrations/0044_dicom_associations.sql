-- Open DICOM associations, counted across every listener process of every node, so that a
-- facility's limit holds however many processes accept from the port. A process keeps its
-- rows fresh while they are open; the rows of a process that died go stale and stop counting.
create table dicom_association (
    id          bigint generated always as identity primary key,
    facility    text not null,          -- the facility code, or 'AE <title>' outside any facility
    holder      text not null,          -- the listener process holding it
    opened_at   timestamptz not null default now(),
    seen_at     timestamptz not null default now()
);
create index dicom_association_facility_idx on dicom_association (facility, seen_at);
create index dicom_association_holder_idx on dicom_association (holder);
