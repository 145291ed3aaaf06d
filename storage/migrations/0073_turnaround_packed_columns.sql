-- What the dashboard and the turnaround tables read of each case, kept packed on its row
-- in PostgreSQL's binary form, so a period's cases are read as one string of fixed-width
-- records instead of a send call per value per case (at a year of a county network, about
-- half a million cases, those calls were most of the read):
--
-- * figures: the sending facility's and the reader's ids (facility * 2^32 + reader, 0 for
--   none), the received -> final and the final -> acknowledged seconds (NaN: not yet), the
--   time of the first final report ('infinity': none yet) and whether its deadline was kept
--   (int2: 1 yes, 0 no, 2 unknown), 34 bytes;
-- * steps: the sending facility and the time of each step a turnaround segment runs
--   between (storage.turnaround.STEPS, in its order; 'infinity' for a step not gone
--   through), 80 bytes.
--
-- Both are generated: every write of a row keeps them, and nothing else writes them. The
-- index on the time of the final report carries the figures instead of the columns they
-- are made of, so the dashboard still reads a period from the index alone, and a second
-- index on that time carries the steps, so the turnaround tables do too (at 1,000,000
-- cases, about 110 MB each). Adding the columns rewrites the table, and an index-only read
-- visits the table's pages until a vacuum marks them all-visible: one runs at once.

alter table case_turnaround
    add column figures bytea generated always as (
        int8send(facility_id * 4294967296 + coalesce(reader_id, 0))
        || float8send(coalesce(extract(epoch from (final_at - received_at))::float8, 'NaN'))
        || float8send(coalesce(extract(epoch from (acknowledged_at - final_at))::float8, 'NaN'))
        || timestamptz_send(coalesce(final_at, 'infinity'))
        || int2send((case when sla_met then 1 when not sla_met then 0 else 2 end)::int2)
    ) stored,
    add column steps bytea generated always as (
        int8send(facility_id)
        || timestamptz_send(received_at)
        || timestamptz_send(coalesce(complete_at, 'infinity'))
        || timestamptz_send(coalesce(routed_at, 'infinity'))
        || timestamptz_send(coalesce(claimed_at, 'infinity'))
        || timestamptz_send(coalesce(escalated_at, 'infinity'))
        || timestamptz_send(coalesce(preliminary_at, 'infinity'))
        || timestamptz_send(coalesce(final_at, 'infinity'))
        || timestamptz_send(coalesce(delivered_at, 'infinity'))
        || timestamptz_send(coalesce(acknowledged_at, 'infinity'))
    ) stored;

create index case_turnaround_final_packed_idx on case_turnaround (final_at)
    include (facility_id, tier, specialty, modality, priority, reader_id, figures)
    where final_at is not null;
drop index case_turnaround_final_cover_idx;
create index case_turnaround_steps_idx on case_turnaround (final_at)
    include (facility_id, steps)
    where final_at is not null;

-- after commit: vacuum (analyze) case_turnaround
