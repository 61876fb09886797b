#!/usr/bin/env bash
# Stop the demo's worker, codec server and Temporal dev server (their data stays in .data/).
cd "$(dirname "$0")/.."
for name in worker codec temporal; do
  pidfile=".data/$name.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null && echo "stopped $name"
    rm -f "$pidfile"
  fi
done
