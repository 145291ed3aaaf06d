-- QIDO-RS and C-FIND search: columns and indexes computed from what the index already
-- stores (ingest code is unchanged), and the reader's scope widened to the patient's priors.

-- Case- and accent-insensitive form of a text (fuzzy name matching): accented Latin letters
-- (pinyin tones included) become their base letter, then everything is lowercased. CJK text
-- is unchanged. Immutable, so it can feed generated columns and indexes.
create function qido_fold(t text) returns text
language sql immutable parallel safe as $$
    select lower(translate(t,
        'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľŁłŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ',
        'aaaaaaceeeeiiiinoooooouuuuyaaaaaaceeeeiiiinoooooouuuuyyaaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiijjkkllllllllnnnnnnoooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyy'))
$$;

-- A person name's component groups (alphabetic=ideographic=phonetic), lowercased: a query
-- matches the whole value or any one group.
alter table patient
    add column name_lower text generated always as (lower(name)) stored,
    add column name_fold text generated always as (qido_fold(name)) stored,
    add column name_groups text[] generated always as (string_to_array(lower(name), '=')) stored;

create index patient_patient_id_idx on patient (patient_id text_pattern_ops);
create index patient_name_lower_idx on patient (name_lower text_pattern_ops);
create index patient_name_fold_idx on patient (name_fold text_pattern_ops);

create index study_patient_ref_idx on study (patient_ref);
create index study_date_order_idx on study (study_date desc nulls last, study_time desc nulls last, id desc);
create index study_accession_idx on study (accession_number text_pattern_ops);
create index study_modalities_idx on study using gin (modalities);
create index series_modality_idx on series (modality);
create index reading_case_study_idx on reading_case (study_id);
create index reading_case_escalation_idx on reading_case (escalation_facility_id)
    where escalation_facility_id is not null;

-- Names searched with a leading wildcard ('*wang*', as viewers send) need trigram indexes.
-- pg_trgm ships with PostgreSQL's contrib and is a trusted extension; where it is missing the
-- search still works, by scanning.
do $$
begin
    create extension if not exists pg_trgm;
    execute 'create index patient_name_lower_trgm_idx on patient using gin (name_lower gin_trgm_ops)';
    execute 'create index patient_name_fold_trgm_idx on patient using gin (name_fold gin_trgm_ops)';
    execute 'create index patient_id_trgm_idx on patient using gin (patient_id gin_trgm_ops)';
exception when others then
    raise notice 'pg_trgm is not available (%): name searches with a leading wildcard scan', sqlerrm;
end
$$;

-- A reader sees the studies routed to their pool, and that patient's other studies (priors):
-- every study of a patient (issuer facility + patient ID) who has a case the reader may see.
-- Clinic and administrator scopes are unchanged from 0003.
create or replace function study_visible_to(p_user bigint, p_study bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then s.facility_id = u.facility_id
            when 'admin' then s.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then exists (
                select 1 from study s2 join reading_case c on c.study_id = s2.id
                where s2.patient_ref = s.patient_ref and case_visible_to(p_user, c.id))
            else false
        end
        from app_user u, study s
        where u.id = p_user and s.id = p_study and u.active
    ), false)
$$;
