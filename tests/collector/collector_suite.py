"""Collector tests against real processes: the repo's Go demo target, Debian's prometheus, a
fault server, servers of profiles with chosen values, TLS peers, kill -9, a full tmpfs, and
config reloads. Each check is one case in the tally.

Expected values come from outside the collector: go tool pprof reading what the API serves
(and each stored record on its own), arithmetic on values a peer served, `du` for the disk,
and request times logged by the peers for schedules (intervals are measured where a scrape is
seen, at the peer, against the grid the schedule promises).

Parts (tests/run.py collector:PART,...): see PARTS at the end."""
import base64
import glob
import datetime
import html
import http.client
import json
import math
import os
import re
import signal
import sqlite3
import struct
import shutil
import subprocess
import tempfile
import threading
import time
import traceback
import zlib
from urllib.parse import quote

from harness import OUT, ROOT, TESTDATA, TOOL, check, compare_maps, decode_render_binary, go_pprof, go_raw, go_top_args, parse_go_peek, parse_go_top, parse_our_top, run
import labels
import pgo_api
import objstore
import shards
import fanout
import otlp
import push
import querier
import web_load
from peers import AuthTLSServer, Collector, DemoTarget, FaultServer, Prometheus, SeriesServer, free_port, http_req, stop_leftovers


def sec(ns):
    """Unix seconds with nine decimals, exact (the API's time format)."""
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def rfc3339(ns, suffix="Z"):
    """RFC 3339 UTC with nanoseconds, written out from the integer: no float rounding."""
    d = datetime.datetime.fromtimestamp(ns // 10**9, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}{suffix}"


def go_flat(path, index=0, unit="bytes"):
    """{function: flat} of one sample type as go tool pprof reads path (functions with a flat
    value of 0, callers only, left out)."""
    g = go_pprof(go_top_args(index, unit) + [path])
    if g.returncode:
        raise RuntimeError(f"go tool pprof {path}: {g.stderr[-1000:]}")
    return {k: v[0] for k, v in parse_go_top(g.stdout).items() if v[0]}


def go_sums(path):
    """Per sample type, the sum of every sample's value as go tool pprof -raw reads path (go's
    own "of X total" sums absolute values, which differs for delta profiles with negative
    in-use values; flat values leave out samples with no stack)."""
    r = go_raw(path)
    sums = [0] * len(r.types)
    for (values, _, _), n in r.samples.items():
        for i, v in enumerate(values):
            sums[i] += v * n
    return sums


# How late a scrape may reach its peer on a loaded machine (other builds and suites run beside
# ours). Every schedule check allows this much lateness, and no more: the broken behaviours the
# checks catch (no backoff, backoff instead of the busy retry, a missed or moved slot, a reload
# that restarts the job) are off by a second or more, or early, which lateness cannot explain.
LATE = 0.5
# False under ThreadSanitizer: its own pauses (a global lock while a worker's 200 MiB of
# inflated gzip bomb is freed) hold the loop for a second and more, which says nothing about our
# schedules; the rel and asan runs check them. The faults part leaves its schedule cases out
# then (not run, not counted).
SCHEDULES = True
# False under ThreadSanitizer: its runtime takes SIGPROF and runs our handler later itself, with
# the signal unblocked, so a sample can land inside the handler (in the rel and asan builds the
# kernel blocks it while the handler runs, and a stack never starts there)
SIGNALS_DIRECT = True


def grid_slots(times, period, anchor, early=0.05):
    """{slot: [residuals]} of arrival times on the grid anchor + k * period; a residual is how
    late an arrival is after its slot (at most `early` before it counts as that slot)."""
    slots = {}
    for x in times:
        k = math.floor((x - anchor + early) / period)
        slots.setdefault(k, []).append(x - anchor - k * period)
    return slots


def grid_anchor(times, period):
    """The grid the arrivals keep: lateness only delays an arrival, so the earliest arrival
    relative to its slot marks the grid."""
    return min(x - round((x - times[0]) / period) * period for x in times)


def grid_problems(times, period, anchor, late, start=None, end=None):
    """'' when every slot of the grid from start to end holds exactly one arrival at most
    `late` seconds after it (none missing, none doubled, none early), else what is wrong."""
    slots = grid_slots([x for x in times if (start is None or x >= start) and (end is None or x <= end)], period, anchor)
    if not slots:
        return "no arrivals"
    out = []
    for k in range(min(slots), max(slots) + 1):
        rs = slots.get(k, [])
        if len(rs) != 1:
            out.append(f"slot {k}: {len(rs)} arrivals {[round(r, 3) for r in rs]}")
        elif rs[0] > late:
            out.append(f"slot {k}: {rs[0]:.3f}s late")
    return "; ".join(out)


def intervals(times):
    return [round(b - a, 3) for a, b in zip(times, times[1:])]


def waits_outside(times, want):
    """(waits between arrivals, those outside their window): the k-th wait must lie within
    want[k] = (lo, hi). A wait is measured from arrival to arrival, so it is never shorter than
    the collector's (0.02 s for the peer's clock) and up to LATE longer on a loaded machine."""
    d = intervals(times)
    return d, [f"wait {k + 1}: {x}s, want {lo}..{hi}" for k, (x, (lo, hi)) in enumerate(zip(d, want))
               if not lo - 0.02 <= x <= hi + LATE]


def _varints(b, n):
    """The first n unsigned varints of b."""
    out, v, shift = [], 0, 0
    for c in b:
        v |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            out.append(v)
            v, shift = 0, 0
            if len(out) == n:
                break
    return out


def symbol_chain_problem(f, head, before):
    """'' when the symbol records a v2 record needs (from head back to the segment's first, each
    "PPS2" | lens | crc | data = varint raw_len | raw deflate of prev+1, the counts before it and
    the counts it adds, ...) are whole, match their CRCs and continue one another's counts."""
    links, off = [], head
    while off >= 0:
        if off >= before:
            return f"symbol record at {off} not before its profile"
        f.seek(off)
        hdr = f.read(16)
        if len(hdr) != 16 or hdr[:4] != b"PPS2":
            return f"no symbol record at {off}"
        mlen, dl, c = struct.unpack("<III", hdr[4:16])
        body = f.read(mlen + dl)
        if len(body) != mlen + dl or zlib.crc32(body) != c:
            return f"symbol record at {off}: incomplete or CRC mismatch"
        data = body[mlen:]
        raw_len = _varints(data, 1)[0]
        i = 0
        while data[i] & 0x80:
            i += 1
        raw = zlib.decompress(data[i + 1:], -15)
        if len(raw) != raw_len:
            return f"symbol record at {off}: inflates to {len(raw)} bytes, says {raw_len}"
        v = _varints(raw, 9)
        links.append((off, v[1:5], v[5:9]))
        before, off = off, v[0] - 1
    counts = [0, 0, 0, 0]
    for off, base, add in reversed(links):
        if base != counts:
            return f"symbol record at {off}: counts {base} do not continue {counts}"
        counts = [a + b for a, b in zip(counts, add)]
    return ""


def verify_store(data_dir):
    """Independent integrity check of a data dir: every index row points at a complete record
    whose CRC matches, and a v2 record ("PPR2") at a sound chain of symbol records (store_sym.h).
    Returns (rows, problems)."""
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
            if len(rec) != ln or rec[:4] not in (b"PPR1", b"PPR2"):
                problems.append(f"row {rid}: record incomplete or bad magic")
                continue
            mlen, dl, c = struct.unpack("<III", rec[4:16])
            if dl != dlen or 16 + mlen + dl != ln or zlib.crc32(rec[16:]) != crc or c != crc:
                problems.append(f"row {rid}: lengths or CRC do not match")
                continue
            if rec[:4] == b"PPR2":
                why = symbol_chain_problem(f, json.loads(rec[16:16 + mlen]).get("sym", -1), off)
                if why:
                    problems.append(f"row {rid}: {why}")
    db.close()
    return len(rows), problems


def cli_cases(t):
    def run_c(*args):
        return subprocess.run([Collector.binary, *args], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, **(Collector.env or {})))

    def bad_flags():
        out = []
        for args in (["--bogus"], ["-p", "99999", "-c", "x"], ["--retention-size", "5XB", "-c", "x"],
                     ["--retention-time", "-1d", "-c", "x"], ["-l", "loud", "-c", "x"], [], ["-c"],
                     # the shutdown bound (at most 60 s) and the web's limits
                     *([f, v, "-c", "x"] for f, v in (("--shutdown-grace", "61s"), ("--shutdown-grace", "60.001s"),
                                                      ("--shutdown-grace", "abc"), ("--shutdown-grace", "-1s"),
                                                      ("--web-max-queries", "0"), ("--web-max-queries", "257"),
                                                      ("--web-max-queries", "4x"), ("--web-max-records", "0"),
                                                      ("--web-max-records", "1000001"), ("--web-max-records", "12x"),
                                                      ("--web-query-timeout", "50ms"), ("--web-query-memory", "1KiB"),
                                                      ("--web-cache-size", "5XB"),
                                                      # tiered retention (docs/operations.md)
                                                      ("--retention-raw", "-1h"), ("--retention-raw", "soon"),
                                                      ("--retention-raw-size", "5XB"),
                                                      ("--retention-rollup", "1x"),
                                                      ("--retention-rollup-size", "-3MiB"))),
                     # rollups must outlive raw
                     ["--retention-raw", "48h", "--retention-rollup", "24h", "-c", "x"],
                     # raw-only merges with tiers would answer nothing where raw is gone
                     ["--query-raw-only", "--retention-raw", "24h", "-c", "x"]):
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
        return (v.returncode == 0 and "revision" in v.stdout and h.returncode == 0 and "--retention-size" in h.stdout
                and "--retention-raw" in h.stdout and "--retention-rollup-size" in h.stdout), v.stdout
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
            # two records of each, for the merge checks below
            for mon, ty in want:
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={mon}")
                if len(body["data"]) < 2:
                    return False
            return True
        ok = c.wait_for(all_collected, timeout=45)
        missing = [f"{m}/{ty}: {c.target(m, ty)}" for m, ty in want if not c.get_json(f"/api/v1/profiles?type={ty}&name={m}")[1]["data"]]
        t.record("collector: every profile type of demo, prometheus and self collected and stored", ok, "\n".join(missing))

        # go tool pprof reads what the API serves; the merged profile's totals equal the sum of
        # the records' totals as go reads each record on its own, and the store's own totals of
        # each record agree with go
        for mon, ty in want:
            def agree(mon=mon, ty=ty):
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={mon}")
                rows = body["data"][:2]
                types = [tuple(x.split("/", 1)) for x in rows[0]["sampleTypes"].split(",")]
                to = rows[-1]["endUnixNano"]
                details = []
                expected = [0] * len(types)
                for k, r in enumerate(rows):
                    f = os.path.join(OUT, f"api-{mon}-{ty}-{k}.pb.gz")
                    end = r["endUnixNano"]
                    st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?type={ty}&name={mon}&agg=sum&from={sec(end)}&to={sec(end)}")
                    if st != 200:
                        return False, f"record {r['id']}: HTTP {st} {data[:200]!r}"
                    open(f, "wb").write(data)
                    sums = go_sums(f)
                    if sums != r["totals"]:
                        details.append(f"record {r['id']}: stored totals {r['totals']}, go reads {sums}")
                    expected = [a + b for a, b in zip(expected, sums)]
                f = os.path.join(OUT, f"api-{mon}-{ty}.pb.gz")
                st, data, hdr = http_req("GET", f"{c.url}/api/v1/profile?type={ty}&name={mon}&agg=sum&to={sec(to)}")
                if st != 200 or "attachment" not in hdr.get("Content-Disposition", ""):
                    return False, f"HTTP {st} {data[:200]!r}"
                open(f, "wb").write(data)
                got = go_sums(f)
                if got != expected:
                    details.append(f"merged totals {got}, sum of the {len(rows)} records' totals {expected}")
                for i, (stype, unit) in enumerate(types):
                    ours = parse_our_top(run([TOOL, "top", "--raw", f"--sample-index={i}", f], check=True).stdout)
                    g = go_pprof(go_top_args(i, unit) + [f])
                    diff = compare_maps(ours, parse_go_top(g.stdout))
                    if diff:
                        details.append(f"{stype}: {diff}")
                return not details and len(rows) == 2, "\n".join(details) or f"{len(rows)} records"
            check(t, f"collector API: {mon}/{ty} merged profile opens in go tool pprof; totals = sum of the records' as go reads them", agree)

        def self_stacks():
            # the sampler walks frame pointers from its signal handler: the stacks it records are
            # whole (through the loop into main, also from a leaf inside a library) and begin
            # at the interrupted code, never in the handler. Samples of the main thread come
            # as its CPU does: on a quiet run the first profiles may hold only one such stack,
            # so the self profile is read again (for up to 60 s) until it holds three; a
            # handler frame fails at once.
            f = os.path.join(OUT, "api-self-cpu-traces.pb.gz")
            end = time.time() + 60
            while True:
                st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?type=cpu&name=self&agg=sum")
                if st != 200:
                    return False, f"HTTP {st} {data[:200]!r}"
                open(f, "wb").write(data)
                out = go_pprof(["-traces", f]).stdout
                traces = []
                for block in out.split("-----------+")[1:]:
                    names = [ln.split()[-1] for ln in block.splitlines() if ln.strip() and not ln.startswith("-")]
                    if names:
                        traces.append(names)
                to_main = [tr for tr in traces if "main" in tr and tr.index("main") >= 2]
                loop = [tr for tr in traces if any(tr[i] == "scrape_run" and tr[i + 1] == "main" for i in range(len(tr) - 1))]
                handler = [tr for tr in traces if set(tr) & {"on_sigprof", "fp_walk", "find_caller", "backtrace", "__restore_rt"}]
                ok = len(traces) >= 5 and len(to_main) >= 3 and loop and (not handler or not SIGNALS_DIRECT)
                if ok or (handler and SIGNALS_DIRECT) or time.time() > end:
                    break
                time.sleep(3)
            return ok, (f"{len(traces)} stacks, {len(to_main)} reach main from 2+ frames above, {len(loop)} through scrape_run "
                        f"into main, {len(handler)} with handler frames; e.g. {to_main[:3]} {handler[:2]}")
        check(t, "collector self CPU profile: whole stacks from the interrupted code to main" +
              (", no signal-handler frames" if SIGNALS_DIRECT else " (TSan runs the handler itself: samples inside it allowed)"), self_stacks)

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

        def quiet_log():
            # healthy targets and a healthy disk: nothing to warn about (libmicrohttpd once warned
            # at every start because its logger option was not given first)
            bad = [l for l in c.log_text().splitlines() if "level=warn" in l or "level=error" in l or not l.startswith("ts=")]
            return not bad, f"{len(bad)} lines: {bad[:5]}"
        check(t, "collector log: a start with healthy targets writes no warning, no error and no line outside logfmt", quiet_log)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()
        prom.stop()


