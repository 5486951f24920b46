#!/bin/sh
# The release step: run once for each new version, after its code is in place and before it serves (the app and the
# workers may keep running the old version meanwhile; migrations only add what the old code does not mind).
#   1. compile the translations (app/translations/*/LC_MESSAGES/messages.mo), each written beside and renamed;
#   2. migrate the database (`flask --app wsgi db upgrade`), as the role that owns the schema.
# Then: `systemctl reload sangplats-app` (new workers, no dropped request) and `systemctl restart sangplats-worker`.
# It reads the same environment as the app (/etc/sangplats/sangplats.env, or .env in a container: see .env.example).
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/flask ]; then BIN=.venv/bin/; else BIN=; fi

for po in app/translations/*/LC_MESSAGES/messages.po; do
    locale=$(basename "$(dirname "$(dirname "$po")")")
    mo="${po%.po}.mo"
    "${BIN}pybabel" -q compile -f -l "$locale" -i "$po" -o "$mo.tmp"
    mv -f "$mo.tmp" "$mo"
done
echo "release: translations compiled"

"${BIN}flask" --app wsgi db upgrade
echo "release: database at $("${BIN}flask" --app wsgi db current 2>/dev/null | tail -n 1)"
