-- The audit as an insert-only hash chain.
--
-- The table and its head belong to telemed_audit, a role nobody logs in as. The only way in
-- is audit_append(), a SECURITY DEFINER function running as that role: the application's
-- role (any role that is neither a superuser nor a member of telemed_audit) can read the
-- audit and append to it, and cannot update, delete or truncate it. Migrations therefore run
-- as a superuser (or a role that may create telemed_audit and hand tables to it).
--
-- Each record's hash is sha256(previous hash || its canonical text), the canonical text being
-- the jsonb array of its columns in order (below, and in storage/sql/audit.sql, which the
-- verifier uses). The sequence is taken from audit_head under its row lock, held to the end
-- of the writer's transaction, so concurrent writers line up and the chain cannot fork; a
-- transaction that rolls back takes its record and its head move with it: no gap.
do $$
begin
    if not exists (select from pg_roles where rolname = 'telemed_audit') then
        create role telemed_audit nologin;
    end if;
end
$$;

alter table audit rename to audit_before_chain;

create table audit (
    seq          bigint primary key,
    at           timestamptz not null,
    user_id      bigint,
    username     text,
    role         text,
    facility_id  bigint,
    action       text not null,
    object_type  text not null,
    object_id    text not null,
    patients     text[] not null default '{}',
    studies      text[] not null default '{}',
    address      text,
    result       text not null check (result in ('ok', 'denied', 'failed')),
    detail       jsonb not null default '{}',
    prev_hash    bytea not null,
    hash         bytea not null
);
create index audit_facility_at_idx on audit (facility_id, at desc);
create index audit_at_idx on audit (at desc);
create index audit_object_idx on audit (object_type, object_id);
create index audit_patients_idx on audit using gin (patients);
create index audit_studies_idx on audit using gin (studies);

create table audit_head (
    one   boolean primary key default true check (one),
    seq   bigint not null,
    hash  bytea not null
);
insert into audit_head (seq, hash) values (0, decode(repeat('00', 32), 'hex'));

-- Link one record at the head of the chain (the caller holds nothing; this takes the lock).
create function audit_link(
    p_at timestamptz, p_user_id bigint, p_username text, p_role text, p_facility_id bigint,
    p_action text, p_object_type text, p_object_id text, p_patients text[], p_studies text[],
    p_address text, p_result text, p_detail jsonb
) returns bigint
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $$
declare
    v_head audit_head;
    v_seq bigint;
    v_at timestamptz;
    v_hash bytea;
    v_user record;
begin
    select * into v_head from audit_head where one for update;
    v_seq := v_head.seq + 1;
    -- Taken once the lock is held, so times never go back along the chain.
    v_at := coalesce(p_at, clock_timestamp());
    select username, role, facility_id into v_user from app_user where id = p_user_id;
    p_username := coalesce(v_user.username, p_username);
    p_role := coalesce(v_user.role, p_role);
    p_facility_id := coalesce(v_user.facility_id, p_facility_id);
    p_patients := coalesce(p_patients, '{}');
    p_studies := coalesce(p_studies, '{}');
    p_detail := coalesce(p_detail, '{}');
    v_hash := sha256(v_head.hash || convert_to(jsonb_build_array(
        v_seq, to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_user_id, p_username, p_role, p_facility_id, p_action, p_object_type, p_object_id,
        p_patients, p_studies, p_address, p_result, p_detail
    )::text, 'UTF8'));
    insert into audit values (
        v_seq, v_at, p_user_id, p_username, p_role, p_facility_id, p_action, p_object_type,
        p_object_id, p_patients, p_studies, p_address, p_result, p_detail, v_head.hash, v_hash
    );
    update audit_head set seq = v_seq, hash = v_hash where one;
    return v_seq;
end;
$$;

-- What the application calls: one record, now.
create function audit_append(
    p_user_id bigint, p_username text, p_role text, p_facility_id bigint,
    p_action text, p_object_type text, p_object_id text, p_patients text[], p_studies text[],
    p_address text, p_result text, p_detail jsonb
) returns bigint
language sql security definer set search_path = pg_catalog, public, pg_temp as $$
    select audit_link(
        null, p_user_id, p_username, p_role, p_facility_id, p_action, p_object_type,
        p_object_id, p_patients, p_studies, p_address, p_result, p_detail
    );
$$;

-- The records written before the chain, linked in their order, with their own times.
do $$
declare
    r record;
begin
    for r in select * from audit_before_chain order by id loop
        perform audit_link(
            r.at, r.user_id, null, null, null, r.action, r.object_type, r.object_id,
            null, null, null, 'ok', r.detail
        );
    end loop;
end
$$;
drop table audit_before_chain;

grant select (id, username, role, facility_id) on app_user to telemed_audit;
alter table audit owner to telemed_audit;
alter table audit_head owner to telemed_audit;
alter function audit_link(
    timestamptz, bigint, text, text, bigint, text, text, text, text[], text[], text, text, jsonb
) owner to telemed_audit;
alter function audit_append(
    bigint, text, text, bigint, text, text, text, text[], text[], text, text, jsonb
) owner to telemed_audit;
revoke all on audit, audit_head from public;
grant select on audit, audit_head to public;
revoke all on function audit_link(
    timestamptz, bigint, text, text, bigint, text, text, text, text[], text[], text, text, jsonb
) from public;
grant execute on function audit_append(
    bigint, text, text, bigint, text, text, text, text[], text[], text, text, jsonb
) to public;
