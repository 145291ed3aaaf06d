"""Everything durable: PostgreSQL (pool, migrations, queries) and the object store.

Nothing else in the project opens a database connection or an object store.
"""
