"""Collector tests against real processes: the repo's Go demo target, Debian's prometheus, a
fault server, kill -9, a full tmpfs, and config reloads. Each check is one case in the tally."""
import glob
import json
import os
import signal
import sqlite3
import struct
import subprocess
import tempfile
import time
import zlib

from harness import OUT, TOOL, compare_maps, go_pprof, go_top_args, parse_go_top, parse_our_top, run
from peers import AuthTLSServer, Collector, DemoTarget, FaultServer, Prometheus, free_port, http_req

COLLECTOR = os.path.join(os.path.dirname(TOOL), "collector")


def check(t, name, fn):
    try:
        ok, detail = fn()
        t.record(name, bool(ok), detail)
    except Exception as e:
        import traceback
        t.record(name, False, traceback.format_exc()[-2000:])


def verify_store(data_dir):
    """Independent integrity check of a data dir: every index row points at a complete record
    whose CRC matches. Returns (rows, problems)."""
    db = sqlite3.connect(f"file:{data_dir}/index.db?mode=ro", uri=True)
    rows = db.execute("SELECT id, segment_id, rec_off, rec_len, data_off, data_len, crc FROM profile").fetchall()
    problems = []
    for rid, seg, off, ln, doff, dlen, crc in rows:
        path = os.path.join(data_dir, "segments", f"{seg:016x}.seg")
        if not os.path.exists(path):
            problems.append(f"row {rid}: segment {seg} missing")
            continue
        with open(path, "rb") as f:
            f.seek(off)
            rec = f.read(ln)
        if len(rec) != ln or rec[:4] != b"PPR1":
            problems.append(f"row {rid}: record incomplete or bad magic")
            continue
        mlen, dl, c = struct.unpack("<III", rec[4:16])
        if dl != dlen or 16 + mlen + dl != ln or zlib.crc32(rec[16:]) != crc or c != crc:
            problems.append(f"row {rid}: lengths or CRC do not match")
    db.close()
    return len(rows), problems


def cli_cases(t):
    def run_c(*args):
        return subprocess.run([COLLECTOR, *args], capture_output=True, text=True, timeout=20)

    def bad_flags():
        out = []
        for args in (["--bogus"], ["-p", "99999", "-c", "x"], ["--retention-size", "5XB", "-c", "x"],
                     ["--retention-time", "-1d", "-c", "x"], ["-l", "loud", "-c", "x"], [], ["-c"]):
            p = run_c(*args)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            if p.returncode != 2 or len(lines) != 1:
                out.append(f"{args}: exit {p.returncode}, stderr {p.stderr!r}")
        return not out, "\n".join(out)
    check(t, "collector cli: bad flags and values exit 2 with one line", bad_flags)

    def check_config():
        d = tempfile.mkdtemp()
        good, bad = os.path.join(d, "good.yaml"), os.path.join(d, "bad.yaml")
        open(good, "w").write("monitors:\n- name: a\n  endpoint: http://127.0.0.1:1\n")
        open(bad, "w").write("monitors:\n- name: a\n  endpoint: http://127.0.0.1:1\n  profile: {seconds: 0}\n")
        g, b = run_c("--check-config", good), run_c("--check-config", bad)
        ok = g.returncode == 0 and b.returncode == 1 and "bad.yaml:4:" in b.stderr and "monitors[0].profile.seconds" in b.stderr
        return ok, f"good: {g.returncode} {g.stdout} {g.stderr}\nbad: {b.returncode} {b.stderr}"
    check(t, "collector cli: --check-config validates with file:line and key path", check_config)

    def version_help():
        v, h = run_c("--version"), run_c("--help")
        return v.returncode == 0 and "revision" in v.stdout and h.returncode == 0 and "--retention-size" in h.stdout, v.stdout
    check(t, "collector cli: --version and --help", version_help)


