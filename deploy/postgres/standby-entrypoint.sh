#!/bin/bash
# The streaming standby: on first start its data directory is a pg_basebackup of the
# primary (-R writes standby.signal and primary_conninfo); then the image's entrypoint
# starts PostgreSQL on it. cluster_name (pg_standby) is the name the primary's
# synchronous_standby_names waits for.
set -euo pipefail
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD in deploy/.env}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until gosu postgres pg_basebackup --host=pg-primary --username=replicator \
        --pgdata="$PGDATA" --wal-method=stream --write-recovery-conf --checkpoint=fast \
        --progress; do
    echo "pg_basebackup failed; the primary may still be starting, retrying in 5 s" >&2
    rm -rf "${PGDATA:?}"/*
    sleep 5
  done
fi
exec docker-entrypoint.sh postgres -c cluster_name=pg_standby -c hot_standby=on "$@"
