-- WADO-RS series metadata, assembled from the per-instance DICOM JSON kept at ingest
-- (instance.metadata_zlib) and kept compressed, so a 600-instance series is one row read.
-- A row is current while its instance count equals the series' own; a late instance makes
-- it stale and the next request rebuilds it.
create table series_metadata (
    series_id      bigint primary key references series (id) on delete cascade,
    num_instances  integer not null,
    body_zlib      bytea not null,
    built_at       timestamptz not null default now()
);