def real_targets(t):
    """Demo target (all seven types) and Debian's prometheus: collected, stored, read back
    through the API; go tool pprof agrees with the stored totals."""
    demo, prom = DemoTarget(), Prometheus()
    types = ["cpu", "heap", "allocs", "block", "mutex", "goroutine", "threadcreate"]
    cfg = f"""
self_telemetry: {{pprof_port: {free_port()}, interval_seconds: 2}}
monitors:
- name: demo
  endpoint: {demo.url}
  labels: {{__k8s_namespace: test, __k8s_name: demo}}
  profile: {{seconds: 2}}
  heap: {{interval_seconds: 2}}
  allocs: {{seconds: 2}}
  block: {{seconds: 2}}
  mutex: {{seconds: 2}}
  goroutine: {{interval_seconds: 2}}
  threadcreate: {{interval_seconds: 2}}
- name: demo-second-cpu
  endpoint: {demo.url}
  profile: {{seconds: 2}}
- name: prometheus
  endpoint: {prom.url}
  sampling:
    profile: {{seconds: 2}}
    heap: {{interval_seconds: 2}}
    goroutine: {{interval_seconds: 2}}
    allocs: {{seconds: 2}}
"""
    c = Collector(cfg, name="real")
    try:
        want = [("demo", ty) for ty in types] + [("prometheus", ty) for ty in ("cpu", "heap", "goroutine", "allocs")] + [("self", "cpu")]

        def all_collected():
            for mon, ty in want:
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={mon}")
                if not body["data"]:
                    return False
            return True
        ok = c.wait_for(all_collected, timeout=45)
        missing = [f"{m}/{ty}: {c.target(m, ty)}" for m, ty in want if not c.get_json(f"/api/v1/profiles?type={ty}&name={m}")[1]["data"]]
        t.record("collector: every profile type of demo, prometheus and self collected and stored", ok, "\n".join(missing))

        # go tool pprof reads what the API serves, and agrees with the stored totals
        for mon, ty in want:
            def agree(mon=mon, ty=ty):
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={mon}")
                rows = body["data"]
                ids_before = {r["id"] for r in rows}
                stypes = rows[0]["sampleTypes"].split(",")
                f = os.path.join(OUT, f"api-{mon}-{ty}.pb.gz")
                to = max(r["endUnixNano"] for r in rows)
                st, data, hdr = http_req("GET", f"{c.url}/api/v1/profile?type={ty}&name={mon}&agg=sum&to={to // 10**9}.{to % 10**9:09d}")
                if st != 200 or "attachment" not in hdr.get("Content-Disposition", ""):
                    return False, f"HTTP {st} {data[:200]!r}"
                open(f, "wb").write(data)
                details = []
                for i, stype in enumerate(stypes):
                    unit = stype.split("/")[1]
                    expected = sum(r["totals"][i] for r in rows if r["endUnixNano"] <= to)
                    g = go_pprof(go_top_args(i, unit) + [f])
                    if g.returncode:
                        return False, g.stderr
                    total = [l for l in g.stdout.splitlines() if l.startswith("Showing nodes accounting for")]
                    got = None
                    if total:
                        tok = total[0].split(" of ")[-1].replace(" total", "").strip()
                        import re
                        got = int(float(re.match(r"-?[0-9.]+", tok).group(0)))
                    elif expected == 0:
                        got = 0
                    # go's total is the sum of |value|; delta profiles hold negative in-use values,
                    # whose signed sum is go's sum of flat values
                    go_nodes = parse_go_top(g.stdout)
                    flat_sum = sum(v[0] for v in go_nodes.values())
                    if got != expected and flat_sum != expected:
                        details.append(f"{stype}: go total {got} (flat sum {flat_sum}), stored totals {expected} ({len(rows)} records)")
                    ours = parse_our_top(run([TOOL, "top", "--raw", f"--sample-index={i}", f], check=True).stdout)
                    diff = compare_maps(ours, go_nodes)
                    if diff:
                        details.append(f"{stype}: {diff}")
                return not details, "\n".join(details)
            check(t, f"collector API: {mon}/{ty} merged profile opens in go tool pprof, totals agree", agree)

        def cpu_exclusive():
            c.wait_for(lambda: c.target("demo-second-cpu", "cpu")["scrapesTotal"] >= 2 and c.target("demo", "cpu")["scrapesTotal"] >= 2, timeout=20)
            a, b = c.target("demo", "cpu"), c.target("demo-second-cpu", "cpu")
            ok = a["failuresTotal"] == 0 and b["failuresTotal"] == 0 and a["scrapesTotal"] > 0 and b["scrapesTotal"] > 0
            return ok, json.dumps([a, b])[:1500]
        check(t, "collector: two CPU monitors of one process never overlap (no 'already in use')", cpu_exclusive)

        def series_and_labels():
            st, body = c.get_json("/api/v1/series?__k8s_namespace=test&type=cpu")
            d = body["data"]
            ok = st == 200 and len(d) == 1 and d[0]["labels"]["__k8s_name"] == "demo" and d[0]["labels"]["monitor"] == "demo"
            st2, _ = c.get_json("/api/v1/profile?type=cpu&name=nonexistent")
            st3, b3 = c.get_json("/api/v1/profile?type=cpu&bad-label=1")
            return ok and st2 == 404 and st3 == 400, f"{st} {d} {st2} {st3} {b3}"
        check(t, "collector API: series by label selector; 404 for no match, 400 for a bad label", series_and_labels)

        def metrics():
            names = ["collector_scrapes_total", "collector_scrape_failures_total", "collector_scrape_duration_seconds_bucket",
                     "collector_ingested_profiles_total", "collector_ingested_bytes_total", "collector_store_bytes",
                     "collector_retention_deleted_segments_total", "collector_config_reloads_total", "collector_targets_up",
                     "collector_config_last_reload_successful"]
            missing = [n for n in names if c.metric(n) is None]
            return not missing and c.metric("collector_ingested_profiles_total") > 10, f"missing {missing}"
        check(t, "collector /metrics: scrapes, failures, durations, ingest, store, retention, reloads, targets up", metrics)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()
        prom.stop()


