"""Grafana's Pyroscope data source API (issue 16 §1): querier.v1.QuerierService over Connect,
called by Pyroscope's own Go client (github.com/grafana/pyroscope/api's querierv1connect,
Apache-2.0; tools/push-client -query), as protobuf and as JSON. Every answer is compared with
what our own HTTP API (/api/v1/series, /api/v1/profiles, /api/v1/profile) and `go tool pprof`
say of the same selection: the profile types and labels from the series list (mapped by the
rules of web_querier.h, written out again here), each flame graph's per-function flat and cum
(decoded from Pyroscope's level encoding) against go tool pprof -top of our merged download,
SelectMergeProfile's pprof against that download under go tool pprof, SelectSeries' points
against the records' totals bucketed here, Diff's two sides against each side's download. Then
the refusals: no credentials, bad selectors, unknown types, too many points, oversize bodies,
unsupported parts, each with Connect's code and nothing else.

Part (tests/run.py collector:querier): querier."""
import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse

from harness import OUT, ROOT, check, go_pprof, go_top_args, parse_go_top
from peers import Collector, DemoTarget, http_req

CLIENT = os.path.join(ROOT, "bin", "push-client")
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
HEAP = "memory:inuse_space:bytes:space:bytes"
# our type -> (Pyroscope's name, period type, period unit, the sample types it offers)
KINDS = {"cpu": ("process_cpu", "cpu", "nanoseconds", ""), "heap": ("memory", "space", "bytes", "inuse_"),
         "allocs": ("memory", "space", "bytes", "alloc_"), "goroutine": ("goroutines", "goroutine", "count", ""),
         "mutex": ("mutex", "contentions", "count", ""), "block": ("block", "contentions", "count", ""),
         "threadcreate": ("threadcreate", "threadcreate", "count", "")}


def pyroscope_labels(labels):
    """Our stored labels as the query API must show them (web_querier.h)."""
    out = {k: v for k, v in labels.items() if not k.startswith("__") and v}
    ns, svc = labels.get("__k8s_namespace"), labels.get("__k8s_name")
    if ns:
        out["namespace"] = ns
    if svc:
        out["service"] = svc
    if not labels.get("service_name"):
        out["service_name"] = f"{ns}/{svc}" if ns and svc else svc or labels.get("monitor")
    return out


def virtual_series(series):
    """/api/v1/series entries -> [(labels with __name__ and __profile_type__)]"""
    out = []
    for s in series:
        name, pt, pu, prefix = KINDS[s["profileType"]]
        for st in s["sampleTypes"]:
            if not st["type"].startswith(prefix):
                continue
            pid = f"{name}:{st['type']}:{st['unit']}:{pt}:{pu}"
            out.append({**pyroscope_labels(s["labels"]), "__name__": name, "__profile_type__": pid})
    return out


def decode_flame(fg, nin):
    """Pyroscope's levels -> nodes {name, x, total, self (lists per input), parent index}."""
    names = fg.get("names", [])
    stride = 3 * nin + 1
    nodes, prev = [], []
    for vals in (l.get("values", []) for l in fg.get("levels", [])):
        vals = [int(v) for v in vals]
        cur, end = [], [0] * nin
        for i in range(0, len(vals), stride):
            n = {"name": names[vals[i + 3 * nin]], "x": [], "total": [], "self": [], "parent": None}
            for k in range(nin):
                off, tot, sf = vals[i + 3 * k: i + 3 * k + 3]
                x = end[k] + off
                end[k] = x + tot
                n["x"].append(x), n["total"].append(tot), n["self"].append(sf)
            # the parent: the node above whose span holds this one's, on a side where it has a width
            side = next((k for k in range(nin) if n["total"][k] > 0), None)
            for p in prev if side is not None else ():
                if nodes[p]["x"][side] <= n["x"][side] < nodes[p]["x"][side] + nodes[p]["total"][side]:
                    n["parent"] = p
                    break
            nodes.append(n)
            cur.append(len(nodes) - 1)
        prev = cur
    return nodes


