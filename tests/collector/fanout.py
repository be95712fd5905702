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
  - the Pyroscope query API (querier.v1.QuerierService) from shard 0: label values, series,
    SelectMergeProfile (under go tool pprof), SelectMergeStacktraces' total and SelectSeries
    (sum per target, one mean over targets of both shards, limit over the whole, also for a
    group spread over both shards that is not the largest on one of them) cover both
    shards, each against what the test knows of the targets and their stored records; with
    shard 1 down the label values are shard 0's and the answer says partial;
  - shards requiring a bearer token ask each other with it; a wrong --peer-bearer-token-file
    makes the answer partial (HTTP 401);
  - --peer, --peer-timeout and --peer-bearer-token-file refuse bad values (exit 2, one clear
    line); local= too.

Part (tests/run.py collector:fanout): fanout."""
import html
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.parse

from harness import check, fnv_shard, go_pprof, go_top_args, make_profile, parse_go_top, pb_request, wait_for
from peers import Collector, PeerServer, QuietHandler, http_req

N_TARGETS = 12
INTERVAL = 1.0


def value_of(i):
    # each target's value is over twice all smaller ones together, so a group's rank is its
    # largest member's whatever the count of records each target has in a window
    return 1000 * 4 ** i


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


def tiers(targets):
    """A label that groups targets across the shards: tier x is every target of the shard that
    holds the largest (its "big" shard) and the smallest of the other shard; tier y the other
    shard's rest. x is the largest group, yet on the other shard y is: a limit of 1 passed on to
    that shard would lose x's part there."""
    owner = [fnv_shard(targets.address(i), 2) for i in range(N_TARGETS)]
    big = owner[N_TARGETS - 1]
    small = min((i for i in range(N_TARGETS) if owner[i] != big), default=None)
    return big, ["x" if owner[i] == big or i == small else "y" for i in range(N_TARGETS)]