def faults(t):
    fs, demo = FaultServer(), DemoTarget()
    closed = free_port()
    cases = {
        "hang-headers": ("heap", f"http://127.0.0.1:{fs.port}/hang-headers", "Timeout"),
        "hang-body": ("heap", f"http://127.0.0.1:{fs.port}/hang-body", "Timeout"),
        "status-500": ("heap", f"http://127.0.0.1:{fs.port}/500", "HTTP 500"),
        "status-404": ("heap", f"http://127.0.0.1:{fs.port}/404", "HTTP 404"),
        "garbage": ("heap", f"http://127.0.0.1:{fs.port}/garbage", "invalid profile"),
        "gzip-bomb": ("heap", f"http://127.0.0.1:{fs.port}/bomb", "exceeds the limit"),
        "gzip-bomb-encoding": ("heap", f"http://127.0.0.1:{fs.port}/bomb-encoding", "exceeds max_body_bytes"),
        "over-cap": ("heap", f"http://127.0.0.1:{fs.port}/big", "exceeds max_body_bytes"),
        "refused": ("heap", f"http://127.0.0.1:{closed}", "onnect"),
        "unresolvable": ("heap", "http://no-such-host.invalid:6060", "resolve"),
        "tls-error": ("heap", f"https://127.0.0.1:{fs.port}/500", "SSL"),
        "cpu-busy": ("cpu", f"http://127.0.0.1:{fs.port}/busy", "already in use"),
    }
    mons = []
    for name, (ty, ep, _) in cases.items():
        key = "profile: {seconds: 1}" if ty == "cpu" else "heap: {interval_seconds: 1}"
        extra = "  max_body_bytes: 64KiB\n" if name == "over-cap" else ""
        mons.append(f"- name: {name}\n  endpoint: {ep}\n  timeout_seconds: 2\n{extra}  {key}\n")
    cfg = "monitors:\n" + "".join(mons) + f"- name: good\n  endpoint: {demo.url}\n  goroutine: {{interval_seconds: 1}}\n"
    c = Collector(cfg, name="faults")
    try:
        start = time.time()
        c.wait_for(lambda: all(c.target(n, ty)["failuresTotal"] >= 1 for n, (ty, _, _) in cases.items()), timeout=25)
        elapsed = time.time() - start
        for name, (ty, _, text) in cases.items():
            def one(name=name, ty=ty, text=text):
                tg = c.target(name, ty)
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={name}")
                ok = tg["health"] == "down" and text in tg["lastError"] and body["data"] == [] and tg["failuresTotal"] >= 1
                if name == "cpu-busy":
                    ok = ok and tg["busy"]
                return ok, json.dumps(tg)
            check(t, f"collector fault {name}: clear error in target health, nothing stored", one)

        def good_undisturbed():
            tg = c.target("good", "goroutine")
            # interval 1 s: at least ~0.6 scrapes per second despite hanging peers
            return tg["health"] == "up" and tg["scrapesTotal"] >= 0.6 * elapsed and tg["failuresTotal"] == 0, f"{elapsed:.1f}s {tg}"
        check(t, "collector faults: a healthy target keeps its schedule beside failing ones", good_undisturbed)

        def backoff():
            tg = c.target("refused", "heap")
            # failing every second without backoff would be ~elapsed failures; with it far fewer
            return 1 <= tg["failuresTotal"] <= max(6, elapsed / 2), json.dumps(tg)
        check(t, "collector faults: failing targets back off", backoff)
        check(t, "collector faults: /healthz and /readyz stay up", lambda: (http_req("GET", c.url + "/healthz")[0] == 200 and http_req("GET", c.url + "/readyz")[0] == 200, ""))
    finally:
        c.stop()
        c.cleanup()
        fs.stop()
        demo.stop()


