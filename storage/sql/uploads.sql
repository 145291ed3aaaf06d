-- Resumable upload sessions (migration 0035).

-- name: upload_session_insert
insert into upload_session (facility_id, created_by, client_key, study_instance_uid, priority,
                            clinical_question)
values ($1, $2, $3, $4, $5, $6)
on conflict (facility_id, client_key) do nothing
returning id;

-- name: upload_session_lock_by_key
select id, public_id, facility_id, client_key, study_instance_uid, priority, clinical_question,
       state, created_at, updated_at, committed_at
from upload_session where facility_id = $1 and client_key = $2
for update;

-- name: upload_session_request
-- A resumed session keeps the most urgent priority asked for, and a question once given.
update upload_session
set priority = case when $2 = 'high' or priority = 'high' then 'high'
                    when $2 = 'medium' or priority = 'medium' then 'medium'
                    else 'low' end,
    clinical_question = coalesce($3, clinical_question),
    updated_at = now()
where id = $1;

-- name: upload_items_conflicting
-- Manifest lines that name an instance already in the session with another size or hash.
select i.sop_instance_uid
from upload_item i
join unnest($2::text[], $3::bigint[], $4::text[]) as m(sop, size, sha)
  on m.sop = i.sop_instance_uid
where i.session_id = $1 and (i.size_bytes <> m.size or i.sha256 <> m.sha)
limit 5;

-- name: upload_items_new
-- How many of these manifest lines the session does not have yet.
select count(*)
from unnest($2::text[]) as m(sop)
where not exists (
    select 1 from upload_item i where i.session_id = $1 and i.sop_instance_uid = m.sop);

-- name: upload_items_insert
insert into upload_item (session_id, sop_instance_uid, size_bytes, sha256)
select $1, m.sop, m.size, m.sha
from unnest($2::text[], $3::bigint[], $4::text[]) as m(sop, size, sha)
on conflict (session_id, sop_instance_uid) do nothing;

-- name: upload_session_by_id
select id, public_id, facility_id, client_key, study_instance_uid, priority, clinical_question,
       state, created_at, updated_at, committed_at
from upload_session where public_id = $1 and facility_id = $2;

-- name: upload_sessions_of_facility
select id, public_id, facility_id, client_key, study_instance_uid, priority, clinical_question,
       state, created_at, updated_at, committed_at
from upload_session
where facility_id = $1 and ($2::text is null or state = $2)
order by updated_at desc, id desc
limit $3;

-- name: upload_item_counts
select count(*) as total, count(stored_at) as stored,
       coalesce(sum(size_bytes), 0)::bigint as total_bytes,
       coalesce(sum(bodies_received), 0)::bigint as bodies_received
from upload_item where session_id = $1;

-- name: upload_items_missing
-- Instances not stored yet, with the byte ranges already received of those sent in parts.
select i.sop_instance_uid, i.size_bytes, i.sha256,
       coalesce(array_agg(p.start_byte order by p.start_byte) filter (where p.start_byte is not null),
                '{}') as part_starts,
       coalesce(array_agg(p.length_bytes order by p.start_byte) filter (where p.start_byte is not null),
                '{}') as part_lengths
from upload_item i
left join upload_part p
  on p.session_id = i.session_id and p.sop_instance_uid = i.sop_instance_uid
where i.session_id = $1 and i.stored_at is null
group by i.sop_instance_uid, i.size_bytes, i.sha256
order by i.sop_instance_uid;

-- name: upload_item_get
select sop_instance_uid, size_bytes, sha256, stored_at, outcome, bodies_received
from upload_item where session_id = $1 and sop_instance_uid = $2;

-- name: upload_item_stored
update upload_item
set stored_at = coalesce(stored_at, now()),
    outcome = coalesce(outcome, $3),
    bodies_received = bodies_received + 1
where session_id = $1 and sop_instance_uid = $2;

-- name: upload_item_delete
delete from upload_item
where session_id = $1 and sop_instance_uid = $2 and stored_at is null
returning sop_instance_uid;

-- name: upload_session_touch
update upload_session set updated_at = now() where id = $1;

-- name: upload_part_upsert
-- A part sent again (after a broken link) replaces the earlier copy of the same range start.
insert into upload_part (session_id, sop_instance_uid, start_byte, length_bytes, object_key)
values ($1, $2, $3, $4, $5)
on conflict (session_id, sop_instance_uid, start_byte) do update
    set length_bytes = excluded.length_bytes, object_key = excluded.object_key,
        received_at = now()
returning (select object_key from upload_part
           where session_id = $1 and sop_instance_uid = $2 and start_byte = $3) as replaced_key,
          object_guard($5);

-- name: upload_parts_of_item
select start_byte, length_bytes, object_key
from upload_part where session_id = $1 and sop_instance_uid = $2
order by start_byte;

-- name: upload_parts_delete
delete from upload_part where session_id = $1 and sop_instance_uid = $2
returning object_key;

-- name: upload_part_delete_one
delete from upload_part where session_id = $1 and sop_instance_uid = $2 and start_byte = $3;

-- name: upload_session_commit
update upload_session
set state = 'committed', committed_at = coalesce(committed_at, now()), updated_at = now()
where id = $1
  and not exists (select 1 from upload_item where session_id = $1 and stored_at is null)
returning committed_at;

-- name: upload_holds_study
select upload_holds_study($1, $2);
