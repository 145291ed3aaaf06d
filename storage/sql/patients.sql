-- name: secret_get
select value from service_secret where name = $1;

-- name: secret_delete
delete from service_secret where name = $1;

-- name: patient_visible_to
-- A clinic its own patients, an administrator those issued in their network, a reader
-- those with a case the reader may see.
select exists (
    select 1 from patient p join app_user u on u.id = $1
    where p.id = $2 and u.active and case u.role
        when 'clinic' then p.issuer_facility_id = u.facility_id
        when 'admin' then p.issuer_facility_id in (select facility_subtree(u.facility_id))
        else exists (select 1 from study s join reading_case c on c.study_id = s.id
                     where s.patient_ref = p.id and case_visible_to(u.id, c.id))
    end);

-- name: person_by_digest_upsert
insert into person (national_id_digest) values ($1)
on conflict (national_id_digest) do update set national_id_digest = excluded.national_id_digest
returning id;

-- name: person_insert
insert into person default values returning id;

-- name: patient_link_of
select person_id from patient_link where patient_id = $1;

-- name: patient_link_upsert
insert into patient_link (patient_id, person_id, method, linked_by) values ($1, $2, $3, $4)
on conflict (patient_id) do update
    set person_id = excluded.person_id, method = excluded.method,
        linked_by = excluded.linked_by, linked_at = now();

-- name: person_move_links
update patient_link set person_id = $2 where person_id = $1;

-- name: patient_unlink
delete from patient_link where patient_id = $1 returning person_id;

-- name: patient_link_audit_insert
insert into patient_link_audit (user_id, action, patient_id, person_id, detail)
values ($1, $2, $3, $4, $5::jsonb);

-- name: patient_link_history
select at, user_id, action, patient_id, person_id from patient_link_audit
where patient_id = $1 or person_id in (select person_id from patient_link_audit
                                       where patient_id = $1 and person_id is not null)
order by id;

-- name: patient_of_study
select patient_ref from study where id = $1;

-- name: priors_of_study
select s.id, s.study_instance_uid, f.code, s.patient_ref, s.study_date, s.modalities,
       s.description, s.first_received_at, rep.conclusion, rep.impression
from study cur
join study s on s.patient_ref in (select linked_patients(cur.patient_ref)) and s.id <> cur.id
join facility f on f.id = s.facility_id
left join lateral (
    select r.conclusion, r.impression from report r join reading_case c on c.id = r.case_id
    where c.study_id = s.id and r.status = 'final' order by r.id desc limit 1) rep on true
where cur.id = $1 and study_visible_to($2, s.id)
order by s.first_received_at desc
limit 50;
