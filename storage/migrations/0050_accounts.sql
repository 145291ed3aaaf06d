-- Accounts with a lifecycle: one-time links that set a password (a first sign-in, an
-- administrator's reset), a mark on users whose password is the public demo one, and when an
-- administrator last released an account from the sign-in throttle.

alter table app_user add column demo_password boolean not null default false;
alter table app_user add column signin_unlocked_at timestamptz;

-- Stored, like tokens, as the SHA-256 of the link's secret, never the secret itself.
create table password_link (
    link_sha256  bytea primary key,
    user_id      bigint not null references app_user (id) on delete cascade,
    created_by   bigint references app_user (id),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    used_at      timestamptz
);
create index password_link_user_idx on password_link (user_id) where used_at is null;
