-- The dashboard's queries read a period of case_turnaround by the time of the first final
-- report (figures, trend) or of receipt (intake) and only a few of its columns: indexes on
-- those times that also carry the columns read (the filters, the durations, the deadline
-- kept) answer them from the index alone, without visiting the table's wide rows. They
-- take the place of the plain indexes on the same times.

create index case_turnaround_final_cover_idx on case_turnaround (final_at)
    include (facility_id, tier, specialty, modality, priority, reader_id, final_s, ack_s,
             sla_met)
    where final_at is not null;
create index case_turnaround_received_cover_idx on case_turnaround (received_at)
    include (facility_id, tier, specialty, modality, priority, reader_id, returned_at,
             final_at);
drop index case_turnaround_final_idx;
drop index case_turnaround_received_idx;
