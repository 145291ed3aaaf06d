-- name: admin_facilities
-- The facilities of an active administrator's network (none for anyone else).
select f from app_user u, facility_subtree(u.facility_id) f
where u.id = $1 and u.active and u.role = 'admin';

-- name: duplicate_candidates
-- Pairs (a < b) of records of these facilities ($1) that may be one person: the same stated
-- national ID, or the same folded name, sex and birth date at two facilities; neither one
-- person already nor dismissed. Newest first (b, then a), the page before the pair ($2, $3)
-- and $4 at most. Each branch walks the records newest first by primary key and looks each
-- one's partners up by index (patient_name_fold_idx, patient_national_id_digest_idx),
-- stopping once the page is full: a page costs the records it reads, not the index's size.
with by_name as (
    select a.id as a, b.id as b, 'demographics' as reason
    from patient b
    cross join lateral (
        -- a limit keeps this a lookup per record (never flattened into a hash join)
        select a.id from patient a
        where a.name_fold = b.name_fold and a.birth_date = b.birth_date and a.sex = b.sex
          and a.name_fold <> '' and a.birth_date is not null and a.sex is not null
          and a.id < b.id and (b.id < $2 or a.id < $3)
          and a.issuer_facility_id <> b.issuer_facility_id
          and a.issuer_facility_id = any($1::bigint[])
          and not pair_settled(a.id, b.id)
        order by a.id desc
        limit 100
    ) a
    where b.id <= $2 and b.issuer_facility_id = any($1::bigint[])
      and b.name_fold <> '' and b.birth_date is not null and b.sex is not null
    order by b.id desc, a.id desc
    limit $4
), by_national_id as (
    select a.patient_id as a, b.patient_id as b, 'national_id' as reason
    from patient_national_id b
    join patient pb on pb.id = b.patient_id
    join patient_national_id a
        on a.national_id_digest = b.national_id_digest and a.patient_id < b.patient_id
    join patient pa on pa.id = a.patient_id
    where b.patient_id <= $2 and (b.patient_id, a.patient_id) < ($2, $3)
      and pa.issuer_facility_id = any($1::bigint[]) and pb.issuer_facility_id = any($1::bigint[])
      and not pair_settled(a.patient_id, b.patient_id)
    order by b.patient_id desc, a.patient_id desc
    limit $4
)
select x.a, x.b, array_agg(x.reason order by x.reason) as reasons
from (select * from by_name union all select * from by_national_id) x
group by x.a, x.b
order by x.b desc, x.a desc
limit $4;

-- name: patient_records
-- Patient records as the console shows them, with their person and stated national ID.
select p.id, p.patient_id, p.name, p.sex, p.birth_date, p.created_at, p.issuer_facility_id,
       f.code as facility_code, f.name as facility_name,
       l.person_id, l.method as link_method, (n.patient_id is not null) as national_id_stated,
       coalesce((select array_agg(o.patient_id order by o.patient_id) from patient_link o
                 where o.person_id = l.person_id and o.patient_id <> p.id), '{}') as linked
from patient p
join facility f on f.id = p.issuer_facility_id
left join patient_link l on l.patient_id = p.id
left join patient_national_id n on n.patient_id = p.id
where p.id = any($1::bigint[])
order by p.id;

-- name: patient_record_studies
-- The studies (ECGs among them) of a record, newest first, with their latest case and its
-- latest report.
select s.id, s.patient_ref, s.study_instance_uid, s.study_date, s.modalities, s.description,
       s.first_received_at, c.id as case_id, c.specialty, c.status as case_status,
       r.status as report_status, r.conclusion, r.impression
from study s
left join lateral (
    select c.id, c.specialty, c.status from reading_case c where c.study_id = s.id
    order by c.id desc limit 1) c on true
left join lateral (
    select r.status, r.conclusion, r.impression from report r where r.case_id = c.id
    order by r.id desc limit 1) r on true
where s.patient_ref = any($1::bigint[])
order by s.first_received_at desc, s.id desc
limit 200;

-- name: pair_dismiss
insert into patient_pair_dismissal (patient_a, patient_b, dismissed_by, note)
values ($1, $2, $3, $4)
on conflict (patient_a, patient_b) do nothing
returning dismissed_at;

-- name: national_id_stated
insert into patient_national_id (patient_id, national_id_digest, stated_by)
values ($1, $2, $3)
on conflict (patient_id) do update
    set national_id_digest = excluded.national_id_digest, stated_by = excluded.stated_by,
        stated_at = now();

-- name: identity_conflicts
-- The identity conflicts at ingest of these facilities ($1), newest first: open ones only
-- unless $2.
select c.id, c.at, c.attribute, c.study_value, c.instance_value, c.sop_instance_uid,
       f.code as facility_code, f.name as facility_name, s.id as study_id,
       s.study_instance_uid, s.patient_ref, c.resolved_at, ru.username as resolved_by,
       c.resolution_note, count(*) over () as total
from ingest_identity_conflict c
join facility f on f.id = c.facility_id
join study s on s.id = c.study_id
left join app_user ru on ru.id = c.resolved_by
where c.facility_id = any($1::bigint[]) and ($2 or c.resolved_at is null)
order by c.at desc, c.id desc
limit $3 offset $4;

-- name: identity_conflict_resolve
update ingest_identity_conflict set resolved_at = now(), resolved_by = $3, resolution_note = $4
where id = $1 and facility_id = any($2::bigint[]) and resolved_at is null
returning id, study_id, attribute, resolved_at;

-- name: identity_conflict_state
select c.id, c.resolved_at, c.study_id from ingest_identity_conflict c
where c.id = $1 and c.facility_id = any($2::bigint[]);

-- name: pair_standing
-- Why two records ($1 < $2) are a candidate pair, and whether they were judged not one person.
select array_remove(array[
           case when pa.name_fold = pb.name_fold and pa.birth_date = pb.birth_date
                     and pa.sex = pb.sex and pa.issuer_facility_id <> pb.issuer_facility_id
                then 'demographics' end,
           case when na.national_id_digest = nb.national_id_digest then 'national_id' end
       ], null) as reasons,
       d.dismissed_at, du.username as dismissed_by, d.note
from patient pa
join patient pb on pb.id = $2
left join patient_national_id na on na.patient_id = pa.id
left join patient_national_id nb on nb.patient_id = pb.id
left join patient_pair_dismissal d on d.patient_a = pa.id and d.patient_b = pb.id
left join app_user du on du.id = d.dismissed_by
where pa.id = $1;

-- name: pair_dismissals
-- The pairs judged not one person whose two records are issued by these facilities ($1),
-- newest first.
select d.patient_a, d.patient_b, d.dismissed_at, du.username as dismissed_by, d.note,
       count(*) over () as total
from patient_pair_dismissal d
join patient pa on pa.id = d.patient_a
join patient pb on pb.id = d.patient_b
join app_user du on du.id = d.dismissed_by
where pa.issuer_facility_id = any($1::bigint[]) and pb.issuer_facility_id = any($1::bigint[])
order by d.dismissed_at desc, d.patient_a desc, d.patient_b desc
limit $2 offset $3;

-- name: pair_undismiss
delete from patient_pair_dismissal where patient_a = $1 and patient_b = $2
returning dismissed_at, note;
