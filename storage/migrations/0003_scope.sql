-- Who may see what: one place for the scope rules every read of patient data goes through.

create function facility_subtree(root bigint) returns setof bigint
language sql stable as $$
    with recursive t(id) as (
        select root
        union all
        select f.id from facility f join t on f.parent_id = t.id
    )
    select id from t
$$;

-- A clinic sees its own facility's cases; an administrator their network (their facility and
-- everything below it); a reader the cases routed to their pool in one of their specialties.
create function case_visible_to(p_user bigint, p_case bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then c.facility_id = u.facility_id
            when 'admin' then c.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then c.specialty = any(u.specialties)
                and c.pool_facility_id = u.facility_id
            else false
        end
        from app_user u, reading_case c
        where u.id = p_user and c.id = p_case and u.active
    ), false)
$$;

create function study_visible_to(p_user bigint, p_study bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then s.facility_id = u.facility_id
            when 'admin' then s.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then exists (
                select 1 from reading_case c
                where c.study_id = s.id and case_visible_to(p_user, c.id))
            else false
        end
        from app_user u, study s
        where u.id = p_user and s.id = p_study and u.active
    ), false)
$$;
