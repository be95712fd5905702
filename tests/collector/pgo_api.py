"""/api/v1/pgo, `pprof-tool pgo` and /api/v1/regressions against real peers (issue 14, section 3
and 5).

- pgo: the demo target's CPU profile, scraped and stored, downloaded as default.pgo: go tool
  pprof reads it, the stacks are cut to keep_locations, per-function flat and the total equal
  what go tool pprof reads from the untrimmed merged profile (/api/v1/profile of the same
  selection), `pprof-tool pgo` of that profile gives the same samples, and `go build -pgo=FILE`
  of the demo target records it (`go version -m`).
- regressions: two selections with different workloads (the demo target "after", Debian's
  prometheus "before"); every figure and the order come from `go tool pprof -top` of each side.

Parts (tests/run.py collector:PART): pgo, regressions."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from urllib.parse import quote

from harness import OUT, ROOT, TOOL, check, go_pprof, go_raw, go_top_args, parse_go_top, run
from peers import Collector, DemoTarget, Prometheus, free_port, http_req

# the Makefile's GOENV: the shared build cache, no network (the demo target needs no module)
GOENV = {"GOCACHE": os.path.join(ROOT, "build", "gocache"), "GOPATH": os.path.join(ROOT, "build", "gopath"),
         "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


def sec(ns):
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def go_top(path, index, unit):
    g = go_pprof(go_top_args(index, unit) + [path])
    if g.returncode:
        raise RuntimeError(f"go tool pprof -top {path}: {g.stderr[-1000:]}")
    return parse_go_top(g.stdout)


def stacks(raw):
    """{stack: summed values} of a RawProfile, labels left out (a pgo file has none)."""
    out = {}
    for (vals, stack, _labels), n in raw.samples.items():
        cur = out.get(stack, (0,) * len(vals))
        out[stack] = tuple(a + b * n for a, b in zip(cur, vals))
    return out


def fetch(c, path, dest):
    st, data, hdr = http_req("GET", c.url + path)
    if st == 200:
        with open(dest, "wb") as f:
            f.write(data)
    return st, data, hdr


def collect(t, monitors, name):
    """A collector scraping the monitors' CPU every 2 s until each has 2 records; returns it and
    T, the newest record's end, so every later query (to=T) reads the same records."""
    cfg = "monitors:\n" + "".join(f"- name: {m}\n  endpoint: {url}\n  profile: {{seconds: 2}}\n" for m, url in monitors)
    c = Collector(cfg, name=name)
    ok = c.wait_for(lambda: all(len(c.get_json(f"/api/v1/profiles?type=cpu&name={m}")[1]["data"]) >= 2 for m, _ in monitors), timeout=60)
    t.tool(f"collector {name}: two CPU records of each monitor stored", bool(ok))
    to = max(r["endUnixNano"] for m, _ in monitors for r in c.get_json(f"/api/v1/profiles?type=cpu&name={m}")[1]["data"])
    return c, to


