-- What a user sees of a report: the scope of its case, and for a clinic only the final
-- reports delivered to it (a preliminary report, or a final one still being delivered, is
-- the readers' until it reaches the clinic).
create or replace function report_visible_to(p_user bigint, p_report bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then r.status = 'final' and r.delivered_at is not null
            else true
        end and case_visible_to(p_user, r.case_id)
        from app_user u, report r
        where u.id = p_user and r.id = p_report and u.active
    ), false)
$$;
