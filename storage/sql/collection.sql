-- Collecting unreferenced objects (migration 0045).

-- name: collector_lock
-- One collector at a time in the whole network (a session lock, held for the pass).
select pg_try_advisory_lock(hashtextextended('object collector', 0));

-- name: collector_unlock
select pg_advisory_unlock(hashtextextended('object collector', 0));

-- name: object_lock_exclusive
select pg_advisory_xact_lock(hashtextextended('object:' || $1, 0));

-- name: object_guard
-- Inside a writer's transaction, for each object its rows refer to.
select object_guard(k) from unnest($1::text[]) k;

-- name: objects_unreferenced
-- Of the keys $1, those no row refers to (an instance, an upload part, a report's PDF, a
-- DICOM copy of a report, an ECG cart's original file, a refused ECG file, an instance held
-- for a reader).
select k from unnest($1::text[]) k
where not exists (select 1 from instance where object_key = k)
  and not exists (select 1 from upload_part where object_key = k)
  and not exists (select 1 from held_instance where object_key = k)
  and not exists (select 1 from report where pdf_key = k)
  and not exists (select 1 from dicom_send where object_key = k)
  and not exists (select 1 from ecg_original where object_key = k)
  and not exists (select 1 from refused_ecg where object_key = k);

-- name: object_tombstone_put
insert into object_tombstone (object_key) values ($1)
on conflict (object_key) do update set deleted_at = now();

-- name: object_lock_shared
select pg_advisory_xact_lock_shared(hashtextextended('object:' || $1, 0));

-- name: object_tombstone_delete
-- The object is there again (written again, or found): rows may refer to it.
delete from object_tombstone where object_key = $1;

-- name: object_tombstones_prune
-- A writer's transaction lasts seconds: tombstones older than $1 seconds guard nothing.
delete from object_tombstone where deleted_at < now() - make_interval(secs => $1);

-- name: uploads_abandoned_forget
-- Open uploads untouched for $1 seconds: given up by their client; their parts go.
delete from upload_session
where state = 'open' and updated_at < now() - make_interval(secs => $1)
returning id;

-- name: objects_referenced_page
-- Every object a row refers to, with what refers to it, in key order after $1 (a page of $2).
select k, what from (
    select object_key as k, 'instance' as what from instance
    union select object_key, 'upload part' from upload_part
    union select object_key, 'held instance' from held_instance
    union select pdf_key, 'report PDF' from report where pdf_key is not null
    union select object_key, 'report copy' from dicom_send
    union select object_key, 'ECG original' from ecg_original
    union select object_key, 'refused ECG file' from refused_ecg
) refs
where k > $1
order by k
limit $2;
