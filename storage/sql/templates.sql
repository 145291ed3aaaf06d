-- name: templates_list
-- The templates the user ($4) reads from: their network's own, and the shared ones their
-- network has no copy of.
with mine as (select network_root(u.facility_id) as root from app_user u where u.id = $4)
select t.id, t.specialty, t.modality, t.name, t.language, t.findings, t.impression,
       t.updated_at, t.network_id
from report_template t, mine
where ($1::text is null or t.specialty = $1)
  and ($2::text is null or t.modality = $2 or t.modality is null)
  and ($3::text is null or t.language = $3)
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
       t.updated_at, t.network_id
from report_template t join app_user u on u.id = $2
where t.id = $1 and (t.network_id is null or t.network_id = network_root(u.facility_id))
for update of t;

-- name: template_save_for_network
-- The network's ($1) copy of a template, made or replaced with the text given.
insert into report_template
    (network_id, specialty, modality, name, language, findings, impression, updated_by)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (coalesce(network_id, 0), specialty, coalesce(modality, ''), name, language)
do update set findings = excluded.findings, impression = excluded.impression,
              updated_by = excluded.updated_by, updated_at = now()
returning id, specialty, modality, name, language, findings, impression, updated_at,
          network_id;

-- name: template_for_user
-- A template the user ($2) reads from; a shared one their network has copied reads as the
-- network's copy.
with mine as (select network_root(u.facility_id) as root from app_user u where u.id = $2),
asked as (select * from report_template where id = $1)
select t.id, t.specialty, t.modality, t.name, t.language, t.findings, t.impression,
       t.updated_at, t.network_id
from report_template t, mine, asked a
where (a.network_id is null or a.network_id = mine.root)
  and (t.network_id is null or t.network_id = mine.root)
  and t.specialty = a.specialty and coalesce(t.modality, '') = coalesce(a.modality, '')
  and t.name = a.name and t.language = a.language
order by t.network_id nulls last
limit 1;
