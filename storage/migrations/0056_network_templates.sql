-- Report templates per network: the shipped templates stay shared (network_id null) and
-- unchanged; a network's administrator edits its own copy, which its readers see instead.
alter table report_template add column network_id bigint references facility (id) on delete cascade;

drop index report_template_uniq;
create unique index report_template_uniq
    on report_template (coalesce(network_id, 0), specialty, coalesce(modality, ''), name, language);

-- The top of a facility's network (the facility with no parent above it).
create or replace function network_root(p_facility bigint) returns bigint
language sql stable as $$
    with recursive up(id, parent_id) as (
        select id, parent_id from facility where id = p_facility
        union all
        select f.id, f.parent_id from facility f join up on f.id = up.parent_id
    )
    select id from up where parent_id is null
$$;
