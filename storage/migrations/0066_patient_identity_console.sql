-- The console's patient identity: the national ID each record was stated with (so a record
-- whose national ID names another person than the one it is linked to shows as a candidate
-- duplicate), pairs an administrator judged not the same person, and the resolution of
-- identity conflicts at ingest.

-- The national ID a record was last stated with, as the person table keeps it (a keyed
-- hash, never the ID). Kept even when the link was refused or later undone.
create table patient_national_id (
    patient_id          bigint primary key references patient (id) on delete cascade,
    national_id_digest  text not null,
    stated_by           bigint references app_user (id),
    stated_at           timestamptz not null default now()
);
create index patient_national_id_digest_idx on patient_national_id (national_id_digest);

insert into patient_national_id (patient_id, national_id_digest, stated_by, stated_at)
select l.patient_id, pe.national_id_digest, l.linked_by, l.linked_at
from patient_link l join person pe on pe.id = l.person_id
where l.method = 'national_id' and pe.national_id_digest is not null;

-- A pair of records an administrator judged not the same person: it leaves the candidates.
create table patient_pair_dismissal (
    patient_a     bigint not null references patient (id) on delete cascade,
    patient_b     bigint not null references patient (id) on delete cascade,
    dismissed_by  bigint not null references app_user (id),
    dismissed_at  timestamptz not null default now(),
    note          text,
    primary key (patient_a, patient_b),
    check (patient_a < patient_b)
);

-- Whether a pair of records (a < b) is settled: one person already, or judged not to be.
create function pair_settled(p_a bigint, p_b bigint) returns boolean
language sql stable parallel safe as $$
    select exists (select 1 from patient_link la join patient_link lb on lb.person_id = la.person_id
                   where la.patient_id = p_a and lb.patient_id = p_b)
        or exists (select 1 from patient_pair_dismissal d
                   where d.patient_a = p_a and d.patient_b = p_b)
$$;

alter table ingest_identity_conflict
    add column resolved_at      timestamptz,
    add column resolved_by      bigint references app_user (id),
    add column resolution_note  text,
    add check ((resolved_at is null) = (resolved_by is null));
create index ingest_identity_conflict_open_idx on ingest_identity_conflict (at desc, id desc)
    where resolved_at is null;
create index ingest_identity_conflict_facility_idx on ingest_identity_conflict (facility_id, at desc);
