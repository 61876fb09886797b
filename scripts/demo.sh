#!/usr/bin/env bash
# The product's main job on the embedded default: a Temporal dev server
# (SQLite under .data/), migrations, a worker, the sample events, a status table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA="$PWD/.data"
mkdir -p "$DATA"
# DATABASE_URL: unset means the embedded default, ./collections.db (SPEC §6),
# which every `collections` (= `python starter.py`) command then finds without
# further settings; `collections settings` shows what a command would use.
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-localhost:7233}"
UI_PORT="${UI_PORT:-8233}"

# With COLLECTIONS_PAYLOAD_KEYS set, every payload is encrypted (support/codec.py)
# and the Web UI reads cases through the codec server started here, which
# answers only requests carrying its token (kept in .data/codec.token).
CODEC_PORT="${CODEC_PORT:-8081}"
CODEC_ARGS=()
if [ -n "${COLLECTIONS_PAYLOAD_KEYS:-}" ]; then
  if [ -z "${COLLECTIONS_CODEC_TOKEN:-}" ]; then
    [ -s "$DATA/codec.token" ] || "$PY" -c "import secrets; print(secrets.token_urlsafe(24))" > "$DATA/codec.token"
    COLLECTIONS_CODEC_TOKEN="$(cat "$DATA/codec.token")"
  fi
  export COLLECTIONS_CODEC_TOKEN
  CODEC_ARGS=(--ui-codec-endpoint "http://localhost:$CODEC_PORT/$COLLECTIONS_CODEC_TOKEN")
fi

port_open() { "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; }

if port_open 7233; then
  echo "Temporal is already listening on 7233: using it."
else
  echo "Starting the Temporal dev server (Web UI on port $UI_PORT, history in .data/temporal.db)..."
  nohup .venv/bin/temporal server start-dev \
    --db-filename "$DATA/temporal.db" \
    --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=NORMAL \
    --ui-port "$UI_PORT" --log-level warn ${CODEC_ARGS[@]+"${CODEC_ARGS[@]}"} \
    > "$DATA/temporal.log" 2>&1 &
  echo $! > "$DATA/temporal.pid"
  for _ in $(seq 1 120); do
    if .venv/bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  .venv/bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null \
    || { echo "Temporal did not start; see $DATA/temporal.log" >&2; exit 1; }
fi

# The cases' search attributes, from their one definition (workflows/search.py);
# already registered ones are left as they are.
"$PY" starter.py search-attributes

if [ -n "${COLLECTIONS_PAYLOAD_KEYS:-}" ]; then
  if [ -f "$DATA/codec.pid" ] && kill -0 "$(cat "$DATA/codec.pid")" 2>/dev/null; then
    echo "The codec server is already running (pid $(cat "$DATA/codec.pid"))."
  else
    echo "Payloads are encrypted: starting the codec server for the Web UI on port $CODEC_PORT..."
    nohup "$PY" starter.py codec-server --port "$CODEC_PORT" \
      --allow-origin "http://localhost:$UI_PORT" --allow-origin "http://127.0.0.1:$UI_PORT" \
      >> "$DATA/codec.log" 2>&1 &
    echo $! > "$DATA/codec.pid"
  fi
fi

echo "Applying database migrations (${DATABASE_URL:-./collections.db})..."
"$PY" starter.py migrate

# People in the loop (SPEC §8): the desk works the cases of one team, "general"
# (the accounts that name no team): their day-3 human calls and empty skip
# traces become work items (the intake writes this choice into each new case).
# Every other team stays simulated. COLLECTIONS_CALL_CENTRE=simulated turns it off.
export COLLECTIONS_CALL_CENTRE="${COLLECTIONS_CALL_CENTRE:-desk}"
export COLLECTIONS_DESK_TEAMS="${COLLECTIONS_DESK_TEAMS:-general}"
for who in "agent-g --role agent --team general" "ivy --role compliance" "sup --role supervisor"; do
  # a web desk password for the demo (collections desk): desk-demo-pass
  # shellcheck disable=SC2086
  printf 'desk-demo-pass\n' | "$PY" starter.py operators add $who --password-stdin >/dev/null 2>&1 || true  # already there on a second run
done

if [ -f "$DATA/worker.pid" ] && kill -0 "$(cat "$DATA/worker.pid")" 2>/dev/null; then
  echo "A worker is already running (pid $(cat "$DATA/worker.pid"))."
else
  echo "Starting a worker (logs: .data/worker.log)..."
  nohup "$PY" worker.py >> "$DATA/worker.log" 2>&1 &
  echo $! > "$DATA/worker.pid"
fi

echo "Ingesting samples/events.jsonl..."
"$PY" starter.py ingest samples/events.jsonl --rejects "$DATA/sample.rejects.jsonl" || true
sleep 4
"$PY" starter.py cases

cat <<TXT

Where to look:
  Web UI, all cases:   http://localhost:$UI_PORT/namespaces/default/workflows
  one case:            http://localhost:$UI_PORT/namespaces/default/workflows/case-ACC-1001
  open grade III cases: query  CaseStage != "closed" AND DebtorGrade = "III"
  cases at court:      query  CaseStage IN ("payment_order", "asset_preservation")
  one case, readable:  .venv/bin/collections show ACC-1001
  one case as JSON:    .venv/bin/collections status ACC-1001
  filtered cases:      .venv/bin/collections cases --paused any   (--stage, --grade, --region)
  the settings:        .venv/bin/collections settings
  operator commands:   .venv/bin/collections --help   (the same as: .venv/bin/python starter.py --help)
  the work desk:       .venv/bin/collections tasks list --operator ivy   (skip trace reviews now;
                       --operator agent-g: team general's day-3 calls; docs/desk.md)
  the web desk:        .venv/bin/collections desk --port 8080, then http://127.0.0.1:8080/
                       (sign in as agent-g, ivy or sup, password desk-demo-pass)
  the contact log:     collections.db, table contact_attempts (sqlite3 collections.db)
Stop the server and worker with: make stop
TXT
