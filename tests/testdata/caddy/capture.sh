#!/bin/sh
# Captures the profiles in this folder from Debian's caddy (2.6) serving a file server on
# loopback under load (repeatable: sh capture.sh). Caddy's admin endpoint serves /debug/pprof.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'kill $pid $load 2>/dev/null || true; rm -rf "$tmp"' EXIT
head -c 200000 /dev/urandom > "$tmp/blob"
for i in $(seq 1 50); do echo "page $i" > "$tmp/p$i.html"; done
cat > "$tmp/Caddyfile" <<CF
{
	admin 127.0.0.1:20190
}
http://127.0.0.1:20180 {
	root * $tmp
	encode gzip
	file_server browse
}
CF
XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp caddy run --config "$tmp/Caddyfile" --adapter caddyfile >/dev/null 2>&1 &
pid=$!
sleep 2
# load: two clients fetching pages, listings and the compressed blob
( while :; do for i in $(seq 1 50); do curl -s -H 'Accept-Encoding: gzip' http://127.0.0.1:20180/p$i.html http://127.0.0.1:20180/ http://127.0.0.1:20180/blob >/dev/null; done; done ) &
load=$!
sleep 2
a=http://127.0.0.1:20190/debug/pprof
for i in 1 2 3 4 5 6; do curl -s -o "$out/cpu-$i.pb.gz" "$a/profile?seconds=10"; done
for t in heap allocs goroutine block mutex threadcreate; do curl -s -o "$out/$t.pb.gz" "$a/$t"; done
