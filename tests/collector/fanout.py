"""One merge over every shard (issue 15 §3, the collector's part): two bin/collector processes
share one config with `sharding: {shards: 2}` (--shard 0 and 1) and name each other with --peer.
Twelve HTTP peers answer heap profiles, each with a function of its own (main.work_K) and a
value of its own, so a merge that leaves a shard out, or counts one twice, shows in the
function list and the sums. What is checked:
  - each shard alone (local=1) holds only its share, so the checks below can fail;
  - /api/v1/profile from either shard equals `go tool pprof`'s merge of every raw record both
    shards stored in the window (each downloaded by id=), function by function, for agg=sum;
    and for the default (avg) each function is its target's own value: a series averaged on
    the shard that holds it, the series summed across shards;
  - /api/v1/render's total is that merge's, its `profiles` counts both shards' records, and
    `partial` is false;
  - a shard that is down: the answer is partial and says so (X-Pprof-Partial, "partial":true,
    which peer), its total is the live shard's alone, never passed off as the whole;
  - a peer that accepts but never answers: partial after --peer-timeout, not after the query's
    deadline;
  - --peer and --peer-timeout refuse bad values (exit 2, one clear line); local= too.

Part (tests/run.py collector:fanout): fanout."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse

from harness import check, fnv_shard, go_pprof, go_top_args, make_profile, parse_go_top, wait_for
from peers import Collector, PeerServer, QuietHandler, http_req

N_TARGETS = 12
INTERVAL = 1.0


def value_of(i):
    return (i + 1) * 1000


class Targets:
    def __init__(self):
        self.servers = []
        for i in range(N_TARGETS):
            body = make_profile([("inuse_space", "bytes")], [([value_of(i)], [f"main.work_{i}", "main.main"], None)],
                                period_type=("space", "bytes"), period=524288)

            class H(QuietHandler):
                def do_GET(self, body=body):
                    self.send_body(200, body)
            self.servers.append(PeerServer(H))

    def address(self, i):
        return f"127.0.0.1:{self.servers[i].port}"

    def stop(self):
        for s in self.servers:
            s.stop()


def config(targets, peers=()):
    lines = ["sharding: {shards: 2}", "monitors:"]
    if peers:
        lines[:0] = ["query:", "  peers:"] + [f"  - '{p}'" for p in peers]
    for i in range(N_TARGETS):
        lines.append(f"- {{name: t{i}, endpoint: 'http://{targets.address(i)}', labels: {{svc: shop}}, "
                     f"sampling: {{heap: {{interval_seconds: {INTERVAL}}}}}}}")
    return "\n".join(lines) + "\n"


def go_flat(path):
    g = go_pprof(go_top_args(0, "bytes") + [path])
    if g.returncode:
        raise RuntimeError(f"go tool pprof {path}: {g.stderr[-1000:]}")
    return {k: v[0] for k, v in parse_go_top(g.stdout).items() if v[0]}


def fetch(c, path, out_dir, name):
    st, body, hdrs = http_req("GET", c.url + path)
    f = os.path.join(out_dir, name)
    with open(f, "wb") as fh:
        fh.write(body)
    return st, f, hdrs


def header(hdrs, k):
    return next((v for kk, v in (hdrs or {}).items() if kk.lower() == k.lower()), None)


class Silent:
    """A TCP port that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def fanout(t):
    targets = Targets()
    cs = []
    work = tempfile.mkdtemp(prefix="fanout-")
    silent = Silent()
    try:
        c1 = Collector(config(targets), extra_args=["--shard", "1"], name="fan1")
        cs.append(c1)
        # a collector without peers yet: any peer= is one it does not list
        st_n, body_n, _ = http_req("GET", c1.url + "/api/v1/profile?id=1&peer=" + urllib.parse.quote("http://127.0.0.1:1"))
        c0 = Collector(config(targets), extra_args=["--shard", "0", "--peer", c1.url], name="fan0")
        cs.insert(0, c0)
        # shard 1 learns its peer from the config (query.peers), by a reload; a bad one is refused
        c1.write_config(config(targets, ["http://"]))
        st_bad, body_bad, _ = http_req("POST", c1.url + "/reload")
        c1.write_config(config(targets, [c0.url + "/"]))
        st_reload, body_reload, _ = http_req("POST", c1.url + "/reload")
        check(t, "collector fanout: query.peers comes with a reload; a peer URL without a host is refused there; "
                 "before it, peer= is a 400",
              lambda: (st_bad == 400 and b"query.peers[0]" in body_bad and b"names no host" in body_bad and st_reload == 200
                       and st_n == 400 and b"peer" in body_n,
                       f"bad: {st_bad} {body_bad[:300]}; good: {st_reload} {body_reload[:200]}; peer= without peers: "
                       f"{st_n} {body_n[:200]}"))
        owner = {f"main.work_{i}": fnv_shard(targets.address(i), 2) for i in range(N_TARGETS)}
        per = [sum(1 for s in owner.values() if s == k) for k in (0, 1)]

        def stored_everywhere():
            got = [{r["labels"].get("monitor") for r in c.get_json("/api/v1/profiles?type=heap&local=1")[1]["data"]}
                   for c in cs]
            return got if all(len(g) == n for g, n in zip(got, per)) else None
        wait_for(stored_everywhere, timeout=20)
        time.sleep(2 * INTERVAL)
        lo, hi = int(time.time() - 60), int(time.time())
        q = f"type=heap&svc=shop&from={lo}&to={hi}"

        def shares():
            got = []
            for k, c in enumerate(cs):
                st, f, _ = fetch(c, f"/api/v1/profile?{q}&local=1", work, f"local{k}.pb.gz")
                got.append(set(go_flat(f)) - {"main.main"} if st == 200 else st)
            want = [{fn for fn, s in owner.items() if s == k} for k in (0, 1)]
            return got == want and min(per) > 0, f"got {got}\nwant {want}"
        check(t, "collector fanout: with local=1 each shard answers from its own share only", shares)

        def oracle():
            """go tool pprof's merge of every raw record of the window, from both shards"""
            files = []
            for k, c in enumerate(cs):
                rows = c.get_json(f"/api/v1/profiles?{q}&local=1&limit=20000")[1]["data"]
                for r in rows:
                    st, f, _ = fetch(c, f"/api/v1/profile?id={r['id']}&local=1", work, f"raw{k}-{r['id']}.pb.gz")
                    if st != 200:
                        raise RuntimeError(f"record {r['id']} of shard {k}: {st}")
                    files.append(f)
            merged = os.path.join(work, "oracle.pb.gz")
            g = go_pprof(["-proto", "-output", merged] + files)
            if g.returncode:
                raise RuntimeError(g.stderr[-1000:])
            return go_flat(merged), len(files)

        want, nrec = oracle()

        def sum_equals_go():
            bad = []
            for k, c in enumerate(cs):
                st, f, hdrs = fetch(c, f"/api/v1/profile?{q}&agg=sum", work, f"fan{k}.pb.gz")
                got = go_flat(f) if st == 200 else {}
                if got != want:
                    bad.append(f"shard {k}: {st} {got}")
                if header(hdrs, "X-Pprof-Partial"):
                    bad.append(f"shard {k}: partial {header(hdrs, 'X-Pprof-Partial')}")
            return not bad and len(want) == N_TARGETS, f"{'; '.join(bad)}\nwant {want} ({nrec} records)"
        check(t, "collector fanout: agg=sum from either shard equals go tool pprof's merge of every raw record "
                 "of both shards", sum_equals_go)

        def avg_per_series():
            bad = []
            for k, c in enumerate(cs):
                st, f, _ = fetch(c, f"/api/v1/profile?{q}", work, f"avg{k}.pb.gz")
                got = go_flat(f) if st == 200 else {}
                exp = {f"main.work_{i}": value_of(i) for i in range(N_TARGETS)}
                if {k2: v for k2, v in got.items() if k2 != "main.main"} != exp:
                    bad.append(f"shard {k}: {st} {got}")
            return not bad, "; ".join(bad)
        check(t, "collector fanout: the default heap average is each target's own value, over both shards",
              avg_per_series)

        def render_total():
            st, body, hdrs = http_req("GET", c0.url + f"/api/v1/render?{q}&agg=sum")
            d = json.loads(body).get("data", {}) if st == 200 else {}
            total = sum(v for fn, v in want.items() if fn.startswith("main.work_"))
            ok = (d.get("total") == total and d.get("profiles") == nrec and d.get("partial") is False
                  and d.get("shards", {}).get("asked") == 1 and not header(hdrs, "X-Pprof-Partial"))
            return ok, f"status {st}; total {d.get('total')} want {total}; profiles {d.get('profiles')} want {nrec}; " \
                       f"partial {d.get('partial')} shards {d.get('shards')}"
        check(t, "collector fanout: /api/v1/render totals both shards, counts both shards' records, partial false",
              render_total)

        def listings():
            """timeline, series, profiles and targets from shard 0 hold both shards' entries, shard 1's
            marked with its peer URL, and nothing twice"""
            bad = []
            st, tl = c0.get_json(f"/api/v1/timeline?{q}")
            ents = tl.get("data", []) if st == 200 else []
            mons = sorted(e["labels"]["monitor"] for e in ents)
            if mons != sorted(f"t{i}" for i in range(N_TARGETS)) or tl.get("partial") is not False:
                bad.append(f"timeline {st}: {mons} partial {tl.get('partial') if st == 200 else tl}")
            for e in ents:
                k = owner[f"main.work_{e['labels']['monitor'][1:]}"]
                if e.get("peer") != (c1.url if k == 1 else None):
                    bad.append(f"timeline entry {e['labels']['monitor']} (shard {k}) peer {e.get('peer')}")
            st, se = c0.get_json("/api/v1/series?type=heap&svc=shop")
            smons = sorted(e["labels"]["monitor"] for e in se.get("data", [])) if st == 200 else st
            if smons != sorted(f"t{i}" for i in range(N_TARGETS)):
                bad.append(f"series {st}: {smons}")
            st, pr = c0.get_json(f"/api/v1/profiles?{q}&limit=20000")
            if st != 200 or len(pr.get("data", [])) != nrec or sum(1 for r in pr["data"] if r.get("peer") == c1.url) != \
                    len(c1.get_json(f"/api/v1/profiles?{q}&local=1&limit=20000")[1]["data"]):
                bad.append(f"profiles {st}: {len(pr.get('data', [])) if st == 200 else pr} of {nrec}")
            tg = c0.targets()
            tmons = sorted(x["monitor"] for x in tg)
            if tmons != sorted(f"t{i}" for i in range(N_TARGETS)) or \
                    {x["monitor"] for x in tg if x.get("peer") == c1.url} != {f"t{i}" for i in range(N_TARGETS)
                                                                           if owner[f"main.work_{i}"] == 1}:
                bad.append(f"targets: {tmons}")
            # pages are of one store: refused across shards, served with local=1
            st_p, body_p, _ = http_req("GET", c0.url + "/api/v1/series?type=heap&limit=5")
            st_l, _, _ = http_req("GET", c0.url + "/api/v1/series?type=heap&limit=5&local=1")
            if st_p != 400 or b"local=1" not in body_p or st_l != 200:
                bad.append(f"paged series: {st_p} {body_p[:200]}, with local=1 {st_l}")
            return not bad, "\n".join(bad)
        check(t, "collector fanout: timeline, series, profiles and targets list both shards' entries once each, "
                 "shard 1's marked with its peer; a paged series listing across shards is a 400", listings)

        def peer_record():
            """a record of shard 1, as shard 0's timeline lists it (its id and peer), asked of shard 0"""
            st, tl = c0.get_json(f"/api/v1/timeline?{q}")
            e = next((x for x in tl.get("data", []) if x.get("peer")), None) if st == 200 else None
            if not e:
                return False, f"no entry of shard 1: {st} {str(tl)[:300]}"
            rid = e["ids"][-1]
            st1, f1, _ = fetch(c1, f"/api/v1/profile?id={rid}&local=1", work, "rec-own.pb.gz")
            pq = urllib.parse.urlencode({"id": rid, "peer": e["peer"] + "/"})
            st0, f0, hdrs = fetch(c0, f"/api/v1/profile?{pq}", work, "rec-via.pb.gz")
            same = st0 == st1 == 200 and go_flat(f0) == go_flat(f1) and header(hdrs, "X-Pprof-Type") == "heap"
            st_r, body_r, _ = http_req("GET", c0.url + f"/api/v1/render?{pq}")
            d = json.loads(body_r).get("data", {}) if st_r == 200 else {}
            rendered = d.get("profileType") == "heap" and d.get("total") == e["points"][-1][2]
            # the local record with the same id is another profile: without peer= it is shard 0's
            st_l, fl, _ = fetch(c0, f"/api/v1/profile?id={rid}", work, "rec-local.pb.gz")
            other = st_l != 200 or go_flat(fl) != go_flat(f1)
            refused = []
            for qq in (urllib.parse.urlencode({"id": rid, "peer": "http://127.0.0.1:1"}),
                       urllib.parse.urlencode({"id": rid, "peer": "http://169.254.169.254"}),
                       urllib.parse.urlencode({"type": "heap", "peer": e["peer"]}),
                       urllib.parse.urlencode({"id": rid, "peer": e["peer"], "local": "1"})):
                st_b, body_b, _ = http_req("GET", c0.url + "/api/v1/profile?" + qq)
                refused.append(st_b == 400 and b"peer" in body_b)
            return (same and rendered and other and all(refused),
                    f"own {st1}, via shard 0 {st0} type {header(hdrs, 'X-Pprof-Type')}: same {same}; render {st_r} "
                    f"{d.get('profileType')} {d.get('total')} vs point {e['points'][-1]}; local id differs {other}; "
                    f"refused {refused}")
        check(t, "collector fanout: a record of shard 1 asked of shard 0 by id= and peer= is shard 1's own "
                 "(bytes as go tool pprof reads them, type, render total); a peer= not listed, or without id=, is a 400",
              peer_record)

        def self_and_twice_named():
            # shard 0's config names itself and shard 1, which its --peer names too: itself is
            # skipped (it answers 204 to its own id) and shard 1 asked once
            c0.write_config(config(targets, [c0.url, c1.url + "/"]))
            st_r, body_r, _ = http_req("POST", c0.url + "/reload")
            st, body, hdrs = http_req("GET", c0.url + f"/api/v1/render?{q}&agg=sum")
            d = json.loads(body).get("data", {}) if st == 200 else {}
            total = sum(v for fn, v in want.items() if fn.startswith("main.work_"))
            return (st_r == 200 and d.get("total") == total and d.get("profiles") == nrec and d.get("partial") is False
                    and d.get("shards", {}).get("asked") == 1,
                    f"reload {st_r} {body_r[:200]}; total {d.get('total')} want {total}; profiles {d.get('profiles')} "
                    f"want {nrec}; {d.get('shards')}")
        check(t, "collector fanout: a peer list naming the collector itself and a peer twice: itself skipped, the "
                 "peer asked once, the same total", self_and_twice_named)

        def query_only():
            # a collector that scrapes nothing and asks both shards answers the same merge
            q0 = Collector(config(targets, [c0.url, c1.url]), extra_args=["--query-only"], name="fan-query")
            cs.append(q0)
            st, f, hdrs = fetch(q0, f"/api/v1/profile?{q}&agg=sum", work, "query-only.pb.gz")
            got = go_flat(f) if st == 200 else {}
            st_r, body, _ = http_req("GET", q0.url + f"/api/v1/render?{q}&agg=sum")
            d = json.loads(body).get("data", {}) if st_r == 200 else {}
            time.sleep(2 * INTERVAL)
            own = q0.get_json("/api/v1/profiles?type=heap&local=1")[1]["data"]
            targets_listed = q0.get_json("/api/v1/targets?local=1")[1]["data"]
            all_targets = q0.targets()
            logged = "query only, 12 monitors left to the peers, 2 peers in the config" in q0.log_text()
            q0.stop()
            return (got == want and d.get("shards", {}).get("asked") == 2 and d.get("profiles") == nrec and not own
                    and not targets_listed and len(all_targets) == N_TARGETS and logged,
                    f"profile {st}: equal {got == want}; render {d.get('shards')} profiles {d.get('profiles')}/{nrec}; "
                    f"own records {len(own)}; own targets {len(targets_listed)}, the shards' {len(all_targets)}; "
                    f"logged {logged}")
        check(t, "collector fanout: --query-only scrapes nothing and answers the same merge from both shards", query_only)

        # shard 1 down: the answer says it is partial and holds shard 0's part only
        c1.stop()
        local0 = sum(value_of(i) for i in range(N_TARGETS) if owner[f"main.work_{i}"] == 0)

        def down_is_partial():
            st, body, hdrs = http_req("GET", c0.url + f"/api/v1/render?{q}&agg=sum")
            d = json.loads(body).get("data", {}) if st == 200 else {}
            per_rec = {}
            for r in c0.get_json(f"/api/v1/profiles?{q}&local=1&limit=20000")[1]["data"]:
                per_rec[r["labels"]["monitor"]] = per_rec.get(r["labels"]["monitor"], 0) + r["totals"][0]
            local_total = sum(per_rec.values())
            why = d.get("shards", {}).get("why", "")
            st2, _, hdrs2 = http_req("GET", c0.url + f"/api/v1/profile?{q}&agg=sum")
            ok = (d.get("partial") is True and d.get("total") == local_total and local_total > 0
                  and header(hdrs, "X-Pprof-Partial") == "1 of 1 shard answers missing" and c1.url in why
                  and st2 == 200 and header(hdrs2, "X-Pprof-Partial") == "1 of 1 shard answers missing")
            return ok, (f"status {st}: partial {d.get('partial')} total {d.get('total')} (shard 0 alone {local_total}, "
                        f"{local0} per round); header {header(hdrs, 'X-Pprof-Partial')}; why {why!r}; profile {st2} "
                        f"{header(hdrs2, 'X-Pprof-Partial')}")
        check(t, "collector fanout: a shard down makes the answer partial (field, header, which peer) with the "
                 "live shard's total only", down_is_partial)

        def listings_partial():
            st, tl = c0.get_json(f"/api/v1/timeline?{q}")
            mons = {e["labels"]["monitor"] for e in tl.get("data", [])} if st == 200 else st
            own = {f"t{i}" for i in range(N_TARGETS) if owner[f"main.work_{i}"] == 0}
            st_t, tg = c0.get_json("/api/v1/targets")
            e = (tl.get("shards") or {}) if st == 200 else {}
            st_r, body_r, _ = http_req("GET", c0.url + f"/api/v1/profile?id=1&peer={urllib.parse.quote(c1.url)}")
            return (mons == own and tl.get("partial") is True and e.get("missing") == 1 and c1.url in e.get("why", "")
                    and st_t == 200 and tg.get("partial") is True and st_r == 502,
                    f"timeline {st}: {mons} partial {tl.get('partial')} {e}; targets {st_t} partial "
                    f"{tg.get('partial') if st_t == 200 else tg}; a record of the down peer: {st_r} {body_r[:200]}")
        check(t, "collector fanout: a shard down: the timeline holds the live shard's series and says it is partial, "
                 "the targets too; a record asked of the down peer is a 502", listings_partial)

        def silent_peer():
            c = Collector(config(targets), extra_args=["--shard", "0", "--peer", f"http://127.0.0.1:{silent.port}",
                                                       "--peer-timeout", "1s"], name="fan-silent")
            cs.append(c)
            c.wait_for(lambda: c.get_json(f"/api/v1/profiles?type=heap&local=1")[1]["data"] or None, timeout=15)
            t0 = time.monotonic()
            st, body, hdrs = http_req("GET", c.url + "/api/v1/render?type=heap")
            took = time.monotonic() - t0
            d = json.loads(body).get("data", {}) if st == 200 else {}
            ok = st == 200 and d.get("partial") is True and 0.9 < took < 5 and header(hdrs, "X-Pprof-Partial")
            return ok, f"status {st} after {took:.2f} s; partial {d.get('partial')} {d.get('shards')}"
        check(t, "collector fanout: a peer that accepts and never answers: partial after --peer-timeout (1 s)",
              silent_peer)

        def broken_peer():
            """a peer whose answers are not what the collector asked for: a record that does not
            decode (502), a listing that is not one (partial, and why), a listing whose entries pass
            the answer's budget once marked with the peer (422); a query too long to pass on (400)"""
            class H(QuietHandler):
                def do_GET(self):
                    if self.path.startswith("/api/v1/profile?"):
                        self.send_body(200, b"not a profile")
                    elif "svc=huge" in self.path:  # small entries, each grows by its "peer" mark
                        self.send_body(200, b'{"status":"success","data":[' + b",".join([b"{}"] * 100000) + b"]}")
                    else:
                        self.send_body(200, b"<html>a proxy's error page</html>")
            bp = PeerServer(H)
            try:
                c = Collector(config(targets), extra_args=["--shard", "0", "--peer", bp.url, "--web-query-memory", "1MiB"],
                              name="fan-broken")
                cs.append(c)
                st_r, body_r, _ = http_req("GET", c.url + f"/api/v1/profile?id=1&peer={urllib.parse.quote(bp.url)}")
                st_t, tl = c.get_json("/api/v1/timeline?type=heap")
                why = (tl.get("shards") or {}).get("why", "") if st_t == 200 else ""
                st_h, body_h, _ = http_req("GET", c.url + "/api/v1/timeline?type=heap&svc=huge")
                # (each parameter within its limit, 1 KiB; together over the 8 KiB a path passed on has)
                st_l, body_l, _ = http_req("GET", c.url + "/api/v1/timeline?type=heap&" +
                                           "&".join(f"l{i}={'a' * 900}" for i in range(12)))
                ok = (st_r == 502 and b"does not decode" in body_r and tl.get("partial") is True
                      and "not a listing" in why and st_h == 422 and b"peers' entries" in body_h
                      and st_l == 400 and b"too long" in body_l)
                return ok, (f"record {st_r} {body_r[:200]}; listing {st_t} partial {tl.get('partial')} why {why!r}; "
                            f"huge {st_h} {body_h[:200]}; long {st_l} {body_l[:200]}")
            finally:
                bp.stop()
        check(t, "collector fanout: a peer's record that does not decode is a 502, its listing that is not one makes "
                 "the answer partial, entries past the budget a 422; a query too long to pass on is a 400", broken_peer)

        def bad_values():
            out = []
            for args in (["--peer", "ftp://x"], ["--peer", "http://"], ["--peer", "http://h:1/?q"],
                         ["--peer-timeout", "0s"], ["--peer-timeout", "soon"], ["--peer-timeout", "1h"],
                         sum((["--peer", f"http://h:{1000 + i}"] for i in range(129)), [])):
                p = subprocess.run([Collector.binary, "-c", c0.config, "-d", os.path.join(work, "d"), *args],
                                   capture_output=True, text=True, timeout=20)
                lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
                out.append((args, p.returncode, len(lines) == 1 and "--peer" in p.stderr, p.stderr.strip()[-200:]))
            st, body, _ = http_req("GET", c0.url + "/api/v1/render?type=heap&local=yes")
            return (all(rc == 2 and said for _, rc, said, _ in out) and st == 400 and b"local" in body,
                    f"{out}; local=yes: {st} {body[:200]}")
        check(t, "collector fanout: --peer and --peer-timeout refuse bad values and a 129th peer (exit 2, one line); "
                 "local=yes is a 400",
              bad_values)
    finally:
        for c in cs:
            c.stop()
            c.cleanup()
        targets.stop()
        silent.close()
        subprocess.run(["rm", "-rf", work])


PARTS = {"fanout": fanout}