def tls_auth(t):
    from harness import TESTDATA
    token, user, pw = "s3cret-token", "scraper", "pa ss"
    srv = AuthTLSServer(os.path.join(TESTDATA, "gotarget", "heap.pb.gz"), token, user, pw)
    d = tempfile.mkdtemp(prefix="creds-")
    tok, pwf = os.path.join(d, "token"), os.path.join(d, "password")
    open(tok, "w").write(token + "\n")
    open(pwf, "w").write(pw + "\n")
    https = f"https://127.0.0.1:{srv.tls_port}"
    plain = f"http://127.0.0.1:{srv.plain_port}"
    hdr = "  headers: {X-Team: core}\n  heap: {interval_seconds: 1}\n"
    cfg = ("monitors:\n"
           f"- name: tls-ca-servername\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {srv.ca}, server_name: pprof.test}}\n{hdr}"
           f"- name: tls-insecure\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{insecure_skip_verify: true}}\n{hdr}"
           f"- name: tls-wrong-name\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {srv.ca}, server_name: other.test}}\n{hdr}"
           f"- name: basic-auth\n  endpoint: {plain}\n  basic_auth: {{username: {user}, password_file: {pwf}}}\n{hdr}"
           f"- name: no-credentials\n  endpoint: {plain}\n{hdr}")
    c = Collector(cfg, name="tls")
    try:
        c.wait_for(lambda: all(tg["scrapesTotal"] >= 1 for tg in c.targets()), timeout=15)
        expect = {"tls-ca-servername": ("up", ""), "tls-insecure": ("up", ""), "tls-wrong-name": ("down", "SSL"),
                  "basic-auth": ("up", ""), "no-credentials": ("down", "HTTP 401")}
        for name, (health, text) in expect.items():
            def one(name=name, health=health, text=text):
                tg = c.target(name, "heap")
                return tg["health"] == health and text in tg["lastError"], json.dumps(tg)
            check(t, f"collector tls/auth {name}: {health}", one)
        check(t, "collector tls server_name: Host header keeps the real address",
              lambda: (f"127.0.0.1:{srv.tls_port}" in srv.hosts, str(srv.hosts[:5])))
    finally:
        c.stop()
        c.cleanup()
        srv.stop()