def faults(t):
    """Failing peers of every kind beside healthy ones. Schedules are measured at the fault
    server, which logs when each request arrives."""
    fs = FaultServer()
    closed = free_port()
    u = fs.url
    cases = {
        "hang-headers": ("heap", f"{u}/hang-headers", "Timeout"),
        "hang-body": ("heap", f"{u}/hang-body", "Timeout"),
        "status-500": ("heap", f"{u}/500", "HTTP 500"),
        "status-404": ("heap", f"{u}/404", "HTTP 404"),
        "garbage": ("heap", f"{u}/garbage", "invalid profile"),
        "gzip-bomb": ("heap", f"{u}/bomb", "exceeds the limit"),
        "gzip-bomb-encoding": ("heap", f"{u}/bomb-encoding", "exceeds max_body_bytes"),
        "over-cap": ("heap", f"{u}/big", "exceeds max_body_bytes"),
        "refused": ("heap", f"http://127.0.0.1:{closed}", "onnect"),
        "unresolvable": ("heap", "http://no-such-host.invalid:6060", "resolve"),
        "tls-error": ("heap", f"https://127.0.0.1:{fs.port}/500", "SSL"),
        "cpu-busy": ("cpu", f"{u}/busy", "already in use"),
        "backoff": ("heap", f"{u}/fail/backoff", "HTTP 500"),
        "backoff-slow": ("heap", f"{u}/fail/backoff-slow", "HTTP 500"),
        "redirect": ("heap", f"{u}/redirect/r1", "HTTP 302"),
        "content-encoding-br": ("heap", f"{u}/br", "unsupported Content-Encoding br"),
    }
    mons = []
    for name, (ty, ep, _) in cases.items():
        key = "profile: {seconds: 1}" if ty == "cpu" else f"heap: {{interval_seconds: {3 if name == 'backoff-slow' else 1}}}"
        extra = "  max_body_bytes: 64KiB\n" if name == "over-cap" else ""
        mons.append(f"- name: {name}\n  endpoint: {ep}\n  timeout_seconds: 2\n{extra}  {key}\n")
    cfg = "monitors:\n" + "".join(mons) + f"- name: good\n  endpoint: {u}/ok/good\n  heap: {{interval_seconds: 1}}\n"
    cfg += f"- name: gzip-encoded\n  endpoint: {u}/gz-ok\n  heap: {{interval_seconds: 1}}\n"
    c = Collector(cfg, name="faults")
    try:
        start = time.monotonic()
        # every case failed once (one /api/v1/targets per poll), and enough arrivals to see the
        # backoff double four times (1+2+4+8 s, +20% jitter at most)
        def seen_enough():
            tgs = c.targets_by_key()
            return (all(tgs[n, ty]["failuresTotal"] >= 1 for n, (ty, _, _) in cases.items()) and
                    len(fs.times("fail/backoff")) >= 5 and len(fs.times("busy")) >= 3 and len(fs.times("fail/backoff-slow")) >= 4)
        c.wait_for(seen_enough, timeout=45)
        end = time.monotonic()
        for name, (ty, _, text) in cases.items():
            def one(name=name, ty=ty, text=text):
                tg = c.target(name, ty)
                st, body = c.get_json(f"/api/v1/profiles?type={ty}&name={name}")
                ok = tg["health"] == "down" and text in tg["lastError"] and body["data"] == [] and tg["failuresTotal"] >= 1
                if name == "cpu-busy":
                    ok = ok and tg["busy"]
                return ok, json.dumps(tg)
            check(t, f"collector fault {name}: clear error in target health, nothing stored", one)

        if SCHEDULES:
            def good_undisturbed():
                # interval 1 s: one scrape in every second of the window, each at most 0.5 s after
                # its slot, although peers hang for the whole 2 s timeout beside it
                tg = c.target("good", "heap")
                times = [x for x in fs.times("ok/good") if start + 2 <= x <= end]
                bad = grid_problems(times, 1.0, grid_anchor(times, 1.0), LATE)
                ok = tg["health"] == "up" and tg["failuresTotal"] == 0 and not bad and len(times) >= end - start - 4
                return ok, f"{len(times)} scrapes in {end - start - 2:.1f}s; {bad}; intervals {intervals(times)}; {tg}"
            check(t, "collector faults: a healthy target keeps its 1 s grid beside hanging and failing ones", good_undisturbed)

            def backoff():
                # failing every second at interval 1 s: the waits must double from 1 s, +-20%
                # jitter, never under the interval: [1.0, 1.2], [1.6, 2.4], [3.2, 4.8], [6.4, 9.6]
                d, bad = waits_outside(fs.times("fail/backoff"), [(1.0, 1.2), (1.6, 2.4), (3.2, 4.8), (6.4, 9.6)])
                return len(d) >= 4 and not bad, f"waits {d}; {bad}"
            check(t, "collector faults: a failing target backs off, doubling from 1 s with jitter", backoff)

            def backoff_slow():
                # interval 3 s: the backoff (1 s, 2 s) is shorter, so the interval rules; then 4 s +-20%
                d, bad = waits_outside(fs.times("fail/backoff-slow"), [(3.0, 3.0), (3.0, 3.0), (3.2, 4.8)])
                return len(d) >= 3 and not bad, f"waits {d}; {bad}"
            check(t, "collector faults: a failing target is never retried sooner than its interval", backoff_slow)

            def busy_retry():
                # "cpu profiling already in use": retried after 5 s, every time (not backed off)
                d = intervals(fs.times("busy"))
                bad = [x for x in d if not 5.0 <= x <= 5.05 + LATE]
                return len(d) >= 2 and not bad, f"waits {d} (the peer answers after 0.05 s)"
            check(t, "collector faults: a busy CPU target is retried every 5 s", busy_retry)

        def redirect():
            tg = c.target("redirect", "heap")
            followed = fs.times("ok/redirected-r1")
            return tg["health"] == "down" and "HTTP 302" in tg["lastError"] and not followed and len(fs.times("redirect/r1")) >= 1, \
                f"{tg}; requests to the redirect's target: {len(followed)}"
        check(t, "collector faults: redirects are not followed (302 is an error, its Location never fetched)", redirect)
        def gzip_encoded():
            # a body sent with Content-Encoding: gzip is inflated: stored, and go reads it as the
            # profile that was compressed
            tg = c.target("gzip-encoded", "heap")
            f = os.path.join(OUT, "faults-gzip-encoded.pb.gz")
            st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?type=heap&name=gzip-encoded&agg=latest")
            open(f, "wb").write(data)
            ref = os.path.join(TESTDATA, "gotarget", "heap.pb.gz")
            got, want = go_flat(f, 3, "bytes") if st == 200 else {}, go_flat(ref, 3, "bytes")
            return tg["health"] == "up" and st == 200 and got == want and want, f"{tg}; HTTP {st}; go reads {len(got)} functions, want {len(want)}"
        check(t, "collector: a response with Content-Encoding gzip is inflated and stored as the profile", gzip_encoded)
        check(t, "collector faults: /healthz and /readyz stay up", lambda: (http_req("GET", c.url + "/healthz")[0] == 200 and http_req("GET", c.url + "/readyz")[0] == 200, ""))
    finally:
        c.stop()
        c.cleanup()
        fs.stop()


