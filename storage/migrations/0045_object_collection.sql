-- Collecting objects no row refers to (a crash between an object's write and its index
-- commit, parts of uploads given up): the collector deletes an object under an exclusive
-- advisory lock on its key and leaves a tombstone; every statement that makes a row refer to
-- an object calls object_guard(key) in its transaction, which waits for that lock (shared) and
-- then refuses (TM410) if the object was collected meanwhile, so that no row is committed
-- pointing at an object that is gone. The writer then makes sure of the object and tries again.
create table object_tombstone (
    object_key  text primary key,
    deleted_at  timestamptz not null default now()
);

create function object_guard(p_key text) returns boolean
language plpgsql volatile as $$
begin
    perform pg_advisory_xact_lock_shared(hashtextextended('object:' || p_key, 0));
    -- A statement of its own, so it sees a collection committed while the lock was awaited.
    if exists (select 1 from object_tombstone where object_key = p_key) then
        raise exception using errcode = 'TM410',
            message = 'the object ' || p_key || ' was collected; write it again';
    end if;
    return true;
end;
$$;

-- What the collector asks of every object it finds: does a row refer to it?
create index report_pdf_key_idx on report (pdf_key) where pdf_key is not null;
create index dicom_send_object_key_idx on dicom_send (object_key);
create index ecg_original_object_key_idx on ecg_original (object_key);