def web_api(t):
    """Issue 4's API on a store filled by scraping the demo target, checked against go tool pprof;
    seed routes; limits; optional authentication."""
    demo = DemoTarget()
    d = tempfile.mkdtemp(prefix="auth-")
    users, token = os.path.join(d, "users"), os.path.join(d, "token")
    hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret pass"], capture_output=True, text=True).stdout.strip()
    open(users, "w").write(f"# users\nalice:{hashed}\n")
    open(token, "w").write("0123456789abcdef-token\n")
    cfg = f"monitors:\n- name: demo\n  endpoint: {demo.url}\n  profile: {{seconds: 2}}\n  heap: {{interval_seconds: 2}}\n"
    c = Collector(cfg, extra_args=["--web-basic-auth-file", users, "--web-bearer-token-file", token], name="webapi")
    import base64
    import urllib.request
    basic = "Basic " + base64.b64encode(b"alice:s3cret pass").decode()

    def get(path, auth=basic):
        req = urllib.request.Request(c.url + path, headers={"Authorization": auth} if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)
    try:
        def auth():
            out = []
            for path, a, want in (("/api/v1/targets", None, 401), ("/api/v1/targets", basic, 200),
                                  ("/api/v1/targets", "Basic " + base64.b64encode(b"alice:wrong").decode(), 401),
                                  ("/api/v1/targets", "Bearer 0123456789abcdef-token", 200), ("/api/v1/targets", "Bearer nope", 401),
                                  ("/metrics", None, 401), ("/", None, 401), ("/healthz", None, 200), ("/readyz", None, 200)):
                st, body, hdr = get(path, a)
                if st != want or (st == 401 and "WWW-Authenticate" not in hdr):
                    out.append(f"{path} with {a and a[:12]}: {st}, want {want}")
            return not out, "\n".join(out)
        check(t, "collector web auth: basic (crypt hash) and bearer required, health endpoints open", auth)
        c.wait_for(lambda: len(json.loads(get("/api/v1/profiles?type=cpu&name=demo")[1])["data"]) >= 4, timeout=30)
        rows = json.loads(get("/api/v1/profiles?type=cpu&name=demo")[1])["data"]
        sec = lambda ns: f"{ns // 10**9}.{ns % 10**9:09d}"
        to = rows[-1]["endUnixNano"]
        mid = rows[len(rows) // 2]["endUnixNano"]
        files = {}
        for name, q in (("all", f"to={sec(to)}"), ("base", f"to={sec(mid - 1)}"), ("cmp", f"from={sec(mid)}&to={sec(to)}"),
                        ("diff", f"from={sec(mid)}&to={sec(to)}&base_to={sec(mid - 1)}")):
            st, data, _ = get(f"/api/v1/profile?type=cpu&name=demo&{q}")
            files[name] = os.path.join(OUT, f"webapi-{name}.pb.gz")
            open(files[name], "wb").write(data)

        def render_vs_go():
            st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&to={sec(to)}&top=20000&max_nodes=50")
            r = json.loads(body)["data"]
            g = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + [files["all"]]).stdout)
            ours = {e["name"]: (e["flat"], e["cum"]) for e in r["top"]}
            root = r["nodes"][0]
            kids = sum(n[3] for n in r["nodes"] if n[1] == 0)
            ok = ours == g and root[3] == r["total"] and len(r["nodes"]) <= 50 and r["pruned"]["nodes"] > 0 and kids <= root[3]
            return ok, compare_maps(ours, g) + f" root={root} total={r['total']} nodes={len(r['nodes'])} pruned={r['pruned']}"
        check(t, "collector /api/v1/render: top table equals go tool pprof; flame graph pruned to max_nodes with totals kept", render_vs_go)

        def base_vs_go():
            ours = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + [files["diff"]]).stdout)
            theirs = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + ["-base", files["base"], files["cmp"]]).stdout)
            st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&from={sec(mid)}&to={sec(to)}&base_to={sec(mid - 1)}&top=20000")
            r = json.loads(body)["data"]
            deltas = {e["name"]: e["flat"] - e["baseFlat"] for e in r["top"]}
            want = {k: v[0] for k, v in theirs.items()}
            # every function of the comparison carries base - comparison as go computes it
            bad = {k: (deltas[k], want.get(k, 0)) for k in deltas if deltas[k] != want.get(k, 0)}
            return compare_maps(ours, theirs) == "" and not bad and r["baseTotal"] > 0, compare_maps(ours, theirs) + str(list(bad.items())[:5])
        check(t, "collector base subtraction (/api/v1/profile and render) equals go tool pprof -base", base_vs_go)

        def timeline():
            st, body, _ = get(f"/api/v1/timeline?type=cpu&name=demo&sample=cpu&to={sec(to)}")
            pts = json.loads(body)["data"][0]["points"]
            want = [(r["endUnixNano"], r["totals"][1]) for r in rows]
            return [(p[1], p[2]) for p in pts] == want, f"{pts[:3]} vs {want[:3]}"
        check(t, "collector /api/v1/timeline: one point per stored profile with its total", timeline)

        def seed_routes():
            st1, body1, h1 = get("/raw")
            import http.client
            hc = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
            hc.request("GET", "/pprof/web/some/old/link", headers={"Authorization": basic})
            resp = hc.getresponse()
            st2, h2 = resp.status, dict(resp.getheaders())
            hc.close()
            st3, body3, h3 = get("/dashboard")
            st4, _, h4 = get("/ui/app.js")
            st5, _, _ = get("/ui/../../etc/passwd")
            ok = st1 == 200 and b"demo" in body1 and st2 == 302 and h2.get("Location") == "/explorer" and st3 == 200
            ok = ok and "script-src 'self'" in h3.get("Content-Security-Policy", "") and st4 == 200 and "javascript" in h4.get("Content-Type", "") and st5 == 404
            return ok, f"{st1} {st2} {h2.get('Location')} {st3} {st4} {st5}"
        check(t, "collector seed routes: /raw, /dashboard, /pprof/web redirect; assets only from the compiled-in table", seed_routes)

        def limits():
            many = "&".join(f"l{i}=x" for i in range(70))
            out = []
            for path, want in ((f"/api/v1/series?{many}", 400), ("/api/v1/series?x=" + "a" * 2000, 400),
                               ("/api/v1/render?type=cpu&name=demo&max_nodes=0", 400), ("/api/v1/render?type=cpu&name=demo&sample=nope", 400),
                               ("/api/v1/render?type=cpu&name=demo&from=yesterday", 400), ("/api/v1/profile?type=cpu&name=demo&base_name=nobody", 404)):
                st, body, _ = get(path)
                if st != want:
                    out.append(f"{path[:60]}: {st} {body[:100]!r}")
            return not out, "\n".join(out)
        check(t, "collector API limits and bad parameters: clear 400/404 answers", limits)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()