def tls_auth(t):
    """Scraping over TLS (CA, server_name, client certificates, insecure) and with credentials
    (bearer token file, rotated while running; basic auth). The peers log SNI, Host, the client
    certificate and the credentials of every request they answer."""
    token, user, pw = "s3cret-token", "scraper", "pa ss"
    srv = AuthTLSServer(os.path.join(TESTDATA, "gotarget", "heap.pb.gz"), token, user, pw)
    d = tempfile.mkdtemp(prefix="creds-")
    tok, pwf, rot = os.path.join(d, "token"), os.path.join(d, "password"), os.path.join(d, "rotating-token")
    open(tok, "w").write(token + "\n")
    open(pwf, "w").write(pw + "\n")
    open(rot, "w").write("first-token\n")
    srv.tokens.add("first-token")
    # credential files that must fail the scrape with the reason, no request sent: a token over
    # the 16 KiB cap (it used to be cut to 4,095 bytes and sent), a password file over 4 KiB
    # whose first line is the right password (it used to be read in part and used), a token file
    # that does not exist (the request used to go out without credentials)
    long_tok, long_pw = os.path.join(d, "long-token"), os.path.join(d, "long-password")
    open(long_tok, "w").write("t" * 20000 + "\n")
    # a token file of exactly the cap (16,384 bytes with its newline): read whole and sent
    limit_tok = os.path.join(d, "limit-token")
    open(limit_tok, "w").write("k" * 16383 + "\n")
    srv.tokens.add("k" * 16383)
    open(long_pw, "w").write(pw + "\n" + "#" * 5000 + "\n")
    https = f"https://127.0.0.1:{srv.tls_port}"
    mtls = f"https://127.0.0.1:{srv.mtls_port}"
    plain = f"http://127.0.0.1:{srv.plain_port}"
    hdr = lambda case: f"  headers: {{X-Team: core, X-Case: {case}}}\n  heap: {{interval_seconds: 1}}\n"
    ca = srv.ca
    cfg = ("monitors:\n"
           f"- name: tls-ca-servername\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {ca}, server_name: pprof.test}}\n{hdr('tls-ca-servername')}"
           f"- name: tls-insecure\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{insecure_skip_verify: true}}\n{hdr('tls-insecure')}"
           f"- name: tls-wrong-name\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {ca}, server_name: other.test}}\n{hdr('tls-wrong-name')}"
           f"- name: tls-no-server-name\n  endpoint: {https}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {ca}}}\n{hdr('tls-no-server-name')}"
           f"- name: mtls-client-cert\n  endpoint: {mtls}\n  bearer_token_file: {tok}\n"
           f"  tls: {{ca_file: {ca}, server_name: pprof.test, cert_file: {srv.client_cert}, key_file: {srv.client_key}}}\n{hdr('mtls-client-cert')}"
           f"- name: mtls-no-cert\n  endpoint: {mtls}\n  bearer_token_file: {tok}\n  tls: {{ca_file: {ca}, server_name: pprof.test}}\n{hdr('mtls-no-cert')}"
           f"- name: basic-auth\n  endpoint: {plain}\n  basic_auth: {{username: {user}, password_file: {pwf}}}\n{hdr('basic-auth')}"
           f"- name: bearer-rotation\n  endpoint: {plain}\n  bearer_token_file: {rot}\n{hdr('bearer-rotation')}"
           f"- name: no-credentials\n  endpoint: {plain}\n{hdr('no-credentials')}"
           f"- name: token-too-long\n  endpoint: {plain}\n  bearer_token_file: {long_tok}\n{hdr('token-too-long')}"
           f"- name: token-at-limit\n  endpoint: {plain}\n  bearer_token_file: {limit_tok}\n{hdr('token-at-limit')}"
           f"- name: password-file-too-long\n  endpoint: {plain}\n  basic_auth: {{username: {user}, password_file: {long_pw}}}\n{hdr('password-file-too-long')}"
           f"- name: token-file-missing\n  endpoint: {plain}\n  bearer_token_file: {d}/no-such-token\n{hdr('token-file-missing')}")
    c = Collector(cfg, name="tls")
    try:
        c.wait_for(lambda: all(tg["scrapesTotal"] >= 2 for tg in c.targets()), timeout=20)
        host = f"127.0.0.1:{srv.tls_port}"
        # name: (health, error text, what the peer must have seen: server, SNI, Host, client CN)
        expect = {"tls-ca-servername": ("up", "", ("https", "pprof.test", host, None)),
                  "tls-insecure": ("up", "", ("https", None, host, None)),
                  "tls-wrong-name": ("down", "SSL", None),  # certificate not for other.test: no request
                  "tls-no-server-name": ("down", "SSL", None),  # nor for 127.0.0.1
                  "mtls-client-cert": ("up", "", ("mtls", "pprof.test", f"127.0.0.1:{srv.mtls_port}", "pprof-collector")),
                  "mtls-no-cert": ("down", "", None),  # the peer refuses the handshake
                  "basic-auth": ("up", "", ("plain", None, f"127.0.0.1:{srv.plain_port}", None)),
                  "no-credentials": ("down", "HTTP 401", ("plain", None, f"127.0.0.1:{srv.plain_port}", None)),
                  "token-too-long": ("down", f"bearer_token_file: {long_tok}: 20001 bytes, over the limit of 16384", None),
                  # up only if the whole 16,383-byte token reached the peer
                  "token-at-limit": ("up", "", ("plain", None, f"127.0.0.1:{srv.plain_port}", None)),
                  "password-file-too-long": ("down", f"basic_auth.password_file: {long_pw}: 5007 bytes, over the limit of 4096", None),
                  "token-file-missing": ("down", f"bearer_token_file: {d}/no-such-token: No such file or directory", None)}
        for name, (health, text, seen) in expect.items():
            def one(name=name, health=health, text=text, seen=seen):
                tg = c.target(name, "heap")
                reqs = srv.seen(name)
                got = {(r["server"], r["sni"], r["host"], r["client_cn"]) for r in reqs}
                ok = tg["health"] == health and text in tg["lastError"] and (tg["lastError"] != "") == (health == "down")
                ok = ok and (got == {seen} if seen else not reqs)
                return ok, f"{json.dumps(tg)}\npeer saw (server, SNI, Host, client CN): {got}"
            check(t, f"collector tls/auth {name}: {health}", one)

        def rotation():
            # the token file is read at every scrape: after the file is replaced (as a mounted
            # Secret is), every request carries the new token; the peer accepts both meanwhile
            before = c.target("bearer-rotation", "heap")
            srv.tokens.add("second-token")
            tmp = rot + ".tmp"
            open(tmp, "w").write("second-token\n")
            os.rename(tmp, rot)
            at = time.monotonic()
            n0 = len(srv.seen("bearer-rotation"))
            c.wait_for(lambda: len(srv.seen("bearer-rotation")) >= n0 + 3, timeout=10)
            srv.tokens.discard("first-token")
            c.wait_for(lambda: len(srv.seen("bearer-rotation")) >= n0 + 5, timeout=10)
            after = srv.seen("bearer-rotation")[n0 + 1:]  # (a request may have been on its way)
            auths = [r["auth"] for r in after]
            tg = c.target("bearer-rotation", "heap")
            ok = before["health"] == "up" and tg["health"] == "up" and len(auths) >= 4 and set(auths) == {"Bearer second-token"}
            ok = ok and tg["failuresTotal"] == 0 and time.monotonic() - at < 20
            return ok, f"before {before}\nafter {tg}\nauthorizations after the rotation: {auths}"
        check(t, "collector tls/auth bearer_token_file: a rotated token is used from the next scrape", rotation)
    finally:
        c.stop()
        c.cleanup()
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def web_api(t):
    """Issue 4's API on a store filled by scraping the demo target, checked against go tool pprof;
    seed routes; limits; authentication (crypt hashes from openssl and htpasswd -B, a token);
    the security headers of every response."""
    demo = DemoTarget()
    d = tempfile.mkdtemp(prefix="auth-")
    users, token = os.path.join(d, "users"), os.path.join(d, "token")
    hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret pass"], capture_output=True, text=True).stdout.strip()
    # bcrypt as Apache's htpasswd writes it ($2y$)
    bcrypt = subprocess.run(["htpasswd", "-nbB", "bob", "b0b's pass"], capture_output=True, text=True)
    if bcrypt.returncode != 0 or "$2y$" not in bcrypt.stdout:
        t.tool("htpasswd -B writes a bcrypt hash (apache2-utils, make deps)", False, bcrypt.stderr)
    open(users, "w").write(f"# users\nalice:{hashed}\n{bcrypt.stdout.strip()}\n")
    open(token, "w").write("0123456789abcdef-token\n")
    cfg = f"monitors:\n- name: demo\n  endpoint: {demo.url}\n  profile: {{seconds: 2}}\n  heap: {{interval_seconds: 2}}\n"
    c = Collector(cfg, extra_args=["--web-basic-auth-file", users, "--web-bearer-token-file", token], name="webapi")
    basic = "Basic " + base64.b64encode(b"alice:s3cret pass").decode()
    basic_bob = "Basic " + base64.b64encode("bob:b0b's pass".encode()).decode()

    def get(path, auth=basic):
        return http_req("GET", c.url + path, headers={"Authorization": auth} if auth else None)
    try:
        def auth():
            out = []
            for path, a, want in (("/api/v1/targets", None, 401), ("/api/v1/targets", basic, 200),
                                  ("/api/v1/targets", "Basic " + base64.b64encode(b"alice:wrong").decode(), 401),
                                  ("/api/v1/targets", basic_bob, 200),
                                  ("/api/v1/targets", "Basic " + base64.b64encode(b"bob:b0b pass").decode(), 401),
                                  ("/api/v1/targets", "Bearer 0123456789abcdef-token", 200), ("/api/v1/targets", "Bearer nope", 401),
                                  ("/metrics", None, 401), ("/", None, 401), ("/healthz", None, 200), ("/readyz", None, 200)):
                st, body, hdr = get(path, a)
                if st != want or (st == 401 and "WWW-Authenticate" not in hdr):
                    out.append(f"{path} with {a and a[:16]}: {st}, want {want}")
            return not out, "\n".join(out)
        check(t, "collector web auth: basic (openssl -6 and htpasswd -B bcrypt hashes) and bearer required, health endpoints open", auth)
        c.wait_for(lambda: len(json.loads(get("/api/v1/profiles?type=cpu&name=demo")[1])["data"]) >= 4, timeout=30)
        rows = json.loads(get("/api/v1/profiles?type=cpu&name=demo")[1])["data"]
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
            # pruning, worked out here from the whole tree: the 50 largest totals (ties at the
            # cut kept in tree order), each only under a kept parent
            full = json.loads(get(f"/api/v1/render?type=cpu&name=demo&to={sec(to)}&top=1&max_nodes=200000")[1])["data"]
            fn = full["nodes"]
            cut = sorted((abs(n[3]) for n in fn), reverse=True)[min(50, len(fn)) - 1]
            keep, want = {}, []
            for i, n in enumerate(fn):
                if (i == 0 or n[1] in keep) and abs(n[3]) >= cut and len(want) < 50:
                    keep[i] = len(want)
                    want.append([full["names"][n[0]], keep[n[1]] if i else -1, n[2], n[3]])
            got = [[r["names"][n[0]], n[1], n[2], n[3]] for n in r["nodes"]]
            ok = ours == g and root[3] == r["total"] and len(r["nodes"]) <= 50 and r["pruned"]["nodes"] > 0 and kids <= root[3] and got == want
            return ok, compare_maps(ours, g) + f" root={root} total={r['total']} nodes={len(r['nodes'])} pruned={r['pruned']}" + \
                ("" if got == want else f"; pruned tree differs from the whole tree's 50 largest: {[x for x in got if x not in want][:3]} / {[x for x in want if x not in got][:3]}")
        check(t, "collector /api/v1/render: top table equals go tool pprof; flame graph pruned to max_nodes with totals kept, the nodes kept the whole tree's largest", render_vs_go)

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

        def render_focus_vs_go():
            # render's focus=NAME for the hottest functions: callers and callees one level deep
            # with their values as go tool pprof -peek '^NAME$' reads the same merge, the lines as
            # -lines -top; with a base, the base's values as go reads the base's merge
            top = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + [files["all"]]).stdout)
            funcs = list(dict.fromkeys(sorted(top, key=lambda f: -top[f][0])[:2] + sorted(top, key=lambda f: -top[f][1])[:2]))
            rx = "^(" + "|".join(re.escape(f) for f in funcs) + ")$"
            peek = parse_go_peek(go_pprof(["-peek", rx, "-sample_index=1", "-unit=ns", files["all"]]).stdout)
            lines_top = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + ["-lines", files["all"]]).stdout)
            bpeek = parse_go_peek(go_pprof(["-peek", rx, "-sample_index=1", "-unit=ns", files["base"]]).stdout)
            bad = []
            for f in funcs:
                st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&to={sec(to)}&focus={quote(f)}")
                fo = json.loads(body)["data"]["focus"] if st == 200 else None
                if not fo or f not in peek:
                    bad.append(f"{f}: HTTP {st} {body[:200]!r}; go block {f in peek}")
                    continue
                gflat, gcum, gins, gouts = peek[f]

                def level1(tree):
                    return {tree["names"][n[0]]: n[3] for n in tree["nodes"] if n[1] == 0}
                glines = {k[len(f) + 1:]: v for k, v in lines_top.items() if k.startswith(f + " ")}
                ours_lines = {f"{e['file']}:{e['line']}": (e["flat"], e["cum"]) for e in fo["lines"]}
                cr, ce = fo["callers"]["nodes"][0], fo["callees"]["nodes"][0]
                root_ok = cr[1] == ce[1] == -1 and cr[3] == gcum and ce[2:4] == [gflat, gcum] and \
                    fo["callers"]["names"][cr[0]] == fo["callees"]["names"][ce[0]] == f
                for what, a, b in (("flat, cum", (fo["flat"], fo["cum"]), (gflat, gcum)), ("callers", level1(fo["callers"]), gins),
                                   ("callees", level1(fo["callees"]), gouts), ("lines", ours_lines, glines), ("roots", root_ok, True)):
                    if a != b:
                        bad.append(f"{f} {what}: ours {a} go {b}")
                st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&from={sec(mid)}&to={sec(to)}&base_to={sec(mid - 1)}&focus={quote(f)}")
                fb = json.loads(body)["data"]["focus"] if st == 200 else None
                want = bpeek.get(f, (0, 0))[:2]
                if not fb or (fb["baseFlat"], fb["baseCum"]) != want or fb["callees"]["nodes"][0][4:6] != [want[0], want[1]]:
                    bad.append(f"{f} with a base: HTTP {st}, base values {fb and (fb['baseFlat'], fb['baseCum'])}, go reads the base as {want}")
            st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&to={sec(to)}&focus=no.such.function")
            if st != 200 or json.loads(body)["data"]["focus"] is not None:
                bad.append(f"unknown function: HTTP {st} {body[:200]!r}, want focus null")
            for q, want in (("focus=", 400), ("focus=" + "a" * 1025, 400)):
                st, body, _ = get(f"/api/v1/render?type=cpu&name=demo&{q}")
                if st != want:
                    bad.append(f"{q[:20]}: HTTP {st}, want {want}")
            return len(funcs) >= 3 and not bad, f"{funcs}\n" + "\n".join(bad)
        check(t, "collector /api/v1/render focus=NAME: callers, callees and lines as go tool pprof -peek and -lines read the merge; base values; unknown name null", render_focus_vs_go)

        def render_binary():
            # encoding=binary (what the UI reads) carries what the JSON answer says, node for node:
            # decoded by the harness's own reader, for a plain render, a diff, and focus= with a base
            top = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + [files["all"]]).stdout)
            f = max(top, key=lambda k: top[k][1])
            bad = []
            # (max_nodes=50 and 7 prune: the kept nodes' indexes are not the call tree's ids)
            for q in (f"to={sec(to)}&max_nodes=50", f"from={sec(mid)}&to={sec(to)}&base_to={sec(mid - 1)}&max_nodes=100000",
                      f"from={sec(mid)}&to={sec(to)}&base_to={sec(mid - 1)}&focus={quote(f)}&max_nodes=7"):
                st, body, hdr = get(f"/api/v1/render?type=cpu&name=demo&{q}")
                stb, bb, hdrb = get(f"/api/v1/render?type=cpu&name=demo&{q}&encoding=binary")
                try:
                    dec = decode_render_binary(bb)
                except (ValueError, KeyError) as e:
                    bad.append(f"{q}: HTTP {stb} {hdrb.get('Content-Type')}: {e} {bb[:80]!r}")
                    continue
                js = json.loads(body)
                nodes = len(js["data"]["nodes"])
                if "max_nodes=50" in q and not js["data"]["pruned"]["nodes"]:
                    bad.append(f"{q}: nothing pruned, so parents could not be told from the tree's ids")
                if st != 200 or stb != 200 or dec != js or nodes < 2 or hdrb.get("Content-Type") != "application/vnd.pprof-controller.render":
                    diff = [k for k in js.get("data", {}) if dec.get("data", {}).get(k) != js["data"][k]]
                    bad.append(f"{q}: HTTP {st}/{stb} {hdrb.get('Content-Type')}, {nodes} nodes; keys that differ: {diff}")
            # bad input and failures stay JSON errors
            for q, want in (("encoding=xml", 400), ("encoding=", 400), ("encoding=binary&max_nodes=0", 400)):
                st, body, hdr = get(f"/api/v1/render?type=cpu&name=demo&to={sec(to)}&{q}")
                if st != want or json.loads(body).get("status") != "error":
                    bad.append(f"{q}: HTTP {st} {body[:120]!r}, want {want} and a JSON error")
            st, body, hdr = get("/api/v1/render?type=cpu&name=no-such-target&encoding=binary")
            if st < 400 or json.loads(body).get("status") != "error":
                bad.append(f"no profiles, binary: HTTP {st} {body[:120]!r}, want a JSON error")
            return not bad, "\n".join(bad)
        check(t, "collector /api/v1/render encoding=binary: the same answer as the JSON one (plain, diff, focus with a base), read by an independent decoder; bad encodings and failures are JSON errors", render_binary)

        def timeline():
            # each point's total is what go tool pprof reads in that one record (fetched by its
            # end time), not the store's own totals
            st, body, _ = get(f"/api/v1/timeline?type=cpu&name=demo&sample=cpu&to={sec(to)}")
            pts = json.loads(body)["data"][0]["points"]
            bad = []
            for start_ns, end_ns, total in pts:
                f = os.path.join(OUT, f"webapi-record-{end_ns}.pb.gz")
                st, data, _ = get(f"/api/v1/profile?type=cpu&name=demo&from={sec(end_ns)}&to={sec(end_ns)}")
                open(f, "wb").write(data)
                g = go_sums(f)[1]
                if st != 200 or g != total or g <= 0:
                    bad.append(f"point at {end_ns}: {total}, go reads {g} (HTTP {st})")
            ends = [p[1] for p in pts]
            ok = not bad and len(pts) == len(rows) and ends == sorted(ends) and ends == [r["endUnixNano"] for r in rows]
            return ok, f"{len(pts)} points, {len(rows)} records; {bad[:5]}"
        check(t, "collector /api/v1/timeline: one point per stored profile, its total as go tool pprof reads the record", timeline)

        def security_headers():
            # every answer, whatever the route, status or method, carries the CSP and nosniff
            reqs = [("GET", "/api/v1/targets", None), ("GET", "/healthz", None), ("GET", "/readyz", None),
                    ("GET", "/", None), ("GET", "/api/v1/targets", basic), ("GET", "/api/v1/series", basic),
                    ("GET", "/api/v1/profiles?type=cpu", basic), ("GET", "/api/v1/profile?type=cpu&name=demo", basic),
                    ("GET", "/api/v1/profile?type=cpu&name=nobody", basic), ("GET", "/api/v1/render?type=cpu&name=demo&max_nodes=0", basic),
                    ("GET", "/api/v1/render?type=cpu&name=demo&top=3", basic), ("GET", "/api/v1/timeline?type=cpu", basic),
                    ("GET", "/api/v1/series?" + "&".join(f"l{i}=x" for i in range(70)), basic),
                    ("GET", "/metrics", basic), ("GET", "/", basic), ("GET", "/explorer", basic), ("GET", "/ui/app.js", basic),
                    ("GET", "/ui/app.css", basic), ("GET", "/ui/nope", basic), ("GET", "/favicon.ico", basic), ("GET", "/raw", basic),
                    ("GET", "/pprof/web/x", basic), ("GET", "/nope", basic), ("POST", "/metrics", basic), ("GET", "/reload", basic),
                    ("POST", "/-/reload", basic), ("HEAD", "/", basic), ("POST", "/healthz", None)]
            bad, statuses = [], set()
            for method, path, a in reqs:
                hc = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
                hc.request(method, path, body=b"" if method == "POST" else None, headers={"Authorization": a} if a else {})
                resp = hc.getresponse()
                resp.read()
                h = {k.lower(): v for k, v in resp.getheaders()}
                hc.close()
                statuses.add(resp.status)
                csp = h.get("content-security-policy", "")
                if "default-src 'none'" not in csp or "script-src 'self'" not in csp or "frame-ancestors 'none'" not in csp or \
                        h.get("x-content-type-options") != "nosniff":
                    bad.append(f"{method} {path}: {resp.status}, CSP {csp!r}, nosniff {h.get('x-content-type-options')!r}")
            want = {200, 204, 302, 400, 401, 404, 405}
            return not bad and want <= statuses, "\n".join(bad) + f"\nstatuses seen {sorted(statuses)}"
        check(t, "collector web: every response (200, 204, 302, 400, 401, 404, 405) carries the CSP and nosniff", security_headers)

        def seed_routes():
            st1, body1, h1 = get("/raw")
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

        def series_pages():
            key = lambda e: (json.dumps(e["labels"], sort_keys=True), e["profileType"])
            st, body, _ = get("/api/v1/series")
            whole = json.loads(body)
            want = [key(e) for e in whole["data"]]
            # pages of one entry, each naming the next, the last none
            got, after, pages, bad = [], None, 0, []
            while pages <= len(want):
                st, body, _ = get("/api/v1/series?limit=1" + (f"&after={quote(after)}" if after else ""))
                page = json.loads(body)
                pages += 1
                if st != 200 or len(page["data"]) != 1:
                    bad.append(f"page {pages}: {st} {body[:200]!r}")
                    break
                got += [key(e) for e in page["data"]]
                after = page.get("next")
                if not after:
                    break
            st, body, _ = get(f"/api/v1/series?limit={len(want)}")
            if "next" in json.loads(body) or len(json.loads(body)["data"]) != len(want):
                bad.append(f"a page of all {len(want)}: {body[:200]!r}")
            if "next" in whole:
                bad.append("an unpaged listing names a next page")
            for q in ("limit=0", "limit=100001", "limit=x", "after=x", "after=1:nope", "after=-1:cpu", "after=1"):
                st, body, _ = get(f"/api/v1/series?{q}")
                if st != 400:
                    bad.append(f"{q}: {st} {body[:100]!r}")
            ok = len(want) >= 2 and got == want and pages == len(want) and not bad
            return ok, f"whole {want}\npaged {got} in {pages} pages\n" + "\n".join(bad)
        check(t, "collector /api/v1/series in pages (limit, after=next): together the whole listing, each entry once", series_pages)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()
        shutil.rmtree(d, ignore_errors=True)
    raw_pages(t)


