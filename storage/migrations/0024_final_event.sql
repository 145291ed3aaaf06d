-- A final report's event is called what the workflow calls it: 'final' (as 'preliminary',
-- 'escalated', 'addendum'), so the event log names every step of the issue's list.
update event set kind = 'final' where kind = 'reported';
