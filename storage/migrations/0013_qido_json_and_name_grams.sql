-- QIDO-RS at county scale: study answers built as DICOM JSON text in PostgreSQL, and an index
-- for names searched by a short part ('*秀英*', as viewers send a given name).
--
-- Numbered before 0020 but written to run after it too (a database migrated past 0040 applies
-- it last): it uses only what 0001-0012 created.

-- DICOM JSON elements (PS3.18 F.2) as text. Plain SQL expressions without FROM, so the planner
-- inlines them into the query: no per-row function call. Stable, not immutable, because
-- to_json is: an immutable function with a stable body is not inlined. A null or empty value
-- is present without a Value, as the service answers an attribute it holds no value for.
create function qido_json_text(vr text, v text) returns text
language sql stable parallel safe as $$
    select '{"vr":"' || vr || '"'
        || case when v is null or v = '' then '' else ',"Value":[' || to_json(v)::text || ']' end
        || '}'
$$;

create function qido_json_int(vr text, v bigint) returns text
language sql stable parallel safe as $$
    select '{"vr":"' || vr || '"'
        || case when v is null then '' else ',"Value":[' || v::text || ']' end
        || '}'
$$;

create function qido_json_texts(vr text, v text[]) returns text
language sql stable parallel safe as $$
    select '{"vr":"' || vr || '"'
        || case when coalesce(cardinality(v), 0) = 0 then '' else ',"Value":' || to_json(v)::text end
        || '}'
$$;

-- A person name: its component groups (alphabetic=ideographic=phonetic) as named members,
-- empty groups left out, no Value when every group is empty.
create function qido_json_pn(v text) returns text
language sql stable parallel safe as $$
    select '{"vr":"PN"'
        || coalesce(',"Value":[{' || nullif(concat_ws(',',
               '"Alphabetic":' || to_json(nullif(split_part(v, '=', 1), ''))::text,
               '"Ideographic":' || to_json(nullif(split_part(v, '=', 2), ''))::text,
               '"Phonetic":' || to_json(nullif(split_part(v, '=', 3), ''))::text), '') || '}]', '')
        || '}'
$$;

-- Every one- and two-character piece of a text. A name containing a pattern's literal part
-- contains each of that part's pieces, so "grams @> pieces" is an indexable prefilter for
-- contains matching, and for a part of one or two characters ('*秀英*', a given name) it is the
-- exact test. pg_trgm needs three characters, so such patterns give it nothing to look up (nor
-- does a C-locale database see CJK text as letters at all).
create function qido_grams(t text) returns text[]
language sql immutable parallel safe as $$
    select coalesce(array_agg(distinct g), '{}')
    from (select substr(t, i, 1) from generate_series(1, length(t)) i
          union all
          select substr(t, i, 2) from generate_series(1, length(t) - 1) i) s(g)
$$;

-- Pieces of the lowercased name (plain matching, name_lower) and of the folded one (fuzzy
-- matching, name_fold); generated columns cannot read each other, hence the repeated forms.
alter table patient
    add column name_lower_grams text[] generated always as (qido_grams(lower(name))) stored,
    add column name_fold_grams text[] generated always as (qido_grams(qido_fold(name))) stored;
create index patient_name_lower_grams_idx on patient using gin (name_lower_grams);
create index patient_name_fold_grams_idx on patient using gin (name_fold_grams);
