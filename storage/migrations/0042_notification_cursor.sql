-- The event stream's cursor. Ids are handed out at insert, not at commit, so a notification
-- whose transaction commits late can carry a lower id than one already pushed. Each row keeps
-- the transaction that wrote it; the stream reads in (tx, id) order and only below the oldest
-- transaction still running, where nothing can appear any more.
alter table notification add column tx xid8 not null default pg_current_xact_id();
create index notification_tx_idx on notification (tx, id);
