-- The worker's sweep looks every few seconds for final reports left undelivered, and the
-- dashboard for DICOM copies given up: both are a handful of rows in tables that grow with
-- every report, so each has a partial index instead of a scan of the whole table.
create index report_undelivered_idx on report (signed_at)
    where status = 'final' and delivered_at is null;
create index dicom_send_failed_idx on dicom_send (next_attempt_at) where status = 'failed';
