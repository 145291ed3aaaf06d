-- The first time of each step a case's turnaround segments run between, kept on its
-- case_turnaround row beside received, final and acknowledged, so the segments of a period
-- are read from one row a case instead of every event of every case. As before, a study's
-- own events (those of no case: 'complete') count for each case of the study.

alter table case_turnaround
    add column complete_at    timestamptz,
    add column routed_at      timestamptz,
    add column claimed_at     timestamptz,
    add column escalated_at   timestamptz,
    add column preliminary_at timestamptz,
    add column delivered_at   timestamptz;
create index case_turnaround_study_idx on case_turnaround (study_id);

-- The step times of events (their ids): a case's own events set its row, a study's events
-- of no case set the rows of each case of the study; the earliest time of a kind is kept.
create function case_turnaround_steps(p_events bigint[]) returns void
language sql as $$
    update case_turnaround t set
        complete_at = least(t.complete_at, a.complete_at),
        routed_at = least(t.routed_at, a.routed_at),
        claimed_at = least(t.claimed_at, a.claimed_at),
        escalated_at = least(t.escalated_at, a.escalated_at),
        preliminary_at = least(t.preliminary_at, a.preliminary_at),
        delivered_at = least(t.delivered_at, a.delivered_at)
    from (
        select x.case_id,
               min(x.at) filter (where x.kind = 'complete') as complete_at,
               min(x.at) filter (where x.kind = 'routed') as routed_at,
               min(x.at) filter (where x.kind = 'claimed') as claimed_at,
               min(x.at) filter (where x.kind = 'escalated') as escalated_at,
               min(x.at) filter (where x.kind = 'preliminary') as preliminary_at,
               min(x.at) filter (where x.kind = 'delivered') as delivered_at
        from (
            select e.case_id, e.kind, e.at
            from event e join unnest(p_events) as i(id) on i.id = e.id
            where e.case_id is not null
            union all
            select c.case_id, e.kind, e.at
            from event e join unnest(p_events) as i(id) on i.id = e.id
            join case_turnaround c on c.study_id = e.study_id
            where e.case_id is null
        ) x
        group by x.case_id
    ) a
    where t.case_id = a.case_id
$$;

-- New cases take the step times their study's events already hold (a case is made after
-- its study is complete).
create function case_turnaround_study_steps(p_cases bigint[]) returns void
language sql as $$
    select case_turnaround_steps(array(
        select e.id from event e
        join case_turnaround c on c.study_id = e.study_id
        join unnest(p_cases) as x(id) on x.id = c.case_id
        where e.case_id is null
          and e.kind in ('complete', 'routed', 'claimed', 'escalated', 'preliminary',
                         'delivered')))
$$;

create or replace function case_turnaround_cases_added() returns trigger
language plpgsql as $$
begin
    perform case_turnaround_add(array(select id from added));
    perform case_turnaround_study_steps(array(select id from added));
    return null;
end
$$;

create or replace function case_turnaround_events_added() returns trigger
language plpgsql as $$
declare
    v_steps bigint[];
begin
    perform case_turnaround_apply(array(
        select id from added
        where case_id is not null
          and kind in ('final', 'acknowledged', 'returned', 'priority', 'escalated')));
    v_steps := array(
        select id from added
        where kind in ('complete', 'routed', 'claimed', 'escalated', 'preliminary',
                       'delivered'));
    -- most inserts are an ingest statement's 'received' events: nothing to do for them
    if cardinality(v_steps) > 0 then
        perform case_turnaround_steps(v_steps);
    end if;
    return null;
end
$$;

select case_turnaround_steps(array(
    select id from event
    where kind in ('complete', 'routed', 'claimed', 'escalated', 'preliminary', 'delivered')));

-- The first time of a step (an event kind) of a case's row; null for a step it has no
-- time of. Inlined by the planner.
create function case_turnaround_step(t case_turnaround, p_kind text) returns timestamptz
language sql immutable as $$
    select case p_kind
        when 'received' then t.received_at
        when 'complete' then t.complete_at
        when 'routed' then t.routed_at
        when 'claimed' then t.claimed_at
        when 'escalated' then t.escalated_at
        when 'preliminary' then t.preliminary_at
        when 'final' then t.final_at
        when 'delivered' then t.delivered_at
        when 'acknowledged' then t.acknowledged_at
    end
$$;
