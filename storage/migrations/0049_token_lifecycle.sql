-- Every token has an id (to be listed and revoked by), says what made it, and expires.
-- Tokens made before this had no expiry when the CLI or the demo made them: they get 30 days
-- from now, so nothing stops working at the moment of the upgrade.

alter table api_token add column id bigint generated always as identity;
alter table api_token add constraint api_token_id_key unique (id);
alter table api_token add column kind text not null default 'cli'
    check (kind in ('cli', 'signin', 'session', 'demo'));
update api_token set kind = 'signin' where expires_at is not null;
update api_token set expires_at = now() + interval '30 days' where expires_at is null;
alter table api_token alter column expires_at set not null;
alter table api_token alter column kind drop default;

create index api_token_user_idx on api_token (user_id, created_at) where revoked_at is null;
