#!/bin/sh
# The S3 gateway with one identity, the service's, from the environment (never a file in
# the repository). The image's shell is busybox sh.
set -eu
: "${TELEMED_S3_ACCESS_KEY:?set TELEMED_S3_ACCESS_KEY in deploy/.env}"
: "${TELEMED_S3_SECRET_KEY:?set TELEMED_S3_SECRET_KEY in deploy/.env}"
umask 077
printf '{"identities": [{"name": "telemed", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Read", "Write", "List", "Tagging", "Admin"]}]}\n' \
  "$TELEMED_S3_ACCESS_KEY" "$TELEMED_S3_SECRET_KEY" > /tmp/s3.json
exec weed s3 -filer=seaweed-filer:8888 -port=8333 -config=/tmp/s3.json