def crash(t):
    demo = DemoTarget()
    mons = "".join(f"- name: m{i}\n  endpoint: {demo.url}\n  goroutine: {{interval_seconds: 0.05}}\n  heap: {{interval_seconds: 0.05}}\n" for i in range(8))
    c = Collector("monitors:\n" + mons, name="crash")
    try:
        ok_before = c.wait_for(lambda: c.metric("collector_ingested_profiles_total") > 200, timeout=30)
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait()
        rows, problems = verify_store(c.data)
        c.logf.close()
        c.start()

        def restarted():
            rows2, problems2 = verify_store(c.data)
            resumed = c.wait_for(lambda: c.metric("collector_ingested_profiles_total") > 50, timeout=20)
            st, body = c.get_json("/api/v1/series")
            ok = ok_before and not problems2 and rows2 >= rows - 1 and resumed and st == 200 and len(body["data"]) >= 8
            return ok, f"before restart: {rows} rows, problems {problems[:3]}; after: {rows2} rows, {problems2[:3]}; resumed {resumed}"
        check(t, "collector kill -9 during ingest: integrity holds, no dangling records, scraping resumes", restarted)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def disk(t):
    prom = Prometheus()
    mons = "".join(f"- name: p{i}\n  endpoint: {prom.url}\n  heap: {{interval_seconds: 0.05}}\n  goroutine: {{interval_seconds: 0.05}}\n" for i in range(6))
    budget = 4 << 20
    c = Collector("monitors:\n" + mons, extra_args=["--retention-size", "4MiB"], name="budget")
    try:
        peak = 0
        end = time.time() + 20
        while time.time() < end:
            peak = max(peak, du(c.data))
            time.sleep(0.2)
        deleted = c.metric("collector_retention_deleted_segments_total")
        seg = 1 << 20  # segment size for a 4 MiB budget (budget / 20, at least 1 MiB)
        check(t, "collector retention: disk budget respected under sustained ingest",
              lambda: (peak <= budget + seg + (256 << 10) and deleted and deleted > 0, f"peak {peak} bytes, budget {budget}, deleted segments {deleted}"))
    finally:
        c.stop()
        c.cleanup()

    # a full disk: a 3 MiB tmpfs and no retention limit
    mnt = tempfile.mkdtemp(prefix="tmpfs-")
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], capture_output=True, text=True)
    if m.returncode != 0:
        t.record("collector ENOSPC: tmpfs mounted (needs root)", False, m.stderr)
        prom.stop()
        return
    c = Collector("monitors:\n" + mons, data_dir=os.path.join(mnt, "data"), name="enospc")
    try:
        full = c.wait_for(lambda: (c.metric("collector_dropped_profiles_total") or 0) > 0, timeout=40)
        after = c.metric("collector_ingested_profiles_total")
        more = c.wait_for(lambda: c.metric("collector_ingested_profiles_total") > after + 20, timeout=20)
        st, body = c.get_json("/api/v1/series")
        rows, problems = verify_store(c.data)
        check(t, "collector ENOSPC on a small tmpfs: logs, drops, frees space, keeps storing and serving",
              lambda: (full and more and st == 200 and not problems and "disk full" in open(c.log).read(),
                       f"full={full} more={more} status={st} problems={problems[:3]}"))
    finally:
        c.stop()
        c.cleanup()
        subprocess.run(["umount", "-l", mnt])
        prom.stop()