def pgo(t):
    demo = DemoTarget()
    work = tempfile.mkdtemp(prefix="pgo14-")
    c = None
    try:
        c, to = collect(t, [("demo", demo.url)], "pgo")
        sel = f"name=demo&to={sec(to)}"
        full = os.path.join(work, "full.pb.gz")
        pgo_file = os.path.join(work, "default.pgo")
        st, data, _ = fetch(c, f"/api/v1/profile?type=cpu&{sel}", full)
        t.tool("collector pgo: the untrimmed merged CPU profile downloads", st == 200, f"HTTP {st} {data[:200]!r}")
        st, data, hdr = fetch(c, f"/api/v1/pgo?{sel}", pgo_file)

        def served():
            disp = hdr.get("Content-Disposition", "")
            return st == 200 and disp == 'attachment; filename="default.pgo"', f"HTTP {st} {disp!r} {data[:200]!r}"
        check(t, "collector API: /api/v1/pgo answers the profile as an attachment named default.pgo", served)

        def trimmed():
            g, f = go_raw(pgo_file), go_raw(full)
            long_stacks = [s for s in stacks(g) if len(s) > 5]
            labelled = [k for k in g.samples if k[2]]
            # aggregate_callees: a sample's leaf location carries no line inside its function
            # (go prints a line as "func file:LINE:COLUMN s=START")
            leaf_lines = {s[0][3][0] for s in stacks(g) if s and s[0][3]}
            line_no = lambda l: int(re.search(r":(\d+)(?::\d+)? s=-?\d+$", l).group(1))
            with_line = [l for l in leaf_lines if line_no(l) != 0]
            full_leaf = [l for l in {s[0][3][0] for s in stacks(f) if s and s[0][3]} if line_no(l) != 0]
            deep = max(len(s) for s in stacks(f))
            ok = g.types == f.types and not long_stacks and not labelled and not with_line and full_leaf and deep > 5 and len(stacks(g)) < len(stacks(f))
            return ok, (f"types {g.types} vs {f.types}; {len(long_stacks)} stacks over 5 locations; {len(labelled)} labelled samples; "
                        f"leaf lines with a line number {with_line[:5]}; deepest untrimmed stack {deep}; "
                        f"{len(stacks(g))} stacks trimmed, {len(stacks(f))} untrimmed")
        check(t, "collector API: pgo file read by go tool pprof -raw: same sample types, stacks cut to 5 locations, "
              "leaf lines dropped, no labels, fewer distinct stacks", trimmed)

        def same_flat():
            details = []
            for i, unit in ((0, "count"), (1, "nanoseconds")):
                a = {k: v[0] for k, v in go_top(pgo_file, i, unit).items() if v[0]}
                b = {k: v[0] for k, v in go_top(full, i, unit).items() if v[0]}
                if a != b or not a:
                    details.append(f"index {i}: pgo {sorted(a.items())[:10]} vs full {sorted(b.items())[:10]}")
            return not details, "\n".join(details) or "flat equal"
        check(t, "collector API: pgo file keeps every function's flat samples and CPU time (go tool pprof -top of both)", same_flat)

        def untrimmed_equal():
            every = os.path.join(work, "every.pgo")
            st2, d2, _ = fetch(c, f"/api/v1/pgo?{sel}&keep_locations=0&aggregate_callees=false", every)
            if st2 != 200:
                return False, f"HTTP {st2} {d2[:200]!r}"
            a, b = stacks(go_raw(every)), stacks(go_raw(full))
            return a == b, f"{len(a)} vs {len(b)} stacks; differing {[k for k in set(a) ^ set(b)][:3]}"
        check(t, "collector API: pgo with keep_locations=0&aggregate_callees=false has the untrimmed profile's stacks and values", untrimmed_equal)

        def tool_equal():
            out = os.path.join(work, "tool.pgo")
            r = run([TOOL, "pgo", "-o", out, full])
            if r.returncode:
                return False, r.stderr
            a, b = stacks(go_raw(out)), stacks(go_raw(pgo_file))
            r2 = run([TOOL, "pgo", "-o", out, "--keep-locations=2", full])
            short = stacks(go_raw(out)) if r2.returncode == 0 else {}
            return a == b and short and max(len(s) for s in short) == 2, f"{len(a)} vs {len(b)} stacks; --keep-locations=2: {r2.returncode} {r2.stderr}"
        check(t, "pprof-tool pgo of the merged profile = /api/v1/pgo (go tool pprof -raw of both); --keep-locations=2 cuts to 2", tool_equal)

        def tool_errors():
            rs = [run([TOOL, "pgo", full]), run([TOOL, "pgo", "-o", "/dev/null", "--keep-locations=-1", full]),
                  run([TOOL, "pgo", "-o", "/dev/null", "--keep-locations=x", full])]
            return [r.returncode for r in rs] == [2, 2, 2], str([(r.returncode, r.stderr.strip()) for r in rs])
        check(t, "pprof-tool pgo: no -o, a negative or non-numeric --keep-locations exit 2", tool_errors)

        def bad_params():
            want = {"keep_locations=-1": 400, "keep_locations=4097": 400, "keep_locations=x": 400, "aggregate_callees=maybe": 400,
                    "type=heap": 400, "name=nonexistent": 404}
            got = {q: http_req("GET", f"{c.url}/api/v1/pgo?{q}")[0] for q in want}
            return got == want, str(got)
        check(t, "collector API: /api/v1/pgo refuses bad keep_locations, aggregate_callees and type (400), no data 404", bad_params)

        def builds():
            src = os.path.join(work, "src")
            shutil.copytree(os.path.join(ROOT, "tools", "demo-target"), src)
            exe = os.path.join(work, "demo-pgo")
            env = dict(os.environ, **GOENV)
            t0 = time.monotonic()
            b = subprocess.run(["go", "build", f"-pgo={pgo_file}", "-o", exe, "."], cwd=src, env=env,
                               capture_output=True, text=True, timeout=900)
            took = time.monotonic() - t0
            if b.returncode:
                return False, b.stderr[-2000:]
            v = subprocess.run(["go", "version", "-m", exe], capture_output=True, text=True, env=env)
            line = [l.strip() for l in v.stdout.splitlines() if "-pgo=" in l]
            return line == [f"build\t-pgo={pgo_file}"], f"{line} (build {took:.0f} s)\n{v.stdout[-1500:]}"
        check(t, "collector API: go build -pgo=<the downloaded default.pgo> builds the demo target and go version -m records it", builds)
    finally:
        if c:
            c.stop()
            c.cleanup()
        demo.stop()
        shutil.rmtree(work, ignore_errors=True)


