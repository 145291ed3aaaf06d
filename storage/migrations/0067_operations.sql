-- The operations page: a refused instance keeps its SOP class (what kind of object the
-- workstation sent), listed per facility and day; a report template can be set aside
-- (inactive: no longer offered to readers, kept for the reports written from it).

alter table ingest_rejection add column sop_class_uid text;
create index ingest_rejection_facility_at_idx on ingest_rejection (facility_id, at desc);

alter table report_template add column active boolean not null default true;
