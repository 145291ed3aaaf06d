-- A reader's search driven from their own cases (qido_scope_reader_cases in
-- storage/sql/qido.sql): the cases escalated from the reader's pool are found by the pool they
-- were first routed to; the cases routed to it now already have reading_case_pool_idx.
create index reading_case_escalated_from_idx on reading_case (first_pool_facility_id, specialty)
    where escalated_at is not null;