RAW_PAGE, RAW_MAX_PAGE = 1000, 10000  # docs/api.md, /raw


def raw_pages(t):
    """/raw in pages on a store of 1,050 series written by store-bench (pod-0..pod-1049, one CPU
    record each): the default page holds 1,000 and links the next; pages followed by their links
    hold every series exactly once; a bad limit or cursor is refused with a clear 400."""
    SB = web_load.SB
    if not os.access(SB, os.X_OK):
        t.tool("collector /raw pages: build/rel/bench/store-bench is built (make test-bins)", False, SB)
        return
    pods = RAW_PAGE + 50
    want = sorted(f"pod-{i}" for i in range(pods))
    d = tempfile.mkdtemp(prefix="rawpages-")
    data = os.path.join(d, "data")
    p = subprocess.run([SB, "fill", data, str(pods), "1", "cpu", os.path.join(TESTDATA, "prometheus", "cpu-1.pb.gz")],
                       capture_output=True, text=True, timeout=300)
    t.tool(f"collector /raw pages: store-bench fills a store with {pods} series", p.returncode == 0, p.stderr[-2000:])
    if p.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        return
    c = Collector("monitors: []\n", data_dir=data, name="rawpages")
    row_re = re.compile(r'<tr><td>[^<]*&quot;monitor&quot;:&quot;(pod-\d+)&quot;')
    next_re = re.compile(r'<a rel="next" href="([^"]*)">')

    def page(path):
        st, body, _ = http_req("GET", c.url + path)
        text = body.decode("utf-8", "replace")
        m = next_re.search(text)
        return st, row_re.findall(text), html.unescape(m.group(1)) if m else None, text

    try:
        def default_cap():
            st, rows, nxt, text = page("/raw")
            ok = st == 200 and len(rows) == RAW_PAGE and len(set(rows)) == RAW_PAGE and (nxt or "").startswith(f"/raw?limit={RAW_PAGE}&after=")
            st2, rows2, nxt2, _ = page(nxt) if nxt else (None, [], None, "")
            ok = ok and st2 == 200 and len(rows2) == pods - RAW_PAGE and nxt2 is None and sorted(rows + rows2) == want
            return ok, f"first page {st}: {len(rows)} rows, next {nxt!r}; second {st2}: {len(rows2)} rows, next {nxt2!r}"
        check(t, f"collector /raw: without limit a page holds {RAW_PAGE} series and links the next; the two pages hold all {pods}", default_cap)

        def walk():
            got, path, pages, bad = [], "/raw?limit=300", 0, []
            while path and pages <= pods:
                st, rows, path, _ = page(path)
                pages += 1
                if st != 200 or not rows or set(rows) & set(got):
                    bad.append(f"page {pages}: {st}, {len(rows)} rows, {len(set(rows) & set(got))} seen before")
                    break
                got += rows
            st, rows, nxt, _ = page(f"/raw?limit={RAW_MAX_PAGE}")
            if st != 200 or sorted(rows) != want or nxt:
                bad.append(f"limit={RAW_MAX_PAGE}: {st}, {len(rows)} rows, next {nxt!r}")
            dup = len(got) - len(set(got))
            ok = sorted(got) == want and dup == 0 and pages == -(-pods // 300) and not bad
            return ok, f"{len(got)} rows ({dup} twice) in {pages} pages of 300, want {pods}; " + "; ".join(bad)
        check(t, "collector /raw in pages (limit, the next page's link): together every series, each once", walk)

        def refused():
            bad = []
            for q, words in (("limit=0", "limit: want 1..10000"), (f"limit={RAW_MAX_PAGE + 1}", "limit: want 1..10000"),
                             ("limit=x", "limit: want 1..10000"), ("limit=", "limit: want"), ("after=x", "after: want"),
                             ("after=1:nope", "after: want"), ("after=-1:cpu", "after: want")):
                st, body, _ = http_req("GET", c.url + "/raw?" + q)
                if st != 400 or words not in body.decode("utf-8", "replace"):
                    bad.append(f"{q}: {st} {body[:120]!r}")
            return not bad, "; ".join(bad)
        check(t, "collector /raw: a limit outside 1..10000 or a cursor that is no page's next is refused with 400 saying what is wanted", refused)
    finally:
        c.stop()
        c.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def aggregation(t):
    """agg=sum|avg|latest, defaults, comparisons between targets (base_name, base_LABEL) and
    RFC 3339 times, on profiles whose values a peer chose: the expected answers are arithmetic
    on what it served, read back through go tool pprof."""
    # heap series a (every 1 s) and b (every 2 s: fewer records), allocs series c
    value = lambda series, n: {"a": 1000 * n + 7, "b": 50000 + 3 * n, "c": 300 * n + 1}[series]
    ss = SeriesServer(value)
    cfg = (f"monitors:\n- name: a\n  endpoint: {ss.url}/a\n  labels: {{svc: shop, role: alpha}}\n  heap: {{interval_seconds: 1}}\n"
           f"- name: b\n  endpoint: {ss.url}/b\n  labels: {{svc: shop, role: beta}}\n  heap: {{interval_seconds: 2}}\n"
           f"- name: c\n  endpoint: {ss.url}/c\n  allocs: {{interval_seconds: 1}}\n")
    c = Collector(cfg, name="agg")

    def fetch(query, name):
        st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?{query}")
        if st != 200:
            raise RuntimeError(f"{query}: HTTP {st} {data[:300]!r}")
        f = os.path.join(OUT, f"agg-{name}.pb.gz")
        open(f, "wb").write(data)
        return f
    try:
        c.wait_for(lambda: len(ss.log("a")) >= 7 and len(ss.log("b")) >= 4 and len(ss.log("c")) >= 4, timeout=30)
        # a time up to which everything served is stored: each series' newest stored record (a
        # job's scrapes are sequential, so what it served before that is stored too)
        newest = [max(r["endUnixNano"] for r in c.get_json(f"/api/v1/profiles?type={ty}&name={m}")[1]["data"])
                  for m, ty in (("a", "heap"), ("b", "heap"), ("c", "allocs"))]
        to = min(newest)
        served = {m: [v for ts, v in ss.log(m) if ts <= to] for m in "abc"}
        q = f"to={sec(to)}"

        def stored_as_served():
            out = []
            for m, ty in (("a", "heap"), ("b", "heap"), ("c", "allocs")):
                ends = [r["endUnixNano"] for r in c.get_json(f"/api/v1/profiles?type={ty}&name={m}&{q}")[1]["data"]]
                want = [ts for ts, _ in ss.log(m) if ts <= to]
                if ends != want:
                    out.append(f"{m}: stored ends {ends}, served {want}")
            return not out and len(served["b"]) >= 2 and len(served["a"]) > len(served["b"]), "\n".join(out) + f" served {served}"
        check(t, "collector aggregation: every served profile stored, with the time it carries", stored_as_served)

        a, b, cs = served["a"], served["b"], served["c"]

        def avg():
            # the service's average: each pod's average over time, summed over pods (a and b have
            # different record counts); scaling rounds each sample, by at most half a unit
            out = []
            for query in (f"type=heap&svc=shop&agg=avg&{q}", f"type=heap&svc=shop&{q}"):
                got = go_flat(fetch(query, "avg"))
                want = {"main.a": sum(a) / len(a), "main.b": sum(b) / len(b)}
                if set(got) != set(want) or any(abs(got[k] - want[k]) > 0.5 for k in want):
                    out.append(f"{query}: go reads {got}, want {want}")
            return not out, "\n".join(out)
        check(t, "collector agg=avg (the default for heap): per-series averages summed, as go tool pprof reads it", avg)

        def total():
            got = go_flat(fetch(f"type=heap&svc=shop&agg=sum&{q}", "sum"))
            want = {"main.a": sum(a), "main.b": sum(b)}
            return got == want, f"go reads {got}, want {want}"
        check(t, "collector agg=sum: every record's values added", total)

        def latest():
            got = go_flat(fetch(f"type=heap&svc=shop&agg=latest&{q}", "latest"))
            want = {"main.a": a[-1], "main.b": b[-1]}
            return got == want, f"go reads {got}, want {want}"
        check(t, "collector agg=latest: each series' newest record", latest)

        def allocs_default():
            got = go_flat(fetch(f"type=allocs&name=c&{q}", "allocs"))
            return got == {"main.c": sum(cs)}, f"go reads {got}, want sum {sum(cs)} of {cs}"
        check(t, "collector default aggregation for allocs is sum", allocs_default)

        def base_name():
            # a minus b, two targets: the API's answer, arithmetic, and go tool pprof -base
            d = go_flat(fetch(f"type=heap&name=a&agg=sum&{q}&base_name=b&base_agg=sum&base_{q}", "base-name"))
            fa, fb = fetch(f"type=heap&name=a&agg=sum&{q}", "only-a"), fetch(f"type=heap&name=b&agg=sum&{q}", "only-b")
            g = go_pprof(go_top_args(0, "bytes") + ["-base", fb, fa])
            gd = {k: v[0] for k, v in parse_go_top(g.stdout).items() if v[0]}
            want = {"main.a": sum(a), "main.b": -sum(b)}
            st, body, _ = http_req("GET", f"{c.url}/api/v1/render?type=heap&name=a&agg=sum&{q}&base_name=b&base_agg=sum&base_{q}")
            r = json.loads(body)["data"]
            top = {e["name"]: (e["flat"], e["baseFlat"]) for e in r["top"] if e["flat"] or e["baseFlat"]}
            ok = d == want and gd == want and r["baseTotal"] == sum(b) and r["total"] == sum(a)
            ok = ok and top == {"main.a": (sum(a), 0), "main.b": (0, sum(b))}
            return ok, f"API diff {d}; go -base {gd}; want {want}; render total {r['total']} base {r['baseTotal']} top {top}"
        check(t, "collector base_name: target a minus target b, as arithmetic and go tool pprof -base say", base_name)

        def base_label():
            d = go_flat(fetch(f"type=heap&role=alpha&agg=latest&{q}&base_role=beta&base_agg=latest&base_{q}", "base-label"))
            want = {"main.a": a[-1], "main.b": -b[-1]}
            return d == want, f"API diff {d}, want {want}"
        check(t, "collector base_LABEL: one label selection minus another", base_label)

        def rfc3339_times():
            # from/to as RFC 3339 with nanoseconds select the same records as Unix seconds
            times = [ts for ts, _ in ss.log("a") if ts <= to]
            lo, hi = times[1], times[3]
            out = []
            for f_, t_ in ((rfc3339(lo), rfc3339(hi)), (rfc3339(lo, "+00:00"), rfc3339(hi, "+00:00")), (sec(lo), sec(hi))):
                query = f"type=heap&name=a&agg=sum&from={quote(f_)}&to={quote(t_)}"
                got = go_flat(fetch(query, "rfc3339"))
                rows = c.get_json(f"/api/v1/profiles?type=heap&name=a&from={quote(f_)}&to={quote(t_)}")[1]["data"]
                if got != {"main.a": a[1] + a[2] + a[3]} or [r["endUnixNano"] for r in rows] != times[1:4]:
                    out.append(f"from={f_} to={t_}: go reads {got}, rows {[r['endUnixNano'] for r in rows]}")
            # one nanosecond later excludes the first record
            got = go_flat(fetch(f"type=heap&name=a&agg=sum&from={quote(rfc3339(lo + 1))}&to={quote(rfc3339(hi))}", "rfc3339-ns"))
            if got != {"main.a": a[2] + a[3]}:
                out.append(f"from one ns later: {got}")
            st, _, _ = http_req("GET", f"{c.url}/api/v1/profile?type=heap&name=a&to={quote(rfc3339(hi, '+02:00'))}")
            if st != 400:
                out.append(f"a non-UTC offset: HTTP {st}, want 400")
            return not out, "\n".join(out) + f" (a={a[1:4]})"
        check(t, "collector from/to in RFC 3339 (Z, +00:00, nanoseconds) select the records Unix seconds select", rfc3339_times)
    finally:
        c.stop()
        c.cleanup()
        ss.stop()


def records_limit(t):
    """--web-max-records: a merge reads the newest N records of its selection, and an answer over
    more says so ("truncated"), with the total of those N; exactly N is not truncated; Grafana's
    SelectSeries refuses a range of more than N profiles (resource_exhausted)."""
    value = lambda series, n: 1000 * n + 7
    ss = SeriesServer(value)
    c = Collector(f"monitors:\n- name: c\n  endpoint: {ss.url}/c\n  heap: {{interval_seconds: 1}}\n", name="records",
                  extra_args=["--web-max-records", "3"])
    try:
        c.wait_for(lambda: len(c.get_json("/api/v1/profiles?type=heap&name=c")[1]["data"]) >= 6, timeout=40)
        ends = sorted(r["endUnixNano"] for r in c.get_json("/api/v1/profiles?type=heap&name=c")[1]["data"])
        to = ends[-1]
        served = dict(ss.log("c"))  # end -> value: the test's own record of what each profile held

        def render(frm):
            q = f"/api/v1/render?type=heap&name=c&agg=sum&to={sec(to)}" + (f"&from={sec(frm)}" if frm else "")
            st, body = c.get_json(q)
            return st, body.get("data", {})

        def newest_only():
            st, d = render(None)
            want = sum(served[e] for e in ends[-3:])
            ok = st == 200 and d.get("profiles") == 3 and d.get("truncated") is True and d.get("total") == want
            st2, d2 = render(ends[-3])  # exactly three records in range
            ok2 = st2 == 200 and d2.get("profiles") == 3 and d2.get("truncated") is False and d2.get("total") == want
            return ok and ok2, (f"all {len(ends)}: {st} profiles {d.get('profiles')} truncated {d.get('truncated')} total "
                                f"{d.get('total')} (want 3, true, {want}); the newest three: {st2} {d2.get('profiles')} "
                                f"{d2.get('truncated')} {d2.get('total')}")
        check(t, "collector --web-max-records 3: a render over more records merges the newest 3 and says \"truncated\": "
                 "true (total = their values); over exactly 3, false", newest_only)

        def select_series_refused():
            q = {"profileTypeID": "memory:inuse_space:bytes:space:bytes", "labelSelector": '{service_name="c"}',
                 "start": str(ends[0] // 10**6 - 1000), "end": str(to // 10**6 + 1000), "step": 1}
            st, body, _ = http_req("POST", c.url + "/querier.v1.QuerierService/SelectSeries", json.dumps(q).encode(),
                                   headers={"Content-Type": "application/json"})
            j = json.loads(body) if body.startswith(b"{") else {}
            return st == 429 and j.get("code") == "resource_exhausted" and "more than the 3" in j.get("message", ""), f"{st} {body[:300]!r}"
        check(t, "collector --web-max-records 3: Grafana's SelectSeries over more profiles is refused (resource_exhausted)",
              select_series_refused)
    finally:
        c.stop()
        c.cleanup()
        ss.stop()


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
    """(apparent bytes of the files, allocated bytes) under path, as du(1) counts them; the
    directories' own entries (du counts them too) are taken out of the apparent figure."""
    a = subprocess.run(["du", "-s", "-B1", "--apparent-size", path], capture_output=True, text=True)
    b = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True)
    if a.returncode or b.returncode:
        return None
    dirs = sum(os.stat(r).st_size for r, _, _ in os.walk(path))
    return int(a.stdout.split()[0]) - dirs, int(b.stdout.split()[0])


FAULTINJ = os.path.join(ROOT, "build", "rel", "tests", "libfaultinj.so")


def faulty_collector(config, name, extra_args=()):
    """A collector under tests/lib/faultinj.c: (collector, control file). Writing lines into the
    control file makes the named calls fail (see the shim); removing it ends the faults."""
    ctl_dir = tempfile.mkdtemp(prefix=f"{name}-faults-")
    ctl = os.path.join(ctl_dir, "faults")
    saved = Collector.env
    Collector.env = dict(saved or {}, LD_PRELOAD=FAULTINJ, PP_FAULTINJ=ctl)
    try:
        c = Collector(config, extra_args=extra_args, name=name)
    except Exception:
        shutil.rmtree(ctl_dir, ignore_errors=True)
        raise
    finally:
        Collector.env = saved
    return c, ctl


def disk_faults(t):
    prom = Prometheus()
    try:
        sync_failures(t, prom)
        quota_full(t, prom)
    finally:
        prom.stop()


def quota_full(t, prom):
    """Segment writes failing with EDQUOT (a quota on a shared volume) are a full disk, as
    ENOSPC is (the disk part): the profile is dropped and counted as such, the log says "disk
    full" and why, what was stored stays whole, and storing resumes when the quota allows."""
    if not os.path.exists(FAULTINJ):
        t.tool("collector EDQUOT: build/rel/tests/libfaultinj.so built (make test-bins)", False, FAULTINJ)
        return
    c, ctl = faulty_collector(f"monitors:\n- name: q\n  endpoint: {prom.url}\n  heap: {{interval_seconds: 0.05}}\n", "edquot")
    try:
        m = c.metrics
        some = c.wait_for(lambda: (m().get("collector_ingested_profiles_total") or 0) >= 10, timeout=15)
        with open(ctl, "w") as f:
            f.write("write EDQUOT /segments/\n")
        dropped = c.wait_for(lambda: (m().get("collector_dropped_profiles_total") or 0) >= 3, timeout=15)
        os.unlink(ctl)
        at_heal = m().get("collector_ingested_profiles_total") or 0
        resumed = c.wait_for(lambda: m()["collector_ingested_profiles_total"] >= at_heal + 10, timeout=15)
        errors = m().get("collector_store_errors_total")
        c.stop()  # the store closed: its files are read from outside below
        log = c.log_text()
        rows, problems = verify_store(c.data)
        quota_lines = [l for l in log.splitlines() if "disk full" in l and "Disk quota exceeded" in l]
        stored = len(re.findall(r'msg="stored heap profile of q', log))
        check(t, "collector EDQUOT: a quota refusing segment writes is a full disk: dropped and counted as such, logged with the reason, nothing stored lost, storing resumes",
              lambda: (some and dropped and resumed and quota_lines and errors == 0
                       and not problems and rows == stored and stored >= at_heal + 10,
                       f"dropped={dropped} resumed={resumed}; {len(quota_lines)} 'disk full' lines, other store errors {errors}; {rows} rows in the index vs "
                       f"{stored} stored by the log (>= {at_heal} + 10); problems {problems[:3]}"))
    finally:
        c.stop()
        c.cleanup()
        shutil.rmtree(os.path.dirname(ctl), ignore_errors=True)


def sync_failures(t, prom):
    """fdatasync failing with EIO (a dying disk) while profiles come in: counted on /metrics,
    logged once when the rounds start failing (with the reason) and once when they work again,
    not once per round."""
    if not os.path.exists(FAULTINJ):
        t.tool("collector sync failures: build/rel/tests/libfaultinj.so built (make test-bins)", False, FAULTINJ)
        return
    c, ctl = faulty_collector(f"monitors:\n- name: p\n  endpoint: {prom.url}\n  heap: {{interval_seconds: 0.1}}\n", "syncfail")
    warn_re = re.compile(r'level=warn msg="store: durability round failed.*fdatasync of [^"]*Input/output error')
    info_re = re.compile(r'level=info msg="store: durability rounds succeed again')
    try:
        m = c.metrics
        good = c.wait_for(lambda: (m().get("collector_store_syncs_total") or 0) >= 2
                          and (m().get("collector_store_last_sync_success_timestamp_seconds") or 0) > 0, timeout=15)
        before = m()
        with open(ctl, "w") as f:
            f.write("fdatasync EIO /segments/\n")
        t_on = time.time()
        # at one round a second, several rounds fail while the file is there
        failed = c.wait_for(lambda: (m().get("collector_store_sync_failures_total") or 0) >= 4, timeout=15)
        during = m()
        log_during = c.log_text()
        os.unlink(ctl)
        t_off = time.time()
        healed = c.wait_for(lambda: (m().get("collector_store_last_sync_success_timestamp_seconds") or 0) > t_off
                            and info_re.search(c.log_text()), timeout=15)
        time.sleep(1.5)  # a round or more after healing: no more lines of either kind
        after = m()
        log = c.log_text()
        warns, infos = len(warn_re.findall(log)), len(info_re.findall(log))
        check(t, "collector sync failures: fdatasync EIO is counted in collector_store_sync_failures_total, the last success time stands still, and both move on when the disk heals",
              lambda: (good and failed and before.get("collector_store_sync_failures_total") == 0
                       and during["collector_store_last_sync_success_timestamp_seconds"] <= t_on
                       and healed and after["collector_store_last_sync_success_timestamp_seconds"] > t_off
                       and after["collector_store_sync_failures_total"] >= during["collector_store_sync_failures_total"] >= 4
                       and after["collector_store_syncs_total"] > during["collector_store_syncs_total"],
                       f"before {before.get('collector_store_sync_failures_total')}, during {during.get('collector_store_sync_failures_total')} failures "
                       f"(last success {during.get('collector_store_last_sync_success_timestamp_seconds')} vs fault at {t_on:.3f}), "
                       f"after: last success {after.get('collector_store_last_sync_success_timestamp_seconds')} vs healed at {t_off:.3f}"))
        check(t, "collector sync failures: one warning with the reason when rounds start failing, one note when they work again, not a line per round",
              lambda: (warns == 1 and infos == 1 and warn_re.search(log_during) is not None,
                       f"{warns} warnings, {infos} notes over {during.get('collector_store_sync_failures_total')} failed rounds; "
                       + " | ".join(l for l in log.splitlines() if "durability" in l)[-800:]))
    finally:
        c.stop()
        c.cleanup()
        shutil.rmtree(os.path.dirname(ctl), ignore_errors=True)


def disk(t):
    prom = Prometheus()
    mons = "".join(f"- name: p{i}\n  endpoint: {prom.url}\n  heap: {{interval_seconds: 0.05}}\n  goroutine: {{interval_seconds: 0.05}}\n" for i in range(6))
    budget = 4 << 20
    c = Collector("monitors:\n" + mons, extra_args=["--retention-size", "4MiB"], name="budget")
    try:
        peak, peak_alloc, samples = 0, 0, 0
        end = time.time() + 20
        while time.time() < end:
            u = du(c.data)
            if u:
                peak, peak_alloc, samples = max(peak, u[0]), max(peak_alloc, u[1]), samples + 1
            time.sleep(0.2)
        deleted = c.metric("collector_retention_deleted_segments_total")
        # docs/operations.md: segments are 1/20 of the budget, 1..64 MiB, and usage stays within
        # the budget plus one segment
        seg = min(max(budget // 20, 1 << 20), 64 << 20)
        check(t, "collector retention: du of the data dir stays within the budget plus one segment under sustained ingest",
              lambda: (peak <= budget + seg and peak > budget // 2 and deleted and deleted > 0 and samples > 50,
                       f"peak {peak} bytes (allocated {peak_alloc}) in {samples} samples, budget {budget} + segment {seg}, deleted segments {deleted}"))
    finally:
        c.stop()
        c.cleanup()

    # a full disk: a 3 MiB tmpfs and no retention limit
    mnt = tempfile.mkdtemp(prefix="tmpfs-")
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], capture_output=True, text=True)
    if m.returncode != 0:
        t.tool("collector ENOSPC: tmpfs mounted (needs root)", False, m.stderr)
        os.rmdir(mnt)
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
        os.rmdir(mnt)
        prom.stop()


def tier_bytes(data_dir):
    """{tier: bytes of its segment files}, from the index and the files (outside the collector)."""
    db = sqlite3.connect(f"file:{data_dir}/index.db?mode=ro", uri=True)
    try:
        segs = db.execute("SELECT id, tier FROM segment").fetchall()
    finally:
        db.close()
    out = {0: 0, 1: 0}
    for sid, tier in segs:
        try:
            out[tier] = out.get(tier, 0) + os.path.getsize(os.path.join(data_dir, "segments", f"{sid:016x}.seg"))
        except OSError:
            pass  # deleted by retention meanwhile
    return out


def tiers(t):
    """The tiered retention flags reach the store: the raw tier's budget holds raw segments to it
    (the budget wins over the raw period: nothing is rolled up within a minute) and moves the
    watermark; the answers say their resolution. Rollups at work need 10-minute windows to close:
    tests/unit/test_store.c covers them."""
    prom = Prometheus()
    mons = "".join(f"- name: p{i}\n  endpoint: {prom.url}\n  heap: {{interval_seconds: 0.05}}\n  goroutine: {{interval_seconds: 0.05}}\n" for i in range(4))
    raw_budget = 2 << 20
    c = Collector("monitors:\n" + mons, name="tiers",
                  extra_args=["--retention-raw", "24h", "--retention-raw-size", "2MiB", "--retention-rollup", "30d",
                              "--retention-rollup-size", "8MiB"])
    try:
        peak, samples = 0, 0
        end = time.time() + 20
        while time.time() < end:
            try:
                peak, samples = max(peak, tier_bytes(c.data)[0]), samples + 1
            except sqlite3.Error:
                pass
            time.sleep(0.2)
        mark = c.metric("collector_retention_raw_dropped_until_seconds") or 0
        deleted = c.metric("collector_retention_deleted_segments_total") or 0
        # segments are the smallest budget / 20 within 1..64 MiB: 1 MiB here
        seg = 1 << 20
        check(t, "collector tiers: --retention-raw-size holds the raw segments within their budget plus one segment, and tiered retention moves the raw watermark",
              lambda: (peak <= raw_budget + seg and peak > raw_budget // 2 and deleted > 0 and time.time() - 60 < mark <= time.time()
                       and samples > 50,
                       f"raw tier peak {peak} bytes in {samples} samples, budget {raw_budget} + {seg}, deleted {deleted}, watermark {mark}"))
        st, body = c.get_json("/api/v1/render?type=heap&name=p0")
        st2, tl = c.get_json("/api/v1/timeline?type=heap&name=p0")
        check(t, "collector tiers: render and timeline answers carry their resolution (raw: no rollup stands in for deleted profiles yet)",
              lambda: (st == 200 and body["data"].get("resolution") == "raw" and st2 == 200 and tl.get("resolution") == "raw"
                       and all(len(p) == 3 for sr in tl["data"] for p in sr["points"]),
                       f"render {st} {str(body)[:200]}; timeline {st2} {str(tl)[:200]}"))
    finally:
        c.stop()
        c.cleanup()
        prom.stop()


def tiers_answer(t):
    """End to end: a store of 2 h of one pod's 10 s CPU profiles (store-bench, 64 KiB segments:
    about 60 profiles each, so raw has whole segments to delete),
    served by a collector without tiers (its compactor rolls the closed windows and hours up),
    then by one with --retention-raw 1s: the raw segments go once rolled up, and render answers
    the same flame graph and top table from the rollups, saying resolution 1h; the timeline shows
    hour points."""
    SB = web_load.SB
    if not os.access(SB, os.X_OK):
        t.tool("collector tiers: build/rel/bench/store-bench is built (make test-bins)", False, SB)
        return
    d = tempfile.mkdtemp(prefix="tiers-answer-")
    data = os.path.join(d, "data")
    try:
        p = subprocess.run([SB, "fill", data, "1", "720", "cpu", *sorted(glob.glob(os.path.join(TESTDATA, "prometheus", "cpu-*.pb.gz")))],
                           capture_output=True, text=True, timeout=300, env=dict(os.environ, STORE_BENCH_SEGMENT_BYTES=str(64 << 10)))
        t.tool("collector tiers: store-bench fills 2 h of one pod's CPU profiles", p.returncode == 0, p.stdout + p.stderr[-2000:])
        if p.returncode != 0:
            return
        q = "/api/v1/render?type=cpu&monitor=pod-0&top=50"
        c = Collector("monitors: []\n", data_dir=data, name="tiers-raw")
        try:
            hour = 3600
            c.wait_for(lambda: (c.metric("collector_hours_compacted_until_seconds") or 0) >= (time.time() // hour - 1) * hour, timeout=60)
            st0, before = c.get_json(q)
        finally:
            c.stop()
            c.cleanup()
        c = Collector("monitors: []\n", data_dir=data, name="tiers-rollup",
                      extra_args=["--retention-raw", "1s", "--retention-rollup", "30d"])
        try:
            gone = c.wait_for(lambda: (c.metric("collector_retention_raw_dropped_until_seconds") or 0) > 0, timeout=60)
            st1, after = c.get_json(q)
            st2, tl = c.get_json("/api/v1/timeline?type=cpu&monitor=pod-0")
            profiles = c.metric("collector_store_profiles")
        finally:
            c.stop()
            c.cleanup()
        b, a = (before or {}).get("data", {}), (after or {}).get("data", {})
        check(t, "collector tiers: once --retention-raw deleted rolled-up raw profiles, render answers the same total, top table and profile count from rollups and says resolution 1h",
              lambda: (st0 == 200 and st1 == 200 and gone and profiles is not None and profiles < 720 and b.get("resolution") == "raw"
                       and a.get("resolution") == "1h" and a.get("total") == b.get("total") and a.get("top") == b.get("top")
                       and a.get("profiles") == b.get("profiles") == 720,
                       f"before {st0} {b.get('resolution')} total {b.get('total')} profiles {b.get('profiles')}; after {st1} "
                       f"{a.get('resolution')} total {a.get('total')} profiles {a.get('profiles')}; raw left {profiles}; "
                       f"top same: {a.get('top') == b.get('top')}"))
        pts = [p for sr in (tl or {}).get("data", []) for p in sr["points"]] if st2 == 200 else []
        hours = [p for p in pts if len(p) == 5 and p[3] == "1h"]
        check(t, "collector tiers: the timeline shows hour points (mean per profile, their count) where raw profiles are gone",
              lambda: (st2 == 200 and tl.get("resolution") == "1h" and len(hours) >= 1
                       and all(1 <= p[4] <= 360 and p[1] - p[0] == hour * 10**9 - 1 for p in hours)
                       and sum(p[4] for p in pts if len(p) == 5) + sum(1 for p in pts if len(p) == 3) == 720,
                       f"{st2} resolution {(tl or {}).get('resolution')}; {len(hours)} hour points of {len(pts)}: {hours[:3]} {[p for p in pts if len(p) != 3][:4]}"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def reload(t):
    """Reloads by HTTP, file change, SIGHUP and a ConfigMap volume swap. The steady target's
    scrapes are timed at the peer: a reload must leave its 1 s grid where it was (a reset would
    move it by the job's start offset) and miss no slot."""
    demo = DemoTarget()
    fs = FaultServer()
    T = 1.0
    base = f"monitors:\n- name: steady\n  endpoint: {fs.url}/ok/steady\n  goroutine: {{interval_seconds: 1}}\n"
    c = Collector(base, name="reload")
    steady = lambda: fs.times("ok/steady")
    try:
        c.wait_for(lambda: len(steady()) >= 4, timeout=15)
        anchor = grid_anchor(steady(), T)

        def at_phase(phase):
            """Sleeps until `phase` seconds after a slot of the steady grid."""
            now = time.monotonic()
            k = math.ceil((now - anchor - phase) / T)
            time.sleep(max(0.0, anchor + k * T + phase - now))

        def after_reload(at, n=3):
            """Residuals of the next n scrapes after a reload at `at`, once they arrived."""
            c.wait_for(lambda: len([x for x in steady() if x > at]) >= n, timeout=n * T + 5)
            xs = [x for x in steady() if x > at][:n]
            return [round(x - anchor - round((x - anchor) / T) * T, 3) for x in xs]

        def valid():
            before = c.target("steady", "goroutine")
            out, residuals = [], []
            # two reloads half a period apart: whatever offset a reset job would start at, one
            # of them would move the grid by 0.3 s or more
            for phase, added in ((0.1, ("added",)), (0.6, ("added", "added-too"))):
                at_phase(phase)
                c.write_config(base + "".join(f"- name: {x}\n  endpoint: {fs.url}/ok/{x}\n  heap: {{interval_seconds: 1}}\n"
                                              for x in added))
                at = time.monotonic()
                st, body, _ = http_req("POST", c.url + "/-/reload", b"")
                if st != 200:
                    out.append(f"reload: {st} {body!r}")
                r = after_reload(at)
                residuals.append(r)
                # lateness only delays: the least late of three scrapes shows where the grid is
                if not r or min(r) > 0.15 or min(r) < -0.05:
                    out.append(f"reload at phase {phase}: next scrapes {r} s off the grid")
            after = c.target("steady", "goroutine")
            added = c.target("added", "heap"), c.target("added-too", "heap")
            gaps = grid_problems(steady(), T, anchor, LATE)
            ok = not out and not gaps and all(added) and after["scrapesTotal"] > before["scrapesTotal"] > 0
            return ok, f"{out}; gaps: {gaps}; residuals {residuals}; before={before} after={after}"
        check(t, "collector reload POST /-/reload: new targets added, the unchanged target keeps its grid and count", valid)

        def invalid():
            before = len(steady())
            c.write_config(base + "- name: broken\n  endpoint: ftp://nope\n")
            st, body, _ = http_req("POST", c.url + "/reload", b"")
            ok = st == 400 and b"config.yaml:6:" in body and b"endpoint" in body
            ok = ok and c.metric("collector_config_last_reload_successful") == 0
            ok = ok and c.target("added", "heap") is not None and c.target("broken", "heap") is None
            ok = ok and c.wait_for(lambda: len(steady()) > before + 1, timeout=5)
            return ok, f"{st} {body!r}"
        check(t, "collector reload with an invalid config: 400 with the error, old config kept, metric 0", invalid)

        def file_change():
            t0 = time.monotonic()
            c.write_config(base + f"- name: via-file\n  endpoint: {demo.url}\n  mutex: {{seconds: 1}}\n", atomic=True)
            ok = c.wait_for(lambda: c.target("via-file", "mutex") is not None, timeout=5)
            ok = ok and c.metric("collector_config_last_reload_successful") == 1
            c.wait_for(lambda: len([x for x in steady() if x > t0]) >= 4, timeout=8)
            # no gap: every slot from before the change to after it has its scrape, on the old grid
            gaps = grid_problems(steady(), T, anchor, LATE, start=t0 - 2 * T)
            return ok and not gaps, f"reloaded={ok}; {gaps}; arrivals {[round(x - anchor, 3) for x in steady() if x > t0 - 2]}"
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
        fs.stop()


def shutdown(t):
    """SIGTERM with a scrape and reloads in flight (the stop used to hang for good when a reload
    was asked while stopping: its HTTP thread waited for an answer that never came, and the
    server waited for that thread). A reload asked while stopping is answered at once (503), the
    scrape in flight finishes and is stored, the store is closed (SQLite's WAL file is removed
    only by a clean close) and the process exits 0; a scrape that would outlast
    --shutdown-grace is abandoned at that bound."""
    fs = FaultServer()
    made = []
    try:
        cfg = f"monitors:\n- name: slow\n  endpoint: {fs.url}/slow/a\n  timeout_seconds: 10\n  heap: {{interval_seconds: 3}}\n"
        c = Collector(cfg, name="shutdown", extra_args=["--shutdown-grace", "5s"])
        made.append(c)
        arrivals = lambda: fs.times("slow/a")
        c.wait_for(lambda: len(arrivals()) >= 1, timeout=15, step=0.02)
        n = len(arrivals())
        # a fresh arrival: the peer answers 2 s later, so the scrape is in flight
        c.wait_for(lambda: len(arrivals()) > n, timeout=10, step=0.01)
        answers = {}

        def post(key):
            t0 = time.monotonic()
            try:
                st, body, _ = http_req("POST", c.url + "/-/reload", b"", timeout=40)
                answers[key] = (st, body, round(time.monotonic() - t0, 2))
            except Exception as e:
                answers[key] = (None, repr(e), round(time.monotonic() - t0, 2))
        # held: the reload request waits in the listen queue and the signal stays pending, so both
        # arrive together when the process runs again
        c.proc.send_signal(signal.SIGSTOP)
        at_signal = threading.Thread(target=post, args=("at-signal",), daemon=True)
        at_signal.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        c.proc.send_signal(signal.SIGTERM)
        c.proc.send_signal(signal.SIGCONT)
        time.sleep(0.5)
        draining = threading.Thread(target=post, args=("while-draining",), daemon=True)
        draining.start()
        try:
            rc = c.proc.wait(25)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        if rc is None:
            c.proc.kill()
            c.proc.wait()
        c.returncodes.append(c.proc.returncode)
        c.logf.close()
        at_signal.join(45)
        draining.join(45)
        log = c.log_text()

        def stopped_in_time():
            # the scrape in flight needs under 2 s more; the grace is 5 s
            return rc == 0 and took < 5.0, f"exit {rc} after {took:.2f} s; {log[-800:]}"
        check(t, "collector shutdown: SIGTERM with a scrape and a reload in flight exits 0 within the grace", stopped_in_time)

        def reload_answered():
            st, body, secs = answers.get("while-draining", (None, "no answer", None))
            st1, body1, secs1 = answers.get("at-signal", (None, "no answer", None))
            # the one asked together with the signal may be done or refused; the one asked while
            # stopping is refused at once
            ok = st == 503 and b"stopping" in body and secs is not None and secs < 2 and st1 in (200, 503)
            return ok, f"while draining: {st} {body!r} in {secs} s; at the signal: {st1} {body1!r} in {secs1} s"
        check(t, "collector shutdown: a reload asked while stopping is answered at once (503), not waited for", reload_answered)

        def in_flight_stored():
            wal = os.path.exists(os.path.join(c.data, "index.db-wal"))  # (before reading opens it)
            rows, problems = verify_store(c.data)
            want = len(arrivals())
            ok = rows == want and not problems and not wal and "1 of 1 scrapes in flight finished" in log
            return ok, f"{rows} profiles stored of {want} scrapes that reached the peer; {problems}; WAL left: {wal}; {log[-600:]}"
        check(t, "collector shutdown: the scrape in flight is finished and stored, the store closed", in_flight_stored)

        # a scrape that would take 30 s: abandoned when the grace (1 s) ends
        cfg = f"monitors:\n- name: hang\n  endpoint: {fs.url}/hang-headers/a\n  timeout_seconds: 40\n  heap: {{interval_seconds: 2}}\n"
        c = Collector(cfg, name="shutdown-grace", extra_args=["--shutdown-grace", "1s"])
        made.append(c)
        c.wait_for(lambda: len(fs.times("hang-headers/a")) >= 1, timeout=15, step=0.02)
        t0 = time.monotonic()
        rc = c.stop()
        took = time.monotonic() - t0
        log = c.log_text()
        wal = os.path.exists(os.path.join(c.data, "index.db-wal"))
        check(t, "collector shutdown: a scrape outlasting --shutdown-grace is abandoned at the bound, exit 0, store closed",
              lambda: (rc == 0 and 0.9 <= took < 3.0 and not wal and "0 of 1 scrapes in flight finished, 1 abandoned" in log,
                       f"exit {rc} after {took:.2f} s; WAL left: {wal}; {log[-600:]}"))

        # the collector's own CPU profile (self_telemetry) in progress: 20 s long, so without
        # selfprof_finish it would outlast the 5 s grace and be abandoned
        sp = free_port()
        cfg = f"self_telemetry:\n  pprof_port: {sp}\n  interval_seconds: 20\nmonitors: []\n"
        c = Collector(cfg, name="shutdown-selfprof", extra_args=["--shutdown-grace", "5s"])
        made.append(c)
        # nextScrapeInMs is 0 while the scrape is in flight (before it, the time to its start)
        in_flight = lambda: (c.target("self", "cpu") or {}).get("nextScrapeInMs") == 0
        started = c.wait_for(in_flight, timeout=30, step=0.05)
        time.sleep(0.5)
        started = started and in_flight() and (c.target("self", "cpu") or {}).get("lastScrapeUnixNano") == 0
        t0 = time.monotonic()
        rc = c.stop()
        took = time.monotonic() - t0
        log = c.log_text()
        wal = os.path.exists(os.path.join(c.data, "index.db-wal"))
        rows, problems = verify_store(c.data) if os.path.exists(os.path.join(c.data, "index.db")) else (0, ["no index"])
        check(t, "collector shutdown: SIGTERM while its own CPU profile is being taken ends that profile, stores it, closes the store and exits 0 within the grace",
              lambda: (started and rc == 0 and took < 3.0 and not wal and rows == 1 and not problems
                       and "1 of 1 scrapes in flight finished, 0 abandoned" in log and 'msg="stored cpu profile of self' in log,
                       f"in flight at SIGTERM: {started}; exit {rc} after {took:.2f} s; WAL left: {wal}; {rows} rows {problems[:2]}; {log[-800:]}"))
    finally:
        for c in made:
            c.stop()
            c.cleanup()
        fs.stop()


PARTS = {f.__name__: f for f in (cli_cases, real_targets, faults, tls_auth, web_api, aggregation, records_limit, crash, disk, reload,
                                  shutdown, disk_faults, tiers, tiers_answer)}
# the web server under load and abuse, and text that is not UTF-8 (tests/collector/web_load.py)
PARTS.update(web_load.PARTS)
# pprof sample labels, single profiles, a function over time (tests/collector/labels.py)
PARTS.update(labels.PARTS)
# /api/v1/pgo, pprof-tool pgo and /api/v1/regressions (tests/collector/pgo_api.py)
PARTS.update(pgo_api.PARTS)
# profiles pushed by the pyroscope-go SDK (tests/collector/push.py)
PARTS.update(push.PARTS)
# Grafana's Pyroscope data source API (tests/collector/querier.py)
PARTS.update(querier.PARTS)
# OTLP profiles (tests/collector/otlp.py)
PARTS.update(otlp.PARTS)
# segments copied to an S3-compatible bucket (tests/collector/objstore.py)
PARTS.update(objstore.PARTS)
# shards splitting one config's monitors (tests/collector/shards.py)
PARTS.update(shards.PARTS)
# one merge over every shard (tests/collector/fanout.py)
PARTS.update(fanout.PARTS)
# the collector-asan suite: everything but the disk part (a minute of sustained ingest that
# would measure the sanitizer's speed, not ours)
# nor disk_faults (an LD_PRELOAD shim built without the sanitizer, which ASan refuses to follow)
ASAN_PARTS = [p for p in PARTS if p not in ("disk", "disk_faults", "tiers")]
# the collector-tsan suite: the parts where threads meet (HTTP threads reading the engine and the
# store while the loop scrapes, decodes and stores; reloads by HTTP; the compactor; shutdown),
# not the command line (one thread) nor the disk part (sustained ingest: the sanitizer's speed)
TSAN_PARTS = [p for p in PARTS if p not in ("cli_cases", "disk", "disk_faults", "tiers", "pgo")]


SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|ThreadSanitizer: reported")

# The sanitizer builds: binary, environment, the tag in every case name, what the log check says.
FLAVOURS = {
    "asan": (os.path.join(ROOT, "build", "asan", "bin", "collector"),
             {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
              "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"},
             "asan", "no AddressSanitizer, UBSan or LeakSanitizer report"),
    # reports do not stop the process (the run goes on to show every race), but each one fails
    # the log check, and TSan's exit code (66) fails the exit-0 check
    "tsan": (os.path.join(ROOT, "build", "tsan", "bin", "collector"),
             {"TSAN_OPTIONS": "halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4"},
             "tsan", "no ThreadSanitizer report"),
}


class Tagged:
    """The tally seen by the suite's second run: every case name says [asan] or [tsan]."""

    def __init__(self, t, tag):
        self.t = t
        self.tag = tag

    def name(self, n):
        return f"collector[{self.tag}] " + n[len("collector "):] if n.startswith("collector ") else f"[{self.tag}] " + n

    def record(self, name, ok, detail="", tool=False):
        self.t.record(self.name(name), ok, detail, tool)

    def tool(self, name, ok, detail=""):
        self.t.tool(self.name(name), ok, detail)


def run_suite(t, parts=None, flavour="rel"):
    os.makedirs(OUT, exist_ok=True)
    unknown = set(parts or ()) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown collector parts {sorted(unknown)} (one of {', '.join(PARTS)})")
    global SCHEDULES, SIGNALS_DIRECT
    SCHEDULES = SIGNALS_DIRECT = flavour != "tsan"
    sanitized = flavour in FLAVOURS
    if sanitized:
        binary, env, tag, clean = FLAVOURS[flavour]
        Collector.binary, Collector.env = binary, env
        if not os.access(Collector.binary, os.X_OK):
            t.tool(f"collector[{tag}]: build/{flavour}/bin/collector is built (make test builds it)", False, Collector.binary)
            return
        t = Tagged(t, tag)
    try:
        for part in [PARTS[p] for p in (parts or PARTS)]:
            first = len(Collector.instances)
            began = time.time()
            try:
                part(t)
            except Exception:
                t.record(f"collector suite part {part.__name__} ran to the end", False, traceback.format_exc()[-3000:])
            finally:
                stop_leftovers()  # what a part that failed half-way left running
                # where the suite's time goes (CI has 90 minutes for everything)
                print(f"#   part {part.__name__}{'' if not sanitized else ' [' + flavour + ']'}: {time.time() - began:.0f}s", flush=True)
            if sanitized:
                # each collector of the part: stopped with exit 0, and no sanitizer report
                for c in Collector.instances[first:]:
                    text = getattr(c, "final_log", None) or c.log_text()
                    found = SANITIZER_RE.search(text)
                    ok = c.returncodes and all(rc == 0 for rc in c.returncodes) and not found
                    t.record(f"collector {part.__name__}/{c.name}: exit 0, {clean}",
                             ok, f"exit codes {c.returncodes}\n" + (text[max(0, found.start() - 200):found.start() + 3000] if found else text[-1500:]))
    finally:
        Collector.binary = os.path.join(ROOT, "bin", "collector")
        Collector.env = None
        SCHEDULES = SIGNALS_DIRECT = True
