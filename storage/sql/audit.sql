-- The audit chain: appending (the only write), searching, and walking it to verify.

-- name: audit_append
-- Studies named by id or UID, and their patients, are resolved by audit_append_named (0075).
select audit_append_named($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13);

-- name: audit_of_object
select user_id, action, at from audit where object_type = $1 and object_id = $2 order by seq;

-- name: audit_head
select seq, hash from audit_head;

-- name: audit_chain_page
-- The canonical text of each record, exactly as audit_link() (migration 0052) hashes it.
select seq, prev_hash, hash, jsonb_build_array(
    seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    user_id, username, role, facility_id, action, object_type, object_id,
    patients, studies, address, result, detail
)::text as body
from audit where seq > $1 order by seq limit $2;

-- name: audit_search
-- The records of an administrator's network ($1: the administrator), newest first.
select a.seq, a.at, a.username, a.role, f.code as facility, a.action, a.object_type,
       a.object_id, a.patients, a.studies, a.address, a.result, a.detail::text as detail
from audit a
join app_user u on u.id = $1
left join facility f on f.id = a.facility_id
where a.facility_id in (select facility_subtree(u.facility_id))
  and ($2::timestamptz is null or a.at >= $2)
  and ($3::timestamptz is null or a.at < $3)
  and ($4::text is null or a.username = $4)
  and ($5::text is null or a.action = $5)
  and ($6::text is null or a.patients @> array[$6::text])
  and ($7::text is null or a.studies @> array[$7::text])
  and ($8::text is null or a.result = $8)
  and ($9::bigint is null or a.seq < $9)
order by a.seq desc
limit $10;
