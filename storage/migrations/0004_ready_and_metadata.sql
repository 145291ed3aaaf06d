-- A study whose upload manifest is satisfied is ready at once, without waiting for the stable
-- age; and each instance keeps its DICOM JSON metadata (compressed), computed at ingest, so
-- metadata is served without opening objects.

alter table study add column ready_at timestamptz;

alter table instance add column metadata_zlib bytea;
