#!/usr/bin/env bash
# The deployment for real, end to end, on loopback: a Prefect server, the work pool, `prefect deploy
# --all` from prefect.yaml, the server's own scheduler creating the nightly runs at 02:00
# Asia/Taipei, one of those runs brought forward and executed by a worker to Completed, a run
# started by hand, and every Prefect command docs/operations.md tells an operator to type, each
# checked to exit 0. Slow (a few minutes); run by .ci/run. Usage: scripts/smoke-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/.venv/bin}
mkdir -p var
WORK=$(mktemp -d "$ROOT/var/smoke-XXXXXX")
export PREFECT_HOME=$WORK/prefect
PORT=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PREFECT_API_URL=http://127.0.0.1:$PORT/api
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_CLI_PROMPT=false
export COLUMNS=200                        # wide enough that tables are not cut short
# The API protected as docs/operations.md says: the server asks for it, every client sends it.
export PREFECT_SERVER_API_AUTH_STRING="smoke:$("$BIN/python" -c 'import secrets; print(secrets.token_hex(16))')"
export PREFECT_API_AUTH_STRING=$PREFECT_SERVER_API_AUTH_STRING
# The worker's settings, as an operator's service file sets them: its own warehouse, inbox and
# outbox (a smoke test mails nobody).
export LEARNHOURS_DATABASE_URL=sqlite:///$WORK/warehouse.db
export LEARNHOURS_INBOX=$WORK/inbox
export LEARNHOURS_OUTBOX=$WORK/outbox
export LEARNHOURS_MAIL_BACKEND=file
unset LEARNHOURS_SMTP_URL LEARNHOURS_CONFIG
POOL=learnhours                          # the pool named in prefect.yaml
DEPLOYMENT=learnhours-nightly/nightly
SERVER=""
CHECK=("$BIN/python" scripts/smoke_deploy.py)

cleanup() {
  status=$?
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ "$status" -eq 0 ]; then rm -rf "$WORK"; else echo "smoke-deploy: FAILED; logs kept in $WORK" >&2; fi
}
trap cleanup EXIT

# Each documented command: shown, run, and its exit code checked (set -e stops at the first failure).
run() {
  echo "\$ $*"
  "$@" >"$WORK/last.log" 2>&1 || { cat "$WORK/last.log" >&2; echo "smoke-deploy: '$*' exited $?" >&2; exit 1; }
  echo "  (exit 0)"
}

echo "== Prefect server on $PREFECT_API_URL (PREFECT_HOME=$PREFECT_HOME)"
"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do
  if "${CHECK[@]}" healthy "$PREFECT_API_URL" 2>/dev/null; then break; fi
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 1
done
"${CHECK[@]}" refuses-strangers "$PREFECT_API_URL"

echo "== work pool and deployment (docs/operations.md, Option A)"
run "$BIN/prefect" work-pool create "$POOL" --type process
run "$BIN/prefect" work-pool ls
run "$BIN/prefect" --no-prompt deploy --all
grep -o "Deployment '$DEPLOYMENT' successfully created" "$WORK/last.log"
run "$BIN/prefect" deployment ls
run "$BIN/prefect" deployment inspect "$DEPLOYMENT"

echo "== the server's own scheduler"
"${CHECK[@]}" scheduled "$DEPLOYMENT"

echo "== a scheduled run, brought forward to now, executed by a worker"
"${CHECK[@]}" inbox "$LEARNHOURS_INBOX"
SCHEDULED=$("${CHECK[@]}" bring-forward "$DEPLOYMENT")
run timeout 600 "$BIN/prefect" worker start --pool "$POOL" --run-once
"${CHECK[@]}" completed "$SCHEDULED"
test -n "$(ls "$LEARNHOURS_OUTBOX"/*.eml 2>/dev/null)" || { echo "no mail written to the outbox" >&2; exit 1; }

echo "== a run started by hand (docs: to try the deployment at once)"
run "$BIN/prefect" deployment run "$DEPLOYMENT"
BY_HAND=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$WORK/last.log" | head -n 1)
run timeout 600 "$BIN/prefect" worker start --pool "$POOL" --run-once
"${CHECK[@]}" completed "$BY_HAND"

echo "== what an operator looks at afterwards"
run "$BIN/prefect" flow-run ls
run "$BIN/prefect" flow-run logs "$SCHEDULED"
grep -q "learnhours" "$WORK/last.log" || { echo "the run's logs hold no learnhours line" >&2; exit 1; }
run "$BIN/prefect" artifact ls
grep -q "nightly-summary" "$WORK/last.log" || { echo "no nightly-summary artifact" >&2; exit 1; }
run "$BIN/prefect" automation ls          # the automations of deploy/prefect_automations.py (docs)
run "$BIN/learnhours" runs --last 5
echo "smoke-deploy: OK (the server scheduled 02:00 runs, a scheduled run Completed, every documented command exited 0)"