def expected_regressions(a_path, b_path, by):
    """The regressions answer as go tool pprof reads both sides: {name: row}, sorted rows."""
    ta, tb = go_top(a_path, 1, "nanoseconds"), go_top(b_path, 1, "nanoseconds")
    tot_a, tot_b = total(a_path), total(b_path)
    rows = []
    for name in set(ta) | set(tb):
        fa, ca = ta.get(name, (0, 0))
        fb, cb = tb.get(name, (0, 0))
        if not (fa or ca or fb or cb):
            continue
        share = lambda v, tot: v / tot if tot else 0.0
        ch = share(ca, tot_a) - share(cb, tot_b) if by == "cum" else share(fa, tot_a) - share(fb, tot_b)
        rows.append({"name": name, "flat": fa, "cum": ca, "baseFlat": fb, "baseCum": cb, "change": ch})
    rows.sort(key=lambda r: (-r["change"], r["name"]))
    return rows, tot_a, tot_b


def total(path):
    """The CPU time of a profile as go tool pprof -top states it ("... of X total")."""
    g = go_pprof(["-top", "-nodecount=1", "-sample_index=1", "-unit=ns", path])
    for l in g.stdout.splitlines():
        if " total" in l and "of " in l:
            return int(float(l.split("of ")[-1].split()[0].replace("ns", "")))
    raise RuntimeError(f"no total in go tool pprof -top {path}: {g.stdout[:500]} {g.stderr[:500]}")


