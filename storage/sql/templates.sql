-- name: templates_list
select id, specialty, modality, name, language, findings, impression, updated_at
from report_template
where ($1::text is null or specialty = $1)
  and ($2::text is null or modality = $2 or modality is null)
  and ($3::text is null or language = $3)
order by specialty, modality nulls last, name;

-- name: template_update
update report_template set findings = $2, impression = $3, updated_by = $4, updated_at = now()
where id = $1
returning id, specialty, modality, name, language, findings, impression, updated_at;

-- name: template_by_id
select id, specialty, modality, name, language, findings, impression, updated_at
from report_template where id = $1;

-- name: template_lock
select id, specialty, modality, name, language, findings, impression, updated_at
from report_template where id = $1 for update;
