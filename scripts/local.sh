#!/usr/bin/env bash
# `make local`: the demo Go service and the collector scraping it (and itself), UI and API on
# http://localhost:8989. Ctrl-C stops both. LOCAL_DATA_DIR, LOCAL_WEB_PORT override defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${LOCAL_DATA_DIR:-/tmp/collector}"
port="${LOCAL_WEB_PORT:-8989}"

bin/demo-target -addr 127.0.0.1:6060 &
demo=$!
bin/collector -c examples/local/config.yaml -d "$data" -p "$port" &
coll=$!
stop() {
  trap - INT TERM EXIT
  kill -TERM "$coll" "$demo" 2>/dev/null || true
  wait "$coll" "$demo" 2>/dev/null || true
}
trap stop INT TERM EXIT
echo "local: demo target on http://127.0.0.1:6060/debug/pprof/, collector on http://localhost:$port (data in $data); Ctrl-C stops both" >&2
# whichever ends first ends the session
wait -n "$coll" "$demo" || true