def reload(t):
    demo = DemoTarget()
    base = f"monitors:\n- name: steady\n  endpoint: {demo.url}\n  goroutine: {{interval_seconds: 1}}\n"
    c = Collector(base, name="reload")
    try:
        c.wait_for(lambda: c.target("steady", "goroutine")["scrapesTotal"] >= 2, timeout=15)

        def valid():
            before = c.target("steady", "goroutine")
            c.write_config(base + f"- name: added\n  endpoint: {demo.url}\n  heap: {{interval_seconds: 1}}\n")
            st, body, _ = http_req("POST", c.url + "/-/reload", b"")
            after = c.target("steady", "goroutine")
            added = c.target("added", "heap")
            # the unchanged job keeps its count and its place in the schedule (no reset, no gap)
            ok = st == 200 and added is not None and after["scrapesTotal"] >= before["scrapesTotal"] and before["scrapesTotal"] > 0
            return ok, f"{st} {body!r} before={before} after={after}"
        check(t, "collector reload POST /-/reload: new target added, unchanged target keeps its schedule", valid)

        def invalid():
            before = c.target("steady", "goroutine")["scrapesTotal"]
            c.write_config(base + "- name: broken\n  endpoint: ftp://nope\n")
            st, body, _ = http_req("POST", c.url + "/reload", b"")
            ok = st == 400 and b"config.yaml:6:" in body and b"endpoint" in body
            ok = ok and c.metric("collector_config_last_reload_successful") == 0
            ok = ok and c.target("added", "heap") is not None and c.target("broken", "heap") is None
            ok = ok and c.wait_for(lambda: c.target("steady", "goroutine")["scrapesTotal"] > before + 1, timeout=5)
            return ok, f"{st} {body!r}"
        check(t, "collector reload with an invalid config: 400 with the error, old config kept, metric 0", invalid)

        def file_change():
            gaps = []
            prev = c.target("steady", "goroutine")["scrapesTotal"]
            c.write_config(base + f"- name: via-file\n  endpoint: {demo.url}\n  mutex: {{seconds: 1}}\n", atomic=True)
            ok = c.wait_for(lambda: c.target("via-file", "mutex") is not None, timeout=5)
            ok = ok and c.metric("collector_config_last_reload_successful") == 1
            # no gap: the steady target keeps scraping every second through the reloads
            start = time.time()
            c.wait_for(lambda: c.target("steady", "goroutine")["scrapesTotal"] >= prev + 3, timeout=6)
            took = time.time() - start
            return ok and took < 5.5, f"reloaded={ok} three scrapes took {took:.1f}s"
        check(t, "collector reload on file change (rename, as a ConfigMap): applied without a scrape gap", file_change)

        def sighup():
            c.write_config(base)
            c.proc.send_signal(signal.SIGHUP)
            ok = c.wait_for(lambda: c.target("via-file", "mutex") is None, timeout=5)
            return ok and c.target("steady", "goroutine") is not None, ""
        check(t, "collector reload on SIGHUP: removed targets stop", sighup)

        def configmap_swap():
            # the kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/;
            # an update writes a new timestamped dir and renames a new ..data symlink over the old
            vol = os.path.join(c.dir, "volume")
            os.makedirs(os.path.join(vol, "..v1"))
            open(os.path.join(vol, "..v1", "config.yaml"), "w").write(base)
            os.symlink("..v1", os.path.join(vol, "..data"))
            os.symlink("..data/config.yaml", os.path.join(vol, "config.yaml"))
            c.stop()
            c.config = os.path.join(vol, "config.yaml")
            c.logf = open(c.log, "a")
            c.start()
            os.makedirs(os.path.join(vol, "..v2"))
            open(os.path.join(vol, "..v2", "config.yaml"), "w").write(base + f"- name: from-configmap\n  endpoint: {demo.url}\n  heap: {{interval_seconds: 1}}\n")
            os.symlink("..v2", os.path.join(vol, "..data_tmp"))
            os.rename(os.path.join(vol, "..data_tmp"), os.path.join(vol, "..data"))
            ok = c.wait_for(lambda: c.target("from-configmap", "heap") is not None, timeout=5)
            return ok, open(c.log).read()[-800:]
        check(t, "collector reload on a ConfigMap volume update (..data symlink swap), no sidecar", configmap_swap)
        check(t, "collector stops cleanly on SIGTERM (exit 0)", lambda: (c.stop() == 0, open(c.log).read()[-500:]))
    finally:
        c.stop()
        c.cleanup()
        demo.stop()


PARTS = {f.__name__: f for f in (cli_cases, real_targets, faults, tls_auth, web_api, crash, disk, reload)}


def run_suite(t, parts=None):
    os.makedirs(OUT, exist_ok=True)
    unknown = set(parts or ()) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown collector parts {sorted(unknown)} (one of {', '.join(PARTS)})")
    for part in [PARTS[p] for p in (parts or PARTS)]:
        try:
            part(t)
        except Exception:
            import traceback
            t.record(f"collector suite part {part.__name__} ran to the end", False, traceback.format_exc()[-3000:])