def flat_cum(nodes, k):
    """{function: (flat, cum)} of input k: flat = the selfs summed, cum = the totals of the nodes
    with no ancestor of the same name (as go tool pprof counts a function once per stack)."""
    out = {}
    for i, n in enumerate(nodes):
        if n["parent"] is None or n["name"] == "other":
            continue
        f, c = out.get(n["name"], (0, 0))
        f += n["self"][k]
        a, rec = n["parent"], False
        while a is not None:
            rec |= nodes[a]["name"] == n["name"]
            a = nodes[a]["parent"]
        if not rec:
            c += n["total"][k]
        out[n["name"]] = (f, c)
    return {k2: v for k2, v in out.items() if v != (0, 0)}


def raw_status(port, head):
    """(status, body) of a request whose headers alone are sent (the body never comes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        s.sendall(head.encode())
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= 10:
                break
    except OSError:
        pass
    finally:
        s.close()
    line = data.split(b"\r\n", 1)[0].split()
    return (int(line[1]) if len(line) > 1 else 0), data.split(b"\r\n\r\n", 1)[-1]


def querier(t):
    d = os.path.join(OUT, "querier")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if not os.access(CLIENT, os.X_OK):
        t.tool("querier: bin/push-client is built (make test-bins)", False, CLIENT)
        return
    users = os.path.join(d, "users")
    bc = subprocess.run(["htpasswd", "-nbB", "grafana", "s3cret"], capture_output=True, text=True)
    open(users, "w").write(bc.stdout.strip() + "\n")
    auth = {"Authorization": "Basic " + base64.b64encode(b"grafana:s3cret").decode()}
    demo0, demo1 = DemoTarget(), DemoTarget()
    cfg = f"""monitors:
- name: checkout-0
  endpoint: {demo0.url}
  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-0, version: v1}}
  profile: {{seconds: 1}}
  heap: {{interval_seconds: 1}}
- name: checkout-1
  endpoint: {demo1.url}
  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-1, version: v2}}
  profile: {{seconds: 1}}
  heap: {{interval_seconds: 1}}
- name: lonely
  endpoint: {demo1.url}
  goroutine: {{interval_seconds: 1}}
