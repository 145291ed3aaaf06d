-- Whether a user's password hash was checked against the public demo password. Users
-- imported before 0050 were not: the first start outside the demo checks them once (an
-- argon2 check each) and marks them.

alter table app_user add column demo_checked boolean not null default false;
update app_user set demo_checked = true where password_hash is null or demo_password;