def regressions(t):
    demo, prom = DemoTarget(), Prometheus()
    work = tempfile.mkdtemp(prefix="regr14-")
    c = None
    busy = threading.Event()

    def keep_prometheus_busy():
        # an idle prometheus spends no CPU in a 2 s profile (seen under the sanitizer builds,
        # whose slower start leaves prometheus idle by the first scrape): serving its own
        # metrics over and over gives the "before" side a CPU profile to compare
        while not busy.is_set():
            try:
                http_req("GET", prom.url + "/metrics", timeout=5)
            except OSError:
                busy.wait(0.1)

    loader = threading.Thread(target=keep_prometheus_busy, daemon=True)
    try:
        loader.start()
        c, to = collect(t, [("demo", demo.url), ("prometheus", prom.url)], "regressions")
        busy.set()
        loader.join()
        a, b = os.path.join(work, "after.pb.gz"), os.path.join(work, "before.pb.gz")
        sa, _, _ = fetch(c, f"/api/v1/profile?type=cpu&name=demo&to={sec(to)}", a)
        sb, _, _ = fetch(c, f"/api/v1/profile?type=cpu&name=prometheus&to={sec(to)}", b)
        t.tool("collector regressions: both sides' merged profiles download", sa == 200 and sb == 200, f"{sa} {sb}")
        tots = (total(a), total(b)) if sa == 200 and sb == 200 else (0, 0)
        t.tool("collector regressions: both sides spent CPU (go tool pprof totals)", all(tots), str(tots))
        q = f"/api/v1/regressions?type=cpu&name=demo&to={sec(to)}&base_name=prometheus&base_to={sec(to)}"

        for by in ("flat", "cum"):
            def agree(by=by):
                want, tot_a, tot_b = expected_regressions(a, b, by)
                st, body = c.get_json(q + f"&limit=10000&by={by}")
                if st != 200:
                    return False, f"HTTP {st} {body}"
                d = body["data"]
                got = d["functions"]
                details = []
                if (d["total"], d["baseTotal"]) != (tot_a, tot_b):
                    details.append(f"totals {d['total']}, {d['baseTotal']} vs go {tot_a}, {tot_b}")
                if [r["name"] for r in got] != [r["name"] for r in want]:
                    details.append(f"order: ours {[r['name'] for r in got][:8]} go {[r['name'] for r in want][:8]} ({len(got)} vs {len(want)})")
                for g, w in zip(got, want):
                    for k in ("flat", "cum", "baseFlat", "baseCum"):
                        if g[k] != w[k]:
                            details.append(f"{w['name']} {k}: ours {g[k]} go {w[k]}")
                    if abs(g["change"] - w["change"]) > 1e-12 or abs(g["flatShare"] - (w["flat"] / tot_a)) > 1e-12 or \
                            abs(g["baseCumShare"] - (w["baseCum"] / tot_b)) > 1e-12:
                        details.append(f"{w['name']} shares: ours {g} go {w}")
                # the workloads: the demo target hashes with SHA-256, prometheus barely does
                sha = [r for r in got if "sha256" in r["name"] and r["change"] > 0]
                return not details and sha and d["truncated"] is False and d["sampleType"]["type"] == "cpu", \
                    "\n".join(details[:20]) or f"{len(got)} functions, sha256 rows {sha[:2]}"
            check(t, f"collector API: /api/v1/regressions by={by}: every function's figures and the order equal "
                  "go tool pprof -top of each side", agree)

        def limited():
            st, body = c.get_json(q)
            st3, b3 = c.get_json(q + "&limit=3")
            want, _, _ = expected_regressions(a, b, "flat")
            names = [r["name"] for r in b3["data"]["functions"]]
            return (st == 200 and len(body["data"]["functions"]) == min(20, len(want)) and names == [r["name"] for r in want[:3]]
                    and b3["data"]["truncated"] is True), f"{st} {len(body['data']['functions'])} {names}"
        check(t, "collector API: /api/v1/regressions gives 20 functions by default, limit=3 the 3 that grew most, truncated", limited)

        def bad():
            base = f"/api/v1/regressions?type=cpu&name=demo"
            want = {base: 400, base + "&base_name=prometheus&limit=0": 400, base + "&base_name=prometheus&limit=10001": 400,
                    base + "&base_name=prometheus&by=self": 400, base + "&base_name=nonexistent": 404,
                    "/api/v1/regressions?name=demo&base_name=prometheus": 400,
                    base + "&base_name=prometheus&sample=nosuch": 400}
            got = {k: http_req("GET", c.url + k)[0] for k in want}
            return got == want, str(got)
        check(t, "collector API: /api/v1/regressions: no base, bad limit, by, type or sample 400; an empty base 404", bad)

        def tagged():
            # the same target, its two handlers: go tool pprof -tagfocus cuts each out of the
            # unfiltered merge, and the regressions of tag= against base_tag= must be theirs
            hs, ss = os.path.join(work, "hash.pb.gz"), os.path.join(work, "sort.pb.gz")
            for dest, v in ((hs, "/hash"), (ss, "/sort")):
                g = go_pprof(["-proto", f"-tagfocus=handler=^{v}$", "-output", dest, a])
                if g.returncode:
                    return False, g.stderr[-500:]
            want, tot_a, tot_b = expected_regressions(hs, ss, "flat")
            st, body = c.get_json(f"/api/v1/regressions?type=cpu&name=demo&to={sec(to)}&tag={quote('handler=/hash')}"
                                  f"&base_name=demo&base_to={sec(to)}&base_tag={quote('handler=/sort')}&limit=10000")
            if st != 200:
                return False, f"HTTP {st} {body}"
            d = body["data"]
            got = [(r["name"], r["flat"], r["baseFlat"]) for r in d["functions"]]
            exp = [(r["name"], r["flat"], r["baseFlat"]) for r in want]
            return (tot_a > 0 and tot_b > 0 and (d["total"], d["baseTotal"]) == (tot_a, tot_b) and got == exp), \
                f"totals ours {d['total']}, {d['baseTotal']} go {tot_a}, {tot_b}; ours {got[:5]} go {exp[:5]}"
        check(t, "collector API: /api/v1/regressions with tag= and base_tag= equals go tool pprof -tagfocus of each side", tagged)
    finally:
        busy.set()
        if c:
            c.stop()
            c.cleanup()
        demo.stop()
        prom.stop()
        shutil.rmtree(work, ignore_errors=True)


PARTS = {"pgo": pgo, "regressions": regressions}
