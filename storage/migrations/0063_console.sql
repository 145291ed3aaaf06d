-- The administrator's console. A facility may be deactivated (nothing is deleted): its
-- workstations' titles are refused on DICOM and its users cannot sign in. DICOM nodes get a
-- stable id (the console's handle on them, their AE title may change) and say whether what
-- we send them goes over TLS.
alter table facility add column active boolean not null default true;

alter table dicom_node
    add column id bigint generated always as identity unique,
    add column tls boolean not null default false;