"""
    c = Collector(cfg, extra_args=["--web-basic-auth-file", users], name="querier")

    def get(path):
        st, body, _ = http_req("GET", c.url + path, headers=auth)
        return st, body

    def call(method, req, js=False, out=None):
        a = [CLIENT, "-query", method, "-server", c.url, "-user", "grafana", "-password", "s3cret", "-req", json.dumps(req)]
        a += (["-json"] if js else []) + (["-out", out] if out else [])
        p = subprocess.run(a, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"{method} ({'json' if js else 'proto'}): exit {p.returncode}: {p.stderr[-800:]}")
        return json.loads(p.stdout)

    try:
        # pushed too: a service_name of its own (Pyroscope's Connect push client)
        pushed = subprocess.run([CLIENT, "-connect", "-server", c.url, "-app", "pushed-app", "-out", d, "-user", "grafana",
                                 "-password", "s3cret"], capture_output=True, text=True, timeout=120)
        t.tool("querier: push-client -connect pushed profiles", pushed.returncode == 0, pushed.stderr[-800:])

        def enough():
            for pod in ("checkout-0", "checkout-1"):
                st, b = get(f"/api/v1/profiles?type=cpu&pod={pod}")
                if st != 200 or len(json.loads(b)["data"]) < 3:
                    return False
            st, b = get("/api/v1/profiles?type=heap&pod=checkout-0")
            return st == 200 and len(json.loads(b)["data"]) >= 3
        t.tool("querier: the collector filled by scraping two demo targets", c.wait_for(enough, timeout=60))
        # a fixed window, everything ended by end_ms (inclusive), so scraping goes on outside it. A
        # heap profile's time is when Go wrote it, and it is stored a moment later: the window ends
        # 3 s ago, so every profile it holds is stored before anything is read
        time.sleep(4)  # (what enough() saw ended before now - 3 s)
        end_ms = int(time.time() * 1000) - 3000
        start_ms = end_ms - 3600 * 1000
        frm = f"{start_ms // 1000}.{start_ms % 1000:03d}"
        to = f"{end_ms // 1000}.{(end_ms % 1000) * 10**6 + 999999:09d}"
        rng = {"start": str(start_ms), "end": str(end_ms)}

        def download(type_, sel, name):
            q = urllib.parse.urlencode({"type": type_, **sel, "from": frm, "to": to})
            st, body = get(f"/api/v1/profile?{q}")
            path = os.path.join(d, name)
            open(path, "wb").write(body)
            if st != 200:
                raise AssertionError(f"/api/v1/profile?{q}: {st} {body[:200]!r}")
            return path

        def go_top(path, index, unit):
            g = go_pprof(go_top_args(index, unit) + [path])
            if g.returncode:
                raise AssertionError(g.stderr[-500:])
            return {k: v for k, v in parse_go_top(g.stdout).items() if v != (0, 0)}

        def diffs(a, b):
            return [f"{k}: querier {a.get(k)}, go {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)][:10]

        series = json.loads(get(f"/api/v1/series?from={frm}&to={to}")[1])["data"]
        vs = virtual_series(series)

        def types_and_labels():
            bad = []
            want_types = sorted({v["__profile_type__"] for v in vs})
            for js in (False, True):
                got = call("ProfileTypes", rng, js).get("profileTypes", [])
                ids = [p["ID"] for p in got]
                if ids != want_types:
                    bad.append(f"ProfileTypes {ids}, want {want_types}")
                for p in got:
                    if ":".join([p["name"], p["sampleType"], p["sampleUnit"], p["periodType"], p["periodUnit"]]) != p["ID"]:
                        bad.append(f"ProfileType fields {p}")
                names = call("LabelNames", rng, js).get("names", [])
                if names != sorted({k for v in vs for k in v}):
                    bad.append(f"LabelNames {names}, want {sorted({k for v in vs for k in v})}")
                svc = call("LabelValues", {**rng, "name": "service_name"}, js).get("names", [])
                if svc != sorted({v["service_name"] for v in vs}) or "shop/checkout" not in svc or "pushed-app" not in svc or "lonely" not in svc:
                    bad.append(f"LabelValues service_name {svc}")
                pods = call("LabelValues", {**rng, "name": "pod", "matchers": ['{service_name="shop/checkout", __name__="process_cpu"}']}, js).get("names", [])
                if pods != ["checkout-0", "checkout-1"]:
                    bad.append(f"LabelValues pod of shop/checkout's CPU {pods}")
                # regular expressions match whole values (a prefix is no match); RE2's \d and (?i) work
                for sel, want in (('{pod=~"checkout"}', []), ('{pod=~"checkout-\\\\d"}', ["checkout-0", "checkout-1"]),
                                  ('{pod=~"(?i)CHECKOUT-1"}', ["checkout-1"]), ('{pod!~"checkout-[1-9]"}', ["checkout-0"]),
                                  ('{pod=~"(a?){0,255}"}', [])):
                    got = call("LabelValues", {**rng, "name": "pod", "matchers": [sel]}, js).get("names", [])
                    if got != want:
                        bad.append(f"LabelValues pod {sel}: {got}, want {want}")
                # Series: the label sets of the matching series, only the names asked for
                sel = {"matchers": ['{namespace="shop", pod!="checkout-1"}', '{service_name=~"push.*"}'],
                       "labelNames": ["service_name", "__profile_type__", "pod"]}
                got = call("Series", {**rng, **sel}, js).get("labelsSet", [])
                got_sets = sorted(json.dumps({p["name"]: p["value"] for p in s["labels"]}, sort_keys=True) for s in got)
                want_sets = sorted({json.dumps({k: v[k] for k in sel["labelNames"] if k in v}, sort_keys=True) for v in vs
                                    if (v.get("namespace") == "shop" and v.get("pod") != "checkout-1") or v["service_name"].startswith("push")})
                if got_sets != want_sets:
                    bad.append(f"Series {got_sets}, want {want_sets}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: ProfileTypes, LabelNames, LabelValues and Series (protobuf and JSON) are /api/v1/series' "
                 "series seen through Pyroscope's labels: service_name namespace/service (or the pushed app, or the "
                 "monitor), one series per profile type id, matchers OR-ed, regular expressions matched whole (PCRE2: \\d, (?i)), "
                 "label_names kept", types_and_labels)

        def flame_graphs():
            bad = []
            path = download("cpu", {"__k8s_namespace": "shop", "__k8s_name": "checkout"}, "checkout-cpu.pb.gz")
            want = go_top(path, 1, "nanoseconds")
            total = sum(f for f, _ in want.values())
            for js in (False, True):
                fg = call("SelectMergeStacktraces", {**rng, "profileTypeID": CPU, "labelSelector": '{service_name="shop/checkout"}',
                                                     "maxNodes": 100000}, js)["flamegraph"]
                nodes = decode_flame(fg, 1)
                got = flat_cum(nodes, 0)
                if not want or got != want:
                    bad.append(f"{'json' if js else 'proto'}: {diffs(got, want)}")
                if int(fg.get("total", 0)) != total or nodes[0]["name"] != "total" or nodes[0]["total"][0] != total:
                    bad.append(f"total {fg.get('total')}, go {total}")
                if int(fg.get("maxSelf", 0)) != max(n["self"][0] for n in nodes):
                    bad.append(f"maxSelf {fg.get('maxSelf')}")
            # max_nodes: at most that many frames and one "other" per parent cut, the totals kept
            fg = call("SelectMergeStacktraces", {**rng, "profileTypeID": CPU, "labelSelector": '{service_name="shop/checkout"}',
                                                 "maxNodes": 12})["flamegraph"]
            nodes = decode_flame(fg, 1)
            real = [n for n in nodes if n["name"] != "other"]
            if len(real) > 12 or not any(n["name"] == "other" for n in nodes) or nodes[0]["total"][0] != total:
                bad.append(f"maxNodes 12: {len(real)} frames, other {any(n['name'] == 'other' for n in nodes)}, total {nodes[0]['total'][0]}")
            for i, n in enumerate(nodes):
                kids = [m for m in nodes if m["parent"] == i]
                if kids and sum(m["total"][0] for m in kids) + n["self"][0] != n["total"][0]:
                    bad.append(f"maxNodes 12: {n['name']}: children {sum(m['total'][0] for m in kids)} + self {n['self'][0]} != total {n['total'][0]}")
            # one pod's heap (averaged over time, as /api/v1/profile merges a heap)
            hp = download("heap", {"pod": "checkout-0"}, "checkout-0-heap.pb.gz")
            hwant = go_top(hp, 3, "bytes")
            fg = call("SelectMergeStacktraces", {**rng, "profileTypeID": HEAP, "labelSelector": '{pod="checkout-0"}', "maxNodes": 100000})["flamegraph"]
            hgot = flat_cum(decode_flame(fg, 1), 0)
            if not hwant or hgot != hwant:
                bad.append(f"heap inuse_space: {diffs(hgot, hwant)}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: SelectMergeStacktraces (protobuf and JSON): every function's flat and cum in the flame graph "
                 "equal go tool pprof -top of /api/v1/profile for the same selection (CPU of a service's two pods, one "
                 "pod's heap); max_nodes keeps that many frames plus \"other\", totals unchanged", flame_graphs)

        def merge_profile():
            bad = []
            path = download("cpu", {"__k8s_namespace": "shop", "__k8s_name": "checkout"}, "checkout-cpu2.pb.gz")
            want = go_top(path, 1, "nanoseconds")
            out = os.path.join(d, "merge-profile.pb.gz")
            js = call("SelectMergeProfile", {**rng, "profileTypeID": CPU, "labelSelector": '{service_name="shop/checkout"}'}, out=out)
            got = go_top(out, 0, "nanoseconds")
            if not want or got != want:
                bad.append(f"proto: {diffs(got, want)}")
            types = subprocess.run(["go", "tool", "pprof", "-raw", out], capture_output=True, text=True).stdout
            if "cpu/nanoseconds" not in types or "samples/count" in types.split("Samples:")[0]:
                bad.append("the profile keeps other sample types than cpu/nanoseconds")
            if len(js.get("sampleType", [])) != 1:
                bad.append(f"sampleType {js.get('sampleType')}")
            # JSON: the same profile as protojson (the values summed equal go's total)
            jp = call("SelectMergeProfile", {**rng, "profileTypeID": CPU, "labelSelector": '{service_name="shop/checkout"}'}, True)
            jt = sum(int(s["value"][0]) for s in jp.get("sample", []))
            if jt != sum(f for f, _ in want.values()):
                bad.append(f"json: values sum {jt}, go total {sum(f for f, _ in want.values())}")
            # go_pgo: the PGO trim of /api/v1/pgo
            pgo = os.path.join(d, "pgo.pb.gz")
            call("SelectMergeProfile", {**rng, "profileTypeID": CPU, "labelSelector": '{service_name="shop/checkout"}',
                                        "stackTraceSelector": {"goPgo": {"keepLocations": 2, "aggregateCallees": True}}}, out=pgo)
            st, body = get("/api/v1/pgo?" + urllib.parse.urlencode({"__k8s_namespace": "shop", "__k8s_name": "checkout", "from": frm,
                                                                    "to": to, "keep_locations": 2}))
            ours = os.path.join(d, "pgo-api.pb.gz")
            open(ours, "wb").write(body)
            a, b = go_top(pgo, 0, "nanoseconds"), go_top(ours, 1, "nanoseconds") if st == 200 else {}
            if not b or a != b:
                bad.append(f"go_pgo vs /api/v1/pgo ({st}): {diffs(a, b)}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: SelectMergeProfile gives the merged pprof of one sample type, equal under go tool pprof to "
                 "/api/v1/profile's; as JSON too; with stack_trace_selector.go_pgo equal to /api/v1/pgo's", merge_profile)

        def select_series():
            bad = []
            step_ms = 2000
            recs = json.loads(get(f"/api/v1/profiles?type=heap&__k8s_name=checkout&from={frm}&to={to}")[1])["data"]
            want, cnt = {}, {}
            for r in recs:
                col = [s.split("/")[0] for s in r["sampleTypes"].split(",")].index("inuse_space")
                ts = start_ms + (r["endUnixNano"] // 10**6 - start_ms) // step_ms * step_ms
                key = (r["labels"]["pod"], ts)
                want[key] = want.get(key, 0) + r["totals"][col]
                cnt[key] = cnt.get(key, 0) + 1
            for agg in ("TIME_SERIES_AGGREGATION_TYPE_SUM", "TIME_SERIES_AGGREGATION_TYPE_AVERAGE"):
                for js in (False, True):
                    got = call("SelectSeries", {**rng, "profileTypeID": HEAP, "labelSelector": '{service_name="shop/checkout"}',
                                                "groupBy": ["pod"], "step": step_ms / 1000, "aggregation": agg}, js).get("series", [])
                    g = {}
                    for s in got:
                        labels = {p["name"]: p["value"] for p in s.get("labels", [])}
                        for p in s.get("points", []):
                            g[(labels.get("pod"), int(p.get("timestamp", 0)))] = float(p.get("value", 0))
                    w = {k: (v / cnt[k] if agg.endswith("AVERAGE") else v) for k, v in want.items()}
                    if not w or g != {k: float(v) for k, v in w.items()} or [sorted(x["name"] for x in s["labels"]) for s in got] != [["pod"]] * 2:
                        bad.append(f"{agg} {'json' if js else 'proto'}: {len(g)} points, want {len(w)}: "
                                   f"{[(k, g.get(k), w.get(k)) for k in sorted(set(g) | set(w)) if g.get(k) != w.get(k)][:5]}")
            # limit 1: the series with the largest total
            top = call("SelectSeries", {**rng, "profileTypeID": HEAP, "labelSelector": '{service_name="shop/checkout"}', "groupBy": ["pod"], "step": 2, "limit": 1})
            tot = {}
            for (pod, _), v in want.items():
                tot[pod] = tot.get(pod, 0) + v
            best = max(tot, key=tot.get)
            if [s["labels"][0]["value"] for s in top.get("series", [])] != [best]:
                bad.append(f"limit 1: {top}, want pod {best}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: SelectSeries: each pod's points (group_by pod, step 2 s) are its records' inuse_space totals "
                 "(/api/v1/profiles) summed per step, or averaged; limit keeps the largest series", select_series)

        def diff():
            bad = []
            p0 = download("cpu", {"pod": "checkout-0"}, "c0.pb.gz")
            p1 = download("cpu", {"pod": "checkout-1"}, "c1.pb.gz")
            w0, w1 = go_top(p0, 1, "nanoseconds"), go_top(p1, 1, "nanoseconds")
            for js in (False, True):
                fg = call("Diff", {"left": {**rng, "profileTypeID": CPU, "labelSelector": '{pod="checkout-0"}', "maxNodes": 100000},
                                   "right": {**rng, "profileTypeID": CPU, "labelSelector": '{pod="checkout-1"}', "maxNodes": 100000}}, js)["flamegraph"]
                nodes = decode_flame(fg, 2)
                for k, w in ((0, w0), (1, w1)):
                    got = flat_cum(nodes, k)
                    if not w or got != w:
                        bad.append(f"side {k}: {diffs(got, w)}")
                t0, t1 = sum(f for f, _ in w0.values()), sum(f for f, _ in w1.values())
                if (int(fg.get("leftTicks", 0)), int(fg.get("rightTicks", 0)), int(fg.get("total", 0))) != (t0, t1, t0 + t1):
                    bad.append(f"ticks {fg.get('leftTicks')} {fg.get('rightTicks')} {fg.get('total')}, go {t0} {t1}")
            # a side that selects nothing counts zero; the other side is whole
            fg = call("Diff", {"left": {**rng, "profileTypeID": CPU, "labelSelector": '{pod="nobody"}'},
                               "right": {**rng, "profileTypeID": CPU, "labelSelector": '{pod="checkout-1"}', "maxNodes": 100000}})["flamegraph"]
            nodes = decode_flame(fg, 2)
            if flat_cum(nodes, 0) or flat_cum(nodes, 1) != w1 or int(fg.get("leftTicks", 0)) != 0:
                bad.append(f"an empty left side: left {flat_cum(nodes, 0)}, leftTicks {fg.get('leftTicks')}, right {diffs(flat_cum(nodes, 1), w1)}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: Diff of two pods' CPU: each side's flat and cum per function equal go tool pprof -top of that "
                 "pod's /api/v1/profile; leftTicks, rightTicks and total their totals; a side that selects nothing counts zero", diff)

        def refusals():
            bad = []

            def post(method, body, headers=None, ctype="application/json"):
                h = {**auth, "Content-Type": ctype} if headers is None else headers
                st, b, _ = http_req("POST", c.url + "/querier.v1.QuerierService/" + method, data=body, headers=h)
                return st, b

            cases = [
                ("no credentials", post("ProfileTypes", b"{}", headers={"Content-Type": "application/json"}), 401, ""),
                ("an unknown profile type", post("SelectMergeStacktraces", json.dumps({"profileTypeID": "nope:a:b:c:d", **rng}).encode()),
                 400, '"invalid_argument"'),
                ("an unclosed selector", post("SelectMergeStacktraces", json.dumps({"profileTypeID": CPU, "labelSelector": '{pod="x"', **rng}).encode()),
                 400, "not a label selector"),
                ("a bad regular expression", post("LabelNames", json.dumps({"matchers": ['{pod=~"(x"}']}).encode()), 400, "regular expression"),
                ("a backreference", post("LabelNames", json.dumps({"matchers": ['{pod=~"(a)\\\\1"}']}).encode()), 400, "backreferences"),
                # (glibc's regcomp, used before PCRE2, took gigabytes for these: stacked + and nested intervals)
                ("24 stacked +", post("LabelNames", json.dumps({"matchers": ['{pod=~"a' + "+" * 24 + '"}']}).encode()), 400, "repeatable"),
                ("nested intervals", post("LabelNames", json.dumps({"matchers": ['{pod=~"((a{1,200}){1,200}){1,200}"}']}).encode()), 400, "too large"),
                ("ten large expressions together (28 KB compiled each)",
                 post("LabelNames", json.dumps({"matchers": ['{pod=~"(abcdefghij){1000}"}'] * 10}).encode()), 400, "together"),
                ("33 matchers", post("LabelNames", json.dumps({"matchers": ["{" + ",".join(f'a{i}="x"' for i in range(33)) + "}"]}).encode()),
                 400, "more than 32"),
                ("start after end", post("ProfileTypes", json.dumps({"start": "5", "end": "4"}).encode()), 400, "start is after end"),
                ("a step too small", post("SelectSeries", json.dumps({"profileTypeID": CPU, **rng, "step": 0.01}).encode()), 400, "points"),
                ("max_nodes 300000", post("SelectMergeStacktraces", json.dumps({"profileTypeID": CPU, **rng, "maxNodes": 300000}).encode()), 400, "max_nodes"),
                ("not JSON", post("ProfileTypes", b"{nope"), 400, "not JSON"),
                ("300,000 JSON values", post("LabelNames", b'{"x":[' + b",".join([b"0"] * 300000) + b"]}"), 429, "values"),
                ("a string where a number goes", post("ProfileTypes", b'{"start":"x"}'), 400, "start: want a 64-bit integer"),
                ("not protobuf", post("ProfileTypes", b"\xff\xff\xff", ctype="application/proto"), 400, "protobuf"),
                ("another content type", post("ProfileTypes", b"{}", ctype="text/plain"), 400, "Content-Type"),
                ("a call site selector", post("SelectMergeStacktraces", json.dumps({"profileTypeID": CPU, **rng, "stackTraceSelector": {"callSite": [{"name": "main"}]}}).encode()),
                 501, "unimplemented"),
                ("the tree format", post("SelectMergeStacktraces", json.dumps({"profileTypeID": CPU, **rng, "format": "PROFILE_FORMAT_TREE"}).encode()),
                 501, "unimplemented"),
                ("a method not served", post("SelectHeatmap", b"{}"), 501, "unimplemented"),
            ]
            # over 1 MiB: refused at its headers (413), before the body is read
            big = raw_status(c.port, "POST /querier.v1.QuerierService/LabelNames HTTP/1.1\r\nHost: c\r\nAuthorization: "
                             f"{auth['Authorization']}\r\nContent-Type: application/json\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n")
            cases.append(("a body over 1 MiB", big, 413, "1 MiB"))
            st, _, _ = http_req("GET", c.url + "/querier.v1.QuerierService/ProfileTypes", headers=auth)
            cases.append(("GET", (st, b""), 405, ""))
            for name, (st, body), want, frag in cases:
                if st != want or frag.encode() not in body:
                    bad.append(f"{name}: {st} {body[:200]!r} (want {want} with {frag!r})")
            # an empty selection answers empty, not an error
            fg = call("SelectMergeStacktraces", {**rng, "profileTypeID": CPU, "labelSelector": '{pod="nobody"}'})["flamegraph"]
            if int(fg.get("total", 0)) != 0 or fg.get("names") != ["total"]:
                bad.append(f"an empty selection: {fg}")
            return not bad, "; ".join(bad)[:3000]
        check(t, "querier: refused with Connect's code and a clear message: no credentials (401), unknown profile types, "
                 "bad selectors and regular expressions (also ones glibc's regcomp took gigabytes for, and compiled sizes past the limit), 33 matchers, bad times, too many points, max_nodes past 200000, "
                 "bodies that are not JSON or protobuf, call_site, other formats and methods (unimplemented), 1 MiB+ (413), "
                 "GET (405); an empty selection is an empty flame graph", refusals)
    finally:
        c.stop()
        demo0.stop()
        demo1.stop()
        c.cleanup()


PARTS = {"querier": querier}