def config(targets, peers=()):
    lines = ["sharding: {shards: 2}", "monitors:"]
    if peers:
        lines[:0] = ["query:", "  peers:"] + [f"  - '{p}'" for p in peers]
    tier = tiers(targets)[1]
    for i in range(N_TARGETS):
        lines.append(f"- {{name: t{i}, endpoint: 'http://{targets.address(i)}', labels: {{svc: shop, tier: {tier[i]}}}, "
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


HEAP_ID = "memory:inuse_space:bytes:space:bytes"


def querier(c, method, req, local=False):
    """(status, answer (JSON, or the raw body for a protobuf request), headers)"""
    proto = isinstance(req, bytes)
    st, body, hdrs = http_req("POST", c.url + "/querier.v1.QuerierService/" + method + ("?local=1" if local else ""),
                              data=req if proto else json.dumps(req).encode(),
                              headers={"Content-Type": "application/proto" if proto else "application/json"})
    return st, (body if proto or st != 200 else json.loads(body)), hdrs


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
            # the seed's /raw: shard 0's series, then shard 1's marked with its URL; a peer's
            # row links a download that holds that target's function (a merge over every shard)
            st_w, body_w, _ = http_req("GET", c0.url + "/raw")
            rows = re.findall(r'<tr><td>[^<]*&quot;monitor&quot;:&quot;(t\d+)&quot;.*?<a href="([^"]*)">pprof</a></td><td>([^<]*)</td>',
                              body_w.decode("utf-8", "replace"))
            st_wl, body_wl, _ = http_req("GET", c0.url + "/raw?local=1")
            local_rows = set(re.findall(r'&quot;monitor&quot;:&quot;(t\d+)&quot;', body_wl.decode("utf-8", "replace")))
            marks = {m: (peer or None) for m, _, peer in rows}
            want_marks = {f"t{i}": (c1.url if owner[f"main.work_{i}"] == 1 else None) for i in range(N_TARGETS)}
            link = next((html.unescape(href) for m, href, peer in rows if peer), None)
            got_fn = None
            if link:
                st_d, f, _ = fetch(c0, link, work, "raw-link.pb.gz")
                got_fn = set(go_flat(f)) - {"main.main"} if st_d == 200 else st_d
            want_fn = {f"main.work_{next(m for m, _, peer in rows if peer)[1:]}"} if link else None
            if st_w != 200 or len(rows) != N_TARGETS or marks != want_marks or got_fn != want_fn or st_wl != 200 or \
                    local_rows != {m for m, k in want_marks.items() if k is None}:
                bad.append(f"/raw {st_w}: {sorted(marks.items())} want {sorted(want_marks.items())}; a peer row's link "
                           f"{link} holds {got_fn} want {want_fn}; local=1 {st_wl} {sorted(local_rows)}")
            # pages are of one store: refused across shards, served with local=1
            st_p, body_p, _ = http_req("GET", c0.url + "/api/v1/series?type=heap&limit=5")
            st_l, _, _ = http_req("GET", c0.url + "/api/v1/series?type=heap&limit=5&local=1")
            if st_p != 400 or b"local=1" not in body_p or st_l != 200:
                bad.append(f"paged series: {st_p} {body_p[:200]}, with local=1 {st_l}")
            return not bad, "\n".join(bad)
        check(t, "collector fanout: timeline, series, profiles, targets and /raw list both shards' entries once each, "
                 "shard 1's marked with its peer (a /raw link of shard 1's serves its profile); a paged series listing "
                 "across shards is a 400", listings)

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

        def query_api():
            """Pyroscope's query API asked of shard 0 answers for both shards"""
            bad = []
            rng = {"start": str(lo * 1000), "end": str(hi * 1000)}  # (to=hi: up to hi.000 s, as end here)
            names = {f"t{i}" for i in range(N_TARGETS)}
            own0 = {f"t{i}" for i in range(N_TARGETS) if owner[f"main.work_{i}"] == 0}
            lv_req = {"name": "service_name", **rng}
            st, lv, hdrs = querier(c0, "LabelValues", lv_req)
            st_l, lv_l, _ = querier(c0, "LabelValues", lv_req, local=True)
            if st != 200 or set(lv.get("names", [])) != names or header(hdrs, "X-Pprof-Partial") or \
                    st_l != 200 or set(lv_l.get("names", [])) != own0:
                bad.append(f"LabelValues {st} {lv}; local=1 {st_l} {lv_l} want {sorted(own0)}")
            st, se, _ = querier(c0, "Series", {"matchers": ['{svc="shop"}'], "labelNames": ["service_name"], **rng})
            sets = sorted(ls["labels"][0]["value"] for ls in se.get("labelsSet", [])) if st == 200 else se
            if sets != sorted(names):
                bad.append(f"Series {st}: {sets}")
            st, pt, _ = querier(c0, "ProfileTypes", rng)
            if st != 200 or [x["ID"] for x in pt.get("profileTypes", [])] != [HEAP_ID]:
                bad.append(f"ProfileTypes {st}: {pt}")
            # the merge, as protobuf: each target's heap averaged over time, the targets summed
            st, body, _ = querier(c0, "SelectMergeProfile", pb_request((1, HEAP_ID), (2, '{svc="shop"}'),
                                                                       (3, lo * 1000), (4, hi * 1000)))
            f = os.path.join(work, "querier-merge.pb")
            open(f, "wb").write(body)
            got = {k: v for k, v in go_flat(f).items() if k != "main.main"} if st == 200 else {}
            exp = {f"main.work_{i}": value_of(i) for i in range(N_TARGETS)}
            if got != exp:
                bad.append(f"SelectMergeProfile {st}: {got}")
            st, fg, _ = querier(c0, "SelectMergeStacktraces", {"profileTypeID": HEAP_ID, "labelSelector": '{svc="shop"}', **rng})
            fgd = fg.get("flamegraph", {}) if st == 200 else {}
            if int(fgd.get("total", 0)) != sum(exp.values()) or \
                    {n for n in fgd.get("names", []) if n.startswith("main.work_")} != set(exp):
                bad.append(f"SelectMergeStacktraces {st}: total {fgd.get('total')} want {sum(exp.values())}")
            # the points: each target's records in the window, summed here from the stored rows
            sums, counts = {}, {}
            for cc in cs:
                for r in cc.get_json(f"/api/v1/profiles?{q}&local=1&limit=20000")[1]["data"]:
                    m = r["labels"]["monitor"]
                    sums[m] = sums.get(m, 0) + r["totals"][0]
                    counts[m] = counts.get(m, 0) + 1
            step = hi - lo + 1  # one bucket over the window
            sel = {"profileTypeID": HEAP_ID, "labelSelector": '{svc="shop"}', "step": step, **rng}
            st, ss, _ = querier(c0, "SelectSeries", {**sel, "groupBy": ["service_name"]})
            per = {s["labels"][0]["value"]: sum(p.get("value", 0) for p in s.get("points", []))
                   for s in ss.get("series", [])} if st == 200 else ss
            if per != {m: float(v) for m, v in sums.items()} or len(sums) != N_TARGETS:
                bad.append(f"SelectSeries sum {st}: {per} want {sums}")
            # one group over both shards' targets: the mean of all their profiles, not of the means
            st, sa, _ = querier(c0, "SelectSeries", {**sel, "groupBy": ["svc"], "aggregation": "TIME_SERIES_AGGREGATION_TYPE_AVERAGE"})
            pts = [p.get("value") for s in sa.get("series", []) for p in s.get("points", [])] if st == 200 else sa
            mean = sum(sums.values()) / sum(counts.values())
            if not (isinstance(pts, list) and len(pts) == 1 and abs(pts[0] - mean) < 1e-6 * mean):
                bad.append(f"SelectSeries average {st}: {pts} want [{mean}]")
            st, sl, _ = querier(c0, "SelectSeries", {**sel, "groupBy": ["service_name"], "limit": 3})
            top = sorted((sum(p.get("value", 0) for p in s.get("points", [])) for s in sl.get("series", [])),
                         reverse=True) if st == 200 else sl
            if top != sorted((float(v) for v in sums.values()), reverse=True)[:3]:
                bad.append(f"SelectSeries limit 3 {st}: {top} want the 3 largest of {sorted(sums.values())}")
            # a group over both shards, the largest overall but not on the shard that did not ask
            big, tier = tiers(targets)
            st, sx, _ = querier(cs[big], "SelectSeries", {**sel, "groupBy": ["tier"], "limit": 1})
            got = [(s["labels"][0]["value"], sum(p.get("value", 0) for p in s.get("points", [])))
                   for s in sx.get("series", [])] if st == 200 else sx
            want_x = float(sum(sums[f"t{i}"] for i in range(N_TARGETS) if tier[i] == "x"))
            if got != [("x", want_x)]:
                bad.append(f"SelectSeries limit 1 by tier (asked of shard {big}) {st}: {got} want [('x', {want_x})]")
            return not bad, "\n".join(bad)
        check(t, "collector fanout: the Pyroscope query API of shard 0 answers for both shards: label values, series, "
                 "SelectMergeProfile (go tool pprof), the flame graph's total, SelectSeries' sums, a mean over both "
                 "shards' profiles and limit over the whole", query_api)

        def self_and_twice_named():
            # shard 0's config names itself and shard 1, which its --peer names too: itself is
            # skipped (it answers 204 to its own id) and shard 1 asked once
            c0.write_config(config(targets, [c0.url, c1.url + "/"]))
            st_r, body_r, _ = http_req("POST", c0.url + "/reload")
            st, body, hdrs = http_req("GET", c0.url + f"/api/v1/render?{q}&agg=sum")
            d = json.loads(body).get("data", {}) if st == 200 else {}
            total = sum(v for fn, v in want.items() if fn.startswith("main.work_"))
            # the query API's calls too
            st_f, fg, _ = querier(c0, "SelectMergeStacktraces", {"profileTypeID": HEAP_ID, "labelSelector": '{svc="shop"}',
                                                                 "start": str(lo * 1000), "end": str(hi * 1000)})
            fg_total = int(fg.get("flamegraph", {}).get("total", 0)) if st_f == 200 else fg
            return (st_r == 200 and d.get("total") == total and d.get("profiles") == nrec and d.get("partial") is False
                    and d.get("shards", {}).get("asked") == 1 and fg_total == sum(value_of(i) for i in range(N_TARGETS)),
                    f"reload {st_r} {body_r[:200]}; total {d.get('total')} want {total}; profiles {d.get('profiles')} "
                    f"want {nrec}; {d.get('shards')}; query API flame graph {st_f} total {fg_total}")
        check(t, "collector fanout: a peer list naming the collector itself and a peer twice: itself skipped, the "
                 "peer asked once, the same total (and the query API's)", self_and_twice_named)

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

        def peers_with_token():
            """shards that require a bearer token ask each other with it (their own, shared); a
            peer token the peer does not take makes the answer partial (HTTP 401), never silent"""
            tok = os.path.join(work, "token")
            with open(tok, "w") as fh:
                fh.write("s3cret-token-of-the-stack\n")
            wrong = os.path.join(work, "wrong-token")
            with open(wrong, "w") as fh:
                fh.write("not-the-token-of-the-stack\n")
            a1 = Collector(config(targets), extra_args=["--shard", "1", "--web-bearer-token-file", tok], name="fan-tok1")
            cs.append(a1)
            a0 = Collector(config(targets), extra_args=["--shard", "0", "--web-bearer-token-file", tok, "--peer", a1.url],
                           name="fan-tok0")
            cs.append(a0)
            aw = Collector(config(targets), extra_args=["--shard", "0", "--peer", a1.url, "--peer-bearer-token-file", wrong],
                           name="fan-tokw")
            cs.append(aw)
            # its own token cannot go into a header: it starts, says so, and asks its peers without one
            spaced = os.path.join(work, "spaced-web-token")
            with open(spaced, "w") as fh:
                fh.write("a web token with spaces\n")
            asp = Collector(config(targets), extra_args=["--shard", "0", "--peer", a1.url, "--web-bearer-token-file", spaced],
                            name="fan-toksp")
            cs.append(asp)
            warned = "the peers are asked without credentials" in asp.log_text()
            asp.stop()
            auth = {"Authorization": "Bearer s3cret-token-of-the-stack"}

            def local(c, h):
                st, body, _ = http_req("GET", c.url + "/api/v1/profiles?type=heap&local=1&limit=20000", headers=h)
                return json.loads(body)["data"] if st == 200 else []
            wait_for(lambda: local(a0, auth) and local(a1, auth) or None, timeout=20)
            time.sleep(1)
            hi2 = time.time() - 0.5
            w = f"type=heap&agg=sum&to={hi2:.3f}"
            st, body, hdrs = http_req("GET", a0.url + f"/api/v1/render?{w}", headers=auth)
            d = json.loads(body).get("data", {}) if st == 200 else {}
            n = sum(1 for c in (a0, a1) for r in local(c, auth) if r["endUnixNano"] <= hi2 * 1e9)
            st_q, lv, hq = http_req("POST", a0.url + "/querier.v1.QuerierService/LabelValues", data=b'{"name":"service_name"}',
                                    headers={**auth, "Content-Type": "application/json"})
            names = set(json.loads(lv).get("names", [])) if st_q == 200 else lv
            st_w, body_w, _ = http_req("GET", aw.url + f"/api/v1/render?{w}")
            dw = json.loads(body_w).get("data", {}) if st_w == 200 else {}
            ok = (st == 200 and d.get("partial") is False and d.get("profiles") == n and not header(hdrs, "X-Pprof-Partial")
                  and st_q == 200 and names == {f"t{i}" for i in range(N_TARGETS)} and not header(hq, "X-Pprof-Partial")
                  and dw.get("partial") is True and "HTTP 401" in dw.get("shards", {}).get("why", "") and warned)
            for c in (a0, a1, aw):
                c.stop()
            return ok, (f"render {st}: partial {d.get('partial')} profiles {d.get('profiles')} of {n} {d.get('shards')}; "
                        f"label values {st_q} {names}; wrong token {st_w} {dw.get('partial')} {dw.get('shards')}; a web token with "
                        f"spaces warned of: {warned}")
        check(t, "collector fanout: shards requiring a bearer token ask each other with it (render and the query API "
                 "whole); a peer token it does not take: partial, HTTP 401 said; a web token a header cannot carry is "
                 "not sent, and the log says so", peers_with_token)

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
            st_w, body_w, hw = http_req("GET", c0.url + "/raw")
            raw_ok = (st_w == 200 and header(hw, "X-Pprof-Partial") == "1 of 1 shard answers missing"
                      and b'class="partial">1 of 1 shards did not answer' in body_w and html.escape(c1.url).encode() in body_w)
            return (mons == own and tl.get("partial") is True and e.get("missing") == 1 and c1.url in e.get("why", "")
                    and st_t == 200 and tg.get("partial") is True and st_r == 502 and raw_ok,
                    f"timeline {st}: {mons} partial {tl.get('partial')} {e}; targets {st_t} partial "
                    f"{tg.get('partial') if st_t == 200 else tg}; a record of the down peer: {st_r} {body_r[:200]}; "
                    f"/raw {st_w} {header(hw, 'X-Pprof-Partial')} {body_w[-400:]}")
        check(t, "collector fanout: a shard down: the timeline holds the live shard's series and says it is partial, "
                 "the targets and /raw too; a record asked of the down peer is a 502", listings_partial)

        def query_api_partial():
            own0 = {f"t{i}" for i in range(N_TARGETS) if owner[f"main.work_{i}"] == 0}
            st, lv, hdrs = querier(c0, "LabelValues", {"name": "service_name"})
            return (st == 200 and set(lv.get("names", [])) == own0
                    and header(hdrs, "X-Pprof-Partial") == "1 of 1 shard answers missing",
                    f"{st} {lv} header {header(hdrs, 'X-Pprof-Partial')}")
        check(t, "collector fanout: a shard down: the query API's label values are the live shard's and the answer "
                 "says partial (X-Pprof-Partial)", query_api_partial)

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

                def do_POST(self):  # the query API's calls: an answer that is no protobuf of it
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    self.send_body(200, b"\xff\xff\xff<html>a proxy's error page</html>")
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
                # the query API: a list and a merge, each partial, with this collector's own part
                c.wait_for(lambda: c.get_json("/api/v1/profiles?type=heap&local=1")[1]["data"] or None, timeout=15)
                st_q, lv, hq = querier(c, "LabelValues", {"name": "service_name"})
                st_m, fg, hm = querier(c, "SelectMergeStacktraces", {"profileTypeID": HEAP_ID})
                own = {x["monitor"] for x in c.get_json("/api/v1/targets?local=1")[1]["data"]}
                qok = (st_q == 200 and 0 < len(lv.get("names", [])) and set(lv["names"]) <= own
                       and header(hq, "X-Pprof-Partial") == "1 of 1 shard answers missing"
                       and st_m == 200 and int(fg.get("flamegraph", {}).get("total", 0)) > 0
                       and header(hm, "X-Pprof-Partial") == "1 of 1 shard answers missing")
                ok = (st_r == 502 and b"does not decode" in body_r and tl.get("partial") is True
                      and "not a listing" in why and st_h == 422 and b"peers' entries" in body_h
                      and st_l == 400 and b"too long" in body_l and qok)
                return ok, (f"record {st_r} {body_r[:200]}; listing {st_t} partial {tl.get('partial')} why {why!r}; "
                            f"huge {st_h} {body_h[:200]}; long {st_l} {body_l[:200]}; query API: values {st_q} {lv} "
                            f"{header(hq, 'X-Pprof-Partial')}, flame graph {st_m} {str(fg)[:200]} {header(hm, 'X-Pprof-Partial')}")
            finally:
                bp.stop()
        check(t, "collector fanout: a peer's record that does not decode is a 502, its listing that is not one makes "
                 "the answer partial, entries past the budget a 422; a query too long to pass on is a 400; its query "
                 "API answers that do not decode make the answer partial", broken_peer)

        def bad_values():
            spaced = os.path.join(work, "spaced-token")
            with open(spaced, "w") as fh:
                fh.write("a token with spaces in it\n")
            out = []
            for args in (["--peer", "ftp://x"], ["--peer", "http://"], ["--peer", "http://h:1/?q"],
                         ["--peer-timeout", "0s"], ["--peer-timeout", "soon"], ["--peer-timeout", "1h"],
                         ["--peer-bearer-token-file", spaced], ["--peer-bearer-token-file", os.path.join(work, "none")],
                         sum((["--peer", f"http://h:{1000 + i}"] for i in range(129)), [])):
                p = subprocess.run([Collector.binary, "-c", c0.config, "-d", os.path.join(work, "d"), *args],
                                   capture_output=True, text=True, timeout=20)
                lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
                out.append((args, p.returncode, len(lines) == 1 and "--peer" in p.stderr, p.stderr.strip()[-200:]))
            st, body, _ = http_req("GET", c0.url + "/api/v1/render?type=heap&local=yes")
            return (all(rc == 2 and said for _, rc, said, _ in out) and st == 400 and b"local" in body,
                    f"{out}; local=yes: {st} {body[:200]}")
        check(t, "collector fanout: --peer, --peer-timeout and --peer-bearer-token-file (spaces, no file) refuse bad "
                 "values, and a 129th peer (exit 2, one line); "
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
