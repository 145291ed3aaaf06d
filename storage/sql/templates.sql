-- name: templates_list
-- The templates the user ($4) reads from: their network's own, and the shared ones their
-- network has no copy of (a copy set aside hides its shared template too); the inactive
-- ones only when $5.
with mine as (select network_root(u.facility_id) as root from app_user u where u.id = $4)
select t.id, t.specialty, t.modality, t.name, t.language, t.findings, t.impression,
       t.updated_at, t.network_id, t.active
from report_template t, mine
where ($1::text is null or t.specialty = $1)
  and ($2::text is null or t.modality = $2 or t.modality is null)
  and ($3::text is null or t.language = $3)
  and (t.active or $5::boolean)
  and (t.network_id = mine.root
       or (t.network_id is null and not exists (
           select 1 from report_template o
           where o.network_id = mine.root and o.specialty = t.specialty
             and coalesce(o.modality, '') = coalesce(t.modality, '')
             and o.name = t.name and o.language = t.language)))
order by t.specialty, t.modality nulls last, t.name;

-- name: template_lock_for_user
-- A template the user ($2) reads from (shared, or their network's), locked.
select t.id, t.specialty, t.modality, t.name, t.language, t.findings, t.impression,
       t.updated_at, t.network_id, t.active
from report_template t join app_user u on u.id = $2
where t.id = $1 and (t.network_id is null or t.network_id = network_root(u.facility_id))
for update of t;

-- name: template_save_for_network
-- The network's ($1) copy of a template, made or replaced with the text given.
insert into report_template
    (network_id, specialty, modality, name, language, findings, impression, updated_by, active)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
on conflict (coalesce(network_id, 0), specialty, coalesce(modality, ''), name, language)
do update set findings = excluded.findings, impression = excluded.impression,
              updated_by = excluded.updated_by, active = excluded.active, updated_at = now()
returning id, specialty, modality, name, language, findings, impression, updated_at,
          network_id, active;

-- name: template_for_user
-- A template the user ($2) reads from; a shared one their network has copied reads as the
-- network's copy.
with mine as (select network_root(u.facility_id) as root from app_user u where u.id = $2),
asked as (select * from report_template where id = $1)
select t.id, t.specialty, t.modality, t.name, t.language, t.findings, t.impression,
       t.updated_at, t.network_id, t.active
from report_template t, mine, asked a
where (a.network_id is null or a.network_id = mine.root)
  and (t.network_id is null or t.network_id = mine.root)
  and t.specialty = a.specialty and coalesce(t.modality, '') = coalesce(a.modality, '')
  and t.name = a.name and t.language = a.language
order by t.network_id nulls last
limit 1;

-- name: template_insert_for_network
-- A new template of the network ($1) alone; nothing when one of that name exists already.
insert into report_template
    (network_id, specialty, modality, name, language, findings, impression, updated_by)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict do nothing
returning id, specialty, modality, name, language, findings, impression, updated_at,
          network_id, active;

-- name: template_update_own
-- The network's own template $1 renamed, its text or its modality changed, set aside or
-- taken back; nothing when another of the network's templates has that name.
update report_template set name = $2, modality = $3, findings = $4, impression = $5,
                           active = $6, updated_by = $7, updated_at = now()
where id = $1 and network_id is not null
  and not exists (select 1 from report_template o
                  where o.id <> $1 and o.network_id = report_template.network_id
                    and o.specialty = report_template.specialty
                    and coalesce(o.modality, '') = coalesce($3, '')
                    and o.name = $2 and o.language = report_template.language)
returning id, specialty, modality, name, language, findings, impression, updated_at,
          network_id, active;

-- name: template_copies_shared
-- Whether template $1 is a network's copy of a shared template (same specialty, modality,
-- name and language): it stands in the shared one's place while it keeps them.
select exists (
    select 1 from report_template t join report_template s
        on s.network_id is null and s.specialty = t.specialty
       and coalesce(s.modality, '') = coalesce(t.modality, '')
       and s.name = t.name and s.language = t.language
    where t.id = $1 and t.network_id is not null);
