"""The collector's web server under load and abuse (issue 12, sections 1 and 5).

- web_load: a store filled by `store-bench fill` with 10 pods x 24 h of 10 s CPU profiles
  (86,400 records, kept in build/test/ between runs): probes answer within Kubernetes' 1 s probe
  timeout while 16 clients ask for the day; at most N queries run at once, the rest queue and
  then get 503 with Retry-After; identical queries cost one merge; a query past its deadline
  gets 503 and its answer, finished in the background, serves the retry.
- web_limits: 2,000 half-open connections from one address, a 50 MB POST, Basic auth verified
  once and failures rate-limited, a per-request memory budget, the cache and the store state.
- utf8: a profile with invalid UTF-8 in every string field, through every JSON answer.

Timings are behaviour here (an answer within the probe timeout, a 503 before the deadline
passes); how fast is measured in `make bench` (bench/reliability_bench.py)."""
import base64
import gzip
import http.client
import json
import os
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from urllib.parse import quote

from harness import OUT, ROOT, TESTDATA, check, compare_raw, field, varint, wide_profile, RawProfile
from peers import Collector, SeriesServer, StaticServer, http_req, parse_metrics

SB = os.path.join(ROOT, "build", "rel", "bench", "store-bench")
PROBE_TIMEOUT = 1.0  # Kubernetes' default timeoutSeconds
DAY = "type=cpu&__k8s_namespace=bench&__k8s_name=svc"  # the 10-pod service of the filled store


def cpus():
    return len(os.sched_getaffinity(0))


def day_store(t):
    """The filled store (10 pods x 8,640 records, about 1.2 GB), made once and kept while it is
    under 8 hours old: its records end when it was filled, and the queries reach back from now
    (the queue case's window is the last 10 hours), so an older one answers 404 to them."""
    d = os.path.join(OUT, "daystore-10x8640")
    marker = os.path.join(d, "filled")
    if os.path.exists(marker) and time.time() - os.path.getmtime(marker) < 8 * 3600:
        return d
    if not os.access(SB, os.X_OK):
        t.tool("web_load: build/rel/bench/store-bench is built (make test-bins)", False, SB)
        return None
    tmp = d + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    files = [os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz") for i in range(1, 7)]
    p = subprocess.run([SB, "fill", tmp, "10", "8640", "cpu", *files], capture_output=True, text=True, timeout=1800)
    t.tool("web_load: store-bench fills a store with 10 pods x 24 h of 10 s CPU profiles", p.returncode == 0, p.stderr[-2000:])
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    open(os.path.join(tmp, "filled"), "w").write(p.stdout)
    os.rename(tmp, d)
    return d


def request(c, path, timeout=60, source=None, headers=None):
    """(status, body, headers, seconds) on a fresh connection; status is the error text when the
    connection failed."""
    t0 = time.monotonic()
    try:
        hc = http.client.HTTPConnection("127.0.0.1", c.port, timeout=timeout, source_address=(source, 0) if source else None)
        hc.request("GET", path, headers=headers or {})
        r = hc.getresponse()
        body = r.read()
        hc.close()
        return r.status, body, {k.lower(): v for k, v in r.getheaders()}, time.monotonic() - t0
    except (OSError, http.client.HTTPException) as e:
        return f"{type(e).__name__}: {e}", b"", {}, time.monotonic() - t0


class Prober:
    """A kubelet: /healthz and /readyz in turn every 100 ms, each on a new connection with the
    probe timeout, until stopped. `results`: (path, status, seconds)."""

    def __init__(self, c, source=None):
        self.c, self.source, self.results, self.stopped = c, source, [], threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        k = 0
        while not self.stopped.is_set():
            path = ("/healthz", "/readyz")[k % 2]
            k += 1
            st, _, _, secs = request(self.c, path, timeout=PROBE_TIMEOUT + 1, source=self.source)
            self.results.append((path, st, secs))
            self.stopped.wait(0.1)

    def stop(self):
        self.stopped.set()
        self.th.join()
        return self.results

    def problems(self):
        bad = [f"{p}: {st} after {s:.3f}s" for p, st, s in self.results if st != 200 or s > PROBE_TIMEOUT]
        return bad


def slowest(results):
    return max((s for _, _, s in results), default=0)


def p99(results):
    """The 99th percentile of the probes' answer times (nearest rank)."""
    v = sorted(s for _, _, s in results)
    return v[min(len(v) - 1, max(0, -(-99 * len(v) // 100) - 1))] if v else 0


# ---- web_load: the filled store --------------------------------------------------------------


def web_load(t):
    store = day_store(t)
    if not store:
        return
    now = time.time()

    def day_from(k):
        # distinct selections (each a merge of its own), each most of the day (k < 3,000)
        return f"{DAY}&from={now - 86400 + 10 * k:.0f}&max_nodes=4096&top=500"

    c = Collector("monitors: []\n", data_dir=store, name="web-load")
    try:
        def sixteen_browsers():
            prober = Prober(c)
            answers, stop = [], threading.Event()
            lock = threading.Lock()

            def browser(i):
                k = 0
                while not stop.is_set():
                    st, body, hdr, secs = request(c, "/api/v1/render?" + day_from(i * 100 + k), timeout=120)
                    k += 1
                    with lock:
                        answers.append((st, hdr.get("retry-after"), body[:200], secs))
                    if st != 200:
                        stop.wait(0.2)
            ths = [threading.Thread(target=browser, args=(i,)) for i in range(16)]
            for th in ths:
                th.start()
            # 20 s at least, and until two queries have answered (a day's merge under ASan can
            # take longer than 20 s: the probes are checked while queries really run)
            t_end = time.monotonic() + 120
            time.sleep(20)
            while time.monotonic() < t_end:
                with lock:
                    if sum(1 for a in answers if a[0] == 200) >= 2:
                        break
                time.sleep(0.5)
            stop.set()
            for th in ths:
                th.join()
            probes = prober.stop()
            ok200 = sum(1 for a in answers if a[0] == 200)
            bad = [a for a in answers if a[0] != 200 and not (a[0] == 503 and a[1] and a[1].isdigit() and int(a[1]) >= 1)]
            problems = prober.problems()
            return (not problems and len(probes) >= 50 and ok200 >= 2 and not bad,
                    f"{len(probes)} probes, p99 {p99(probes) * 1000:.1f} ms, slowest {slowest(probes):.3f}s, {len(problems)} late or failed: {problems[:5]}; "
                    f"{len(answers)} answers, {ok200} of them 200; not 200 or 503 with Retry-After: {bad[:3]}")
        check(t, f"collector web: /healthz and /readyz answer within the {PROBE_TIMEOUT:.0f} s probe timeout while 16 clients "
                 "ask for the day (10 pods x 24 h); every query gets 200 or 503 with Retry-After", sixteen_browsers)

        # the queries the browsers left behind drain before the next checks
        c.wait_for(lambda: c.metrics().get("collector_web_queries_running") == 0 and c.metrics().get("collector_web_queries_queued") == 0,
                   timeout=120)

        def slots():
            m = c.metrics()
            n, peak = m.get("collector_web_query_slots"), m.get("collector_web_queries_running_peak")
            return n == cpus() and peak is not None and 1 <= peak <= n, f"slots {n} (cores {cpus()}), peak running {peak}"
        check(t, "collector web: at most N queries run at once, N = the number of cores", slots)

        def coalesced():
            before = c.metrics()
            res = [None] * 10

            def one(i):
                res[i] = request(c, f"/api/v1/render?{DAY}&max_nodes=4096&top=500", timeout=120)
            ths = [threading.Thread(target=one, args=(i,)) for i in range(10)]
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            after = c.metrics()
            ran = after["collector_web_queries_total"] - before["collector_web_queries_total"]
            bodies = {r[1] for r in res}
            ok = all(r[0] == 200 for r in res) and len(bodies) == 1 and ran == 1
            again = request(c, f"/api/v1/render?{DAY}&max_nodes=4096&top=500", timeout=120)
            hits = c.metrics()["collector_web_cache_hits_total"] - after["collector_web_cache_hits_total"]
            ok = ok and again[0] == 200 and again[1] in bodies and hits == 1
            return ok, f"statuses {[r[0] for r in res]}, {len(bodies)} distinct bodies, queries run {ran}; again: {again[0]}, cache hits {hits}"
        check(t, "collector web: ten identical renders at once cost one merge, the same answer each; the next is a cache hit", coalesced)
    finally:
        c.stop()
        c.cleanup()

    # one slot: the queue fills, and the rest is refused at once with Retry-After
    # (raw profiles only: a day read through its rollups is too quick, ~50 ms, to fill a queue)
    c = Collector("monitors: []\n", data_dir=store, extra_args=["--web-max-queries", "1", "--query-raw-only"], name="web-queue")
    try:
        def queue_bound():
            res = [None] * 12

            def one(i):
                res[i] = request(c, "/api/v1/render?" + day_from(5000 + i), timeout=120)
            ths = [threading.Thread(target=one, args=(i,)) for i in range(12)]
            for th in ths:
                th.start()
                time.sleep(0.02)
            for th in ths:
                th.join()
            refused = [r for r in res if r[0] == 503]
            fast = [r for r in refused if r[3] <= PROBE_TIMEOUT]
            bad = [(r[0], r[2].get("retry-after"), r[1][:120]) for r in res
                   if r[0] not in (200, 503) or (r[0] == 503 and not (r[2].get("retry-after") or "").isdigit())]
            errtypes = {json.loads(r[1])["errorType"] for r in refused}
            m = c.metrics()
            ok = any(r[0] == 200 for r in res) and fast and not bad and errtypes <= {"unavailable", "timeout"}
            ok = ok and m["collector_web_queries_running_peak"] == 1 and m.get('collector_web_queries_rejected_total{reason="queue_full"}', 0) >= 1
            return ok, (f"statuses {[r[0] for r in res]}, refused within {PROBE_TIMEOUT}s: {len(fast)}; bad {bad[:3]}; "
                        f"error types {errtypes}; peak {m.get('collector_web_queries_running_peak')}; "
                        f"rejected {[(k, v) for k, v in m.items() if 'rejected' in k]}")
        check(t, "collector web: with one query slot, a burst of 12 distinct day queries gets 200s, and 503 with Retry-After "
                 "at once when the queue is full", queue_bound)
    finally:
        c.stop()
        c.cleanup()

    # a deadline shorter than the query: 503 timeout on time; the answer finished in the
    # background serves the retry
    c = Collector("monitors: []\n", data_dir=store, extra_args=["--web-query-timeout", "1s", "--query-raw-only"],
                  name="web-deadline")
    try:
        def deadline():
            q = f"/api/v1/render?{DAY}&max_nodes=4096&top=500&base_from={now - 86400:.0f}&base_to={now - 43200:.0f}"
            before = c.metrics()
            st, body, hdr, secs = request(c, q, timeout=120)
            if st == 200:
                t.tool("web_load: the compared day takes longer than a 1 s deadline", False, f"answered in {secs:.3f}s")
                return True, "precondition not met"
            first = (st, hdr.get("retry-after"), body[:200], secs)
            ok = st == 503 and json.loads(body)["errorType"] == "timeout" and (hdr.get("retry-after") or "").isdigit() and secs < 1 + PROBE_TIMEOUT
            got = None
            end = time.time() + 120
            while time.time() < end:
                got = request(c, q, timeout=120)
                if got[0] == 200:
                    break
                time.sleep(0.5)
            ran = c.metrics()["collector_web_queries_total"] - before["collector_web_queries_total"]
            ok = ok and got and got[0] == 200 and ran == 1
            return ok, f"first answer {first}; retry {got and got[0]} after polling; queries run {ran}"
        check(t, "collector web: a query past its deadline gets 503 timeout with Retry-After on time; the answer finished in "
                 "the background serves the retry without a second merge", deadline)
    finally:
        c.stop()
        c.cleanup()


# ---- web_limits ------------------------------------------------------------------------------


def raw_exchange(port, head, body_source=None, source=None, wait=3.0):
    """Sends head (bytes), then feeds body_source() chunks from a thread while reading the answer;
    returns (status line, seconds until it came, whether the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(source, 0) if source else None)
    t0 = time.monotonic()
    s.sendall(head)
    sent = [0]

    def feed():
        try:
            for chunk in body_source():
                s.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass
    th = threading.Thread(target=feed, daemon=True) if body_source else None
    if th:
        th.start()
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    secs = time.monotonic() - t0
    closed = False
    try:
        s.settimeout(wait)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
    except OSError as e:
        closed = not isinstance(e, socket.timeout)
    s.close()
    if th:
        th.join(5)
    return data.split(b"\r\n", 1)[0].decode(errors="replace"), secs, closed, sent[0]


def close_wait(port):
    """Sockets of the collector's port in CLOSE-WAIT (the peer closed, the server did not)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(f).read().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "08":
                    n += 1
        except OSError:
            pass
    return n


def vm_hwm(pid):
    """The process's peak resident set (VmHWM), bytes."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


# The merge's memory in a budget: 80 series of one record each, of distinct stacks (1,296
# samples, ~0.1 MB decoded a record), merge into ~8 MB of result and more of tables, far past a
# 4 MiB budget, while each record alone fits its decoding share (1 MiB). The process's peak RSS
# (VmHWM, taken just before the query) may rise by the budget plus BUDGET_SLACK: what the
# query holds outside the codec's accounting (the store's row list, SQLite's page cache for
# the index, the pages malloc touches in the arenas of the two decoding threads and the query
# worker, allocator slack). Measured on this render: +0.6 to +2.4 MiB in all with the caps;
# without them (the merge capped by nothing, the result checked afterwards) +17.2 to +18.2 MiB.
BUDGET_SLACK = 4 << 20


def merge_budget(t):
    d = os.path.join(OUT, "web-merge-budget")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if not os.access(SB, os.X_OK):
        t.tool("web_limits: build/rel/bench/store-bench is built (make test-bins)", False, SB)
        return
    files = []
    for i in range(80):
        f = os.path.join(d, f"p{i}.pb.gz")
        open(f, "wb").write(wide_profile(4, 6, prefix=f"p{i}"))
        files.append(f)
    store = os.path.join(d, "store")
    p = subprocess.run([SB, "fill", store, "80", "1", "cpu", *files], capture_output=True, text=True, timeout=600)
    t.tool("web_limits: store-bench fills a store with 80 pods of one record each, of distinct stacks", p.returncode == 0, p.stderr[-2000:])
    if p.returncode != 0:
        return
    budget = 4 << 20
    sanitized = Collector.env is not None  # the collector-asan / collector-tsan runs
    c = Collector("monitors: []\n", data_dir=store, extra_args=["--web-query-memory", "4MiB"], name="web-merge-budget")
    try:
        def within_budget():
            m = c.metrics()
            got = m.get("collector_web_query_memory_budget_bytes")
            base = vm_hwm(c.proc.pid)
            st, body, _, secs = request(c, f"/api/v1/render?{DAY}&from={time.time() - 3600:.0f}&max_nodes=100&top=10",
                                        timeout=120)
            peak = vm_hwm(c.proc.pid)
            j = json.loads(body) if body.startswith(b"{") else {}
            err = j.get("error", "")
            ok = (got == budget and st == 422 and j.get("errorType") == "execution" and "merging the profiles" in err
                  and "merge: the merged profile needs more than its memory limit" in err and "over this query's memory budget of 4.0 MiB (--web-query-memory)" in err)
            if not sanitized:
                ok = ok and peak - base < budget + BUDGET_SLACK
            return ok, (f"budget {got}; {st} in {secs:.2f}s: {body[:300]!r}; peak RSS before {base / 2**20:.1f} MiB, after "
                        f"{peak / 2**20:.1f} MiB (+{(peak - base) / 2**20:.1f}, allowed < {(budget + BUDGET_SLACK) / 2**20:.1f})")
        # under a sanitizer the shadow memory and the allocator's quarantine make RSS say nothing
        # of ours (TSan: +22 MiB on this render), so there the case claims the 422 only
        check(t, "collector web: a render whose merge passes the 4 MiB budget gets 422 while merging" +
              ("" if sanitized else ", and the process's peak RSS rises by less than the budget + 4 MiB"), within_budget)
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


def timeline_unreadable(t):
    """A decoded timeline over a record damaged after the listing's store was opened: the record
    is left out and counted, the answer is 200 (it was a 500 before: one unreadable record failed
    the whole timeline)."""
    d = os.path.join(OUT, "web-timeline-unreadable")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    store = os.path.join(d, "store")
    files = [os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz") for i in range(1, 7)]
    p = subprocess.run([SB, "fill", store, "2", "6", "cpu", *files], capture_output=True, text=True, timeout=600)
    t.tool("web_limits: store-bench fills a store of 2 pods x 6 CPU records", p.returncode == 0, p.stderr[-2000:])
    if p.returncode != 0:
        return
    c = Collector("monitors: []\n", data_dir=store, extra_args=["--web-cache-size", "0"], name="web-timeline-unreadable")
    try:
        q = f"/api/v1/timeline?{DAY}&from={time.time() - 3600:.0f}&group_by=nokey"

        def points():
            st, body, _, _ = request(c, q)
            j = json.loads(body) if body.startswith(b"{") else {}
            return st, j, {e["labels"].get("monitor"): e["ids"] for e in j.get("data", [])}

        def damaged_is_left_out():
            st0, j0, before = points()
            if len(before.get("pod-0", [])) < 3:
                return False, f"before the damage: {st0} {before}"
            victim = before["pod-0"][2]
            db = sqlite3.connect(f"file:{os.path.join(store, 'index.db')}?mode=ro", uri=True)
            seg, off, n = db.execute("SELECT segment_id, data_off, data_len FROM profile WHERE id=?", (victim,)).fetchone()
            db.close()
            with open(os.path.join(store, "segments", f"{seg:016x}.seg"), "r+b") as f:
                f.seek(off + n // 2)
                b = f.read(1)
                f.seek(off + n // 2)
                f.write(bytes([b[0] ^ 0xFF]))
            st1, j1, after = points()
            render = request(c, f"/api/v1/render?{DAY}&from={time.time() - 3600:.0f}&max_nodes=100&top=10")
            want = {"pod-0": [i for i in before.get("pod-0", []) if i != victim], "pod-1": before.get("pod-1")}
            ok = (st0 == 200 and j0.get("recordsUnreadable") == 0 and [len(v) for v in before.values()] == [6, 6]
                  and st1 == 200 and j1.get("recordsUnreadable") == 1 and after == want and render[0] == 200)
            return ok, (f"before: {st0} unreadable {j0.get('recordsUnreadable')} ids {before}; record {victim} damaged; "
                        f"after: {st1} {json.dumps(j1)[:300] if st1 != 200 else ''} unreadable {j1.get('recordsUnreadable')} "
                        f"ids {after} (want {want}); render {render[0]}")
        check(t, "collector web: a decoded timeline (group_by=) over a record damaged while the collector runs leaves that "
                 "record out and counts it in recordsUnreadable (200, the other points as before)", damaged_is_left_out)
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


def web_limits(t):
    merge_budget(t)
    timeline_unreadable(t)
    d = os.path.join(OUT, "web-limits-auth")
    os.makedirs(d, exist_ok=True)
    users = os.path.join(d, "users")
    bcrypt = subprocess.run(["htpasswd", "-nbB", "bob", "b0b's pass"], capture_output=True, text=True)
    if bcrypt.returncode != 0 or "$2y$" not in bcrypt.stdout:
        t.tool("htpasswd -B writes a bcrypt hash (apache2-utils, make deps)", False, bcrypt.stderr)
        return
    open(users, "w").write(bcrypt.stdout.strip() + "\n")
    bob = {"Authorization": "Basic " + base64.b64encode("bob:b0b's pass".encode()).decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"bob:guess").decode()}
    ss = SeriesServer(lambda series, n: 1000 * n)
    wide = StaticServer(wide_profile())
    cfg = (f"monitors:\n- name: small\n  endpoint: {ss.url}/small\n  heap: {{interval_seconds: 3}}\n"
           f"- name: wide\n  endpoint: {wide.url}\n  heap: {{interval_seconds: 30}}\n")
    c = Collector(cfg, extra_args=["--web-basic-auth-file", users, "--web-query-memory", "8MiB"], name="web-limits")
    try:
        def half_open():
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft < 4096:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
            prober = Prober(c)
            socks, refused = [], 0
            t0 = time.monotonic()
            for i in range(2000):
                try:
                    s = socket.create_connection(("127.0.0.1", c.port), timeout=2, source_address=("127.0.0.2", 0))
                    s.sendall(b"GET /api/v1/series HTTP/1.1\r\nHost: collector\r\nX-Half: ")
                    socks.append(s)
                except OSError:
                    refused += 1
            opened = time.monotonic() - t0
            # the server closes each of them within seconds: at once past the per-address limit,
            # after the header timeout otherwise
            open_left = list(socks)
            end = time.monotonic() + 20
            while open_left and time.monotonic() < end:
                still = []
                for s in open_left:
                    s.setblocking(False)
                    try:
                        if s.recv(4096) == b"":
                            continue
                    except BlockingIOError:
                        still.append(s)
                        continue
                    except OSError:
                        continue
                    still.append(s)
                open_left = still
                time.sleep(0.25)
            closed_in = time.monotonic() - t0
            for s in socks:
                s.close()
            time.sleep(2)
            probes = prober.stop()
            problems = prober.problems()
            cw = close_wait(c.port)
            after = request(c, "/healthz", timeout=PROBE_TIMEOUT)
            ok = not problems and not open_left and cw == 0 and after[0] == 200 and len(probes) >= 50
            return ok, (f"{len(socks)} connected ({refused} refused) in {opened:.1f}s; {len(open_left)} still open after "
                        f"{closed_in:.1f}s; CLOSE-WAIT after the client closed: {cw}; {len(probes)} probes from another address, "
                        f"slowest {slowest(probes):.3f}s, late or failed {problems[:5]}; /healthz afterwards {after[0]}")
        check(t, "collector web: 2,000 half-sent requests from one address are closed within seconds, none left in CLOSE-WAIT, "
                 "probes from another address answer throughout", half_open)

        def total_cap():
            # 17 addresses x 63 half-sent requests: each address under WEB_MAX_PER_ADDRESS (64), together
            # past WEB_MAX_CONNECTIONS (1,024). The server holds 1,024 until the header timeout
            # (WEB_IDLE_TIMEOUT_S, 10 s) closes them; the other 47 wait unaccepted in the listen backlog
            # and are closed one timeout after they get in.
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft < 4096:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
            socks = []
            t0 = time.monotonic()
            for a in range(10, 27):
                for _ in range(63):
                    s = socket.create_connection(("127.0.0.1", c.port), timeout=2, source_address=(f"127.0.0.{a}", 0))
                    s.sendall(b"GET /api/v1/series HTTP/1.1\r\nHost: collector\r\nX-Half: ")
                    s.setblocking(False)
                    socks.append(s)
            closed_at = {}
            while len(closed_at) < len(socks) and time.monotonic() - t0 < 35:
                for i, s in enumerate(socks):
                    if i in closed_at:
                        continue
                    try:
                        s.recv(4096)
                        closed_at[i] = time.monotonic() - t0  # EOF (or an answer: also the end of it)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[i] = time.monotonic() - t0
                time.sleep(0.25)
            for s in socks:
                s.close()
            first = sorted(v for v in closed_at.values() if v < 15)
            later = sorted(v for v in closed_at.values() if v >= 15)
            health = request(c, "/healthz", timeout=PROBE_TIMEOUT)
            ok = len(socks) == 1071 and len(first) == 1024 and len(later) == 47 and first[0] >= 5 and health[0] == 200
            return ok, (f"{len(socks)} connected; closed before 15 s: {len(first)} (from {first[0] if first else 0:.1f} s), "
                        f"later: {len(later)} (from {later[0] if later else 0:.1f} s), never: {len(socks) - len(closed_at)}; "
                        f"/healthz afterwards {health[0]}")
        check(t, "collector web: at most 1,024 connections in all: past that, half-sent requests from many addresses wait "
                 "unaccepted until the header timeout frees places", total_cap)

        def big_post():
            body = lambda: (b"x" * 65536 for _ in range(800))  # 50 MiB
            line, secs, closed, sent = raw_exchange(c.port, b"POST /reload HTTP/1.1\r\nHost: c\r\n" + bob_header(bob) +
                                                    b"Content-Length: 52428800\r\n\r\n", body)
            chunked = lambda: (b"10000\r\n" + b"y" * 65536 + b"\r\n" for _ in range(800))
            line2, secs2, closed2, sent2 = raw_exchange(c.port, b"POST /-/reload HTTP/1.1\r\nHost: c\r\n" + bob_header(bob) +
                                                        b"Transfer-Encoding: chunked\r\n\r\n", chunked)
            small = http_req_auth(c, "POST", "/reload", bob, b"{}")
            health = request(c, "/healthz", timeout=PROBE_TIMEOUT)
            ok = line.startswith("HTTP/1.1 413") and secs < PROBE_TIMEOUT and closed and sent < 52428800
            ok = ok and line2.startswith("HTTP/1.1 413") and secs2 < PROBE_TIMEOUT and closed2 and sent2 < 52428800
            ok = ok and small[0] == 200 and health[0] == 200
            return ok, (f"Content-Length 50 MiB: {line!r} after {secs:.3f}s, closed {closed}, {sent} bytes sent; chunked: {line2!r} "
                        f"after {secs2:.3f}s, closed {closed2}, {sent2} sent; a 2-byte body: {small[0]}; /healthz {health[0]}")
        check(t, "collector web: a 50 MB POST /reload (Content-Length or chunked) gets 413 at once and the connection closes; "
                 "a small body still reloads; /healthz answers", big_post)

        def query_params():
            def get(q):
                st, body, _, _ = request(c, "/api/v1/series?" + q, headers=bob)
                j = json.loads(body) if body.startswith(b"{") else {}
                return st, j.get("errorType"), j.get("error")
            many = lambda n: "&".join(f"l{i}=v" for i in range(n))
            # (status, errorType, error) wanted: web.h's WEB_MAX_PARAMS (64) and WEB_MAX_PARAM_LEN (1,024 bytes)
            cases = [("64 parameters", many(64), (200, None, None)),
                     ("65 parameters", many(65), (400, "bad_data", "too many query parameters")),
                     ("a 1,024-byte value", "l=" + "v" * 1024, (200, None, None)),
                     ("a 1,025-byte value", "l=" + "v" * 1025, (400, "bad_data", "query parameter too long")),
                     ("a 1,025-byte name", "l" * 1025 + "=v", (400, "bad_data", "query parameter too long"))]
            got = [(name, get(q), want) for name, q, want in cases]
            return all(g == w for _, g, w in got), "; ".join(f"{n}: {g}" for n, g, _ in got)
        check(t, "collector web: query parameters are limited to 64, each name and value to 1,024 bytes (400 past either)",
              query_params)

        def auth_cached():
            before = parse_metrics(request(c, '/metrics', headers=bob)[1])
            sts = [request(c, "/api/v1/series", headers=bob)[0] for _ in range(20)]
            after = parse_metrics(request(c, '/metrics', headers=bob)[1])
            runs = after["collector_web_auth_verifications_total"] - before["collector_web_auth_verifications_total"]
            return sts == [200] * 20 and runs <= 1, f"statuses {sorted(set(sts))}, password hashes computed {runs} (want at most 1)"
        check(t, "collector web auth: a user's verified Basic credentials are cached (20 requests, at most one bcrypt)", auth_cached)

        def auth_rate_limited():
            before = parse_metrics(request(c, '/metrics', headers=bob)[1])
            res = [request(c, "/api/v1/series", headers=wrong, source="127.0.0.3") for _ in range(15)]
            after = parse_metrics(request(c, '/metrics', headers=bob)[1])
            runs = after["collector_web_auth_verifications_total"] - before["collector_web_auth_verifications_total"]
            sts = [r[0] for r in res]
            limited = [r for r in res if r[0] == 429]
            ok = sts[0] == 401 and limited and all((r[2].get("retry-after") or "").isdigit() for r in limited)
            ok = ok and set(sts) <= {401, 429} and runs <= 8
            # the right password from the same address still works (verified before: cached)
            right = request(c, "/api/v1/series", headers=bob, source="127.0.0.3")
            other = request(c, "/api/v1/series", headers=wrong, source="127.0.0.4")
            ok = ok and right[0] == 200 and other[0] == 401
            return ok, f"statuses {sts}; bcrypt runs {runs}; right password from there {right[0]}; another address {other[0]}"
        check(t, "collector web auth: failed Basic logins from one address are rate-limited (429 with Retry-After, no bcrypt "
                 "for each); cached credentials and other addresses are unaffected", auth_rate_limited)

        c.wait_for(lambda: req_json(c, "/api/v1/profiles?type=heap&name=wide", bob)[0] == 200 and
                   len(req_json(c, "/api/v1/profiles?type=heap&name=wide", bob)[1]["data"]) >= 1, timeout=30)

        def memory_budget():
            out = []
            for path in ("/api/v1/render?type=heap&name=wide&max_nodes=200000&top=20000",
                         "/api/v1/render?type=heap&name=wide&max_nodes=200000&top=20000&encoding=binary", "/api/v1/profile?type=heap&name=wide",
                         # a decoded timeline holds one record's profile at a time, in a quarter of the budget
                         "/api/v1/timeline?type=heap&name=wide&function=pkg/level0.fn0"):
                st, body, hdr, _ = request(c, path, headers=bob, timeout=60)
                j = json.loads(body) if body.startswith(b"{") else {}
                if st != 422 or j.get("errorType") != "execution" or "memory budget" not in j.get("error", ""):
                    out.append(f"{path}: {st} {body[:200]!r}")
            small = request(c, "/api/v1/render?type=heap&name=small&max_nodes=100&top=10", headers=bob)
            health = request(c, "/healthz", timeout=PROBE_TIMEOUT)
            if small[0] != 200 or health[0] != 200 or c.proc.poll() is not None:
                out.append(f"small render {small[0]}, /healthz {health[0]}, process {c.proc.poll()}")
            return not out, "\n".join(out)
        check(t, "collector web: a query over its memory budget (render in JSON and binary, profile, a decoded timeline) gets 422 naming the budget; others and the process go on", memory_budget)

        def cache_and_store_state():
            q = "/api/v1/render?type=heap&name=small&max_nodes=100&top=10"
            polls = iter(range(10000, 0, -1))
            # (each poll a different query: the cache's hits below are the render's alone)
            count = lambda: len(req_json(c, f"/api/v1/profiles?type=heap&name=small&limit={next(polls)}", bob)[1]["data"])
            n0 = count()
            c.wait_for(lambda: count() > n0, timeout=10, step=0.05)  # right after a scrape: 3 s without one
            m0 = parse_metrics(request(c, '/metrics', headers=bob)[1])
            a = request(c, q, headers=bob)
            b = request(c, q, headers=bob)
            m1 = parse_metrics(request(c, '/metrics', headers=bob)[1])
            n1 = count()
            c.wait_for(lambda: count() > n1, timeout=10, step=0.05)
            cc = request(c, q, headers=bob)
            m2 = parse_metrics(request(c, '/metrics', headers=bob)[1])
            hits1 = m1["collector_web_cache_hits_total"] - m0["collector_web_cache_hits_total"]
            hits2 = m2["collector_web_cache_hits_total"] - m1["collector_web_cache_hits_total"]
            pa, pc = json.loads(a[1])["data"]["profiles"], json.loads(cc[1])["data"]["profiles"]
            ok = a[0] == b[0] == cc[0] == 200 and a[1] == b[1] and hits1 == 1 and hits2 == 0 and pc > pa
            return ok, f"hits {hits1} then {hits2} after a new profile; profiles {pa} -> {pc}"
        check(t, "collector web cache: the same query again is a cache hit; a newly stored profile (store state) makes it a miss "
                 "with the new data", cache_and_store_state)
    finally:
        c.stop()
        c.cleanup()
        ss.stop()
        wide.stop()
        shutil.rmtree(d, ignore_errors=True)


def bob_header(h):
    return f"Authorization: {h['Authorization']}\r\n".encode()


def http_req_auth(c, method, path, auth, data=None):
    hc = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    hc.request(method, path, body=data, headers=auth)
    r = hc.getresponse()
    body = r.read()
    hc.close()
    return r.status, body


def req_json(c, path, auth):
    st, body, _, _ = request(c, path, headers=auth)
    return st, json.loads(body) if body.startswith(b"{") else body





# ---- utf8: invalid bytes in every string field ------------------------------------------------

# (field, bytes): each string of the profile; several invalid UTF-8 forms (a lone continuation,
# a truncated sequence, an overlong form, a surrogate, past U+10FFFF, bytes never valid) and
# valid non-ASCII text, which must come through unchanged
BAD = {
    "type": b"inuse\xffspace",
    "unit": b"by\xc3tes",
    "count_type": b"obj\xe2\x82ects",
    "count_unit": b"count",
    "fn_main": b"main.handle\xc0\xaf",
    "fn_mid": b"pkg/\xed\xa0\x80sur.(*T).M",
    "fn_leaf": b"caf\xc3\xa9.\xe4\xb8\x96\xe7\x95\x8c.run\xf4\x90\x80\x80",
    "fn_trunc": b"x.trunc\xf0\x9f\x98",
    "sysname": b"sys\xfe\xfe",
    "file": b"/src/\x80\x81file.go",
    "mapping": b"/usr/bin/ap\x80p",
    "build_id": b"\xde\xad\xbe\xef",
    "label_key": b"k\xffey",
    "label_val": b"v\xfe\x80al",
    "num_key": b"by\xf5tes",
    "num_unit": b"u\xc1nit",
    "comment": b"comm\xffent",
    "period_type": b"spa\xffce",
    "doc_url": b"http://x/\xe0\x80\xaf",
}


def badtext_profile(valid_types=False):
    """A heap-like profile whose every string carries invalid UTF-8 (BAD): four functions, one
    frame without a function (its name comes from the mapping's file), labels, a comment.
    valid_types: sample types in plain ASCII, so only names and the rest are invalid."""
    strings = [b""]
    idx = {b"": 0}

    def s(v):
        if v not in idx:
            idx[v] = len(strings)
            strings.append(v)
        return idx[v]
    ty = (b"objects", b"count", b"space", b"bytes") if valid_types else (BAD["count_type"], BAD["count_unit"], BAD["type"], BAD["unit"])
    p = field(1, field(1, s(ty[0])) + field(2, s(ty[1])))
    p += field(1, field(1, s(ty[2])) + field(2, s(ty[3])))
    # mapping 1, with a file name and build id
    p += field(3, field(1, 1) + field(2, 0x400000) + field(3, 0x800000) + field(5, s(BAD["mapping"])) + field(6, s(BAD["build_id"])))
    fns = ["fn_main", "fn_mid", "fn_leaf", "fn_trunc"]
    for i, f in enumerate(fns, 1):
        p += field(5, field(1, i) + field(2, s(BAD[f])) + field(3, s(BAD["sysname"])) + field(4, s(BAD["file"])) + field(5, 10 * i))
        p += field(4, field(1, i) + field(2, 1) + field(3, 0x401000 + i) + field(4, field(1, i) + field(2, 10 * i + 1)))
    p += field(4, field(1, 9) + field(2, 1) + field(3, 0x402000))  # no function: named by the mapping
    lab = field(3, field(1, s(BAD["label_key"])) + field(2, s(BAD["label_val"])))
    lab += field(3, field(1, s(BAD["num_key"])) + field(3, 4096) + field(4, s(BAD["num_unit"])))
    for stack, vals in (([3, 2, 1], (3, 3000)), ([4, 2, 1], (2, 2000)), ([9, 1], (1, 1000))):
        p += field(2, field(1, b"".join(varint(x) for x in stack)) + field(2, b"".join(varint(v) for v in vals)) + lab)
    p += field(11, field(1, s(BAD["period_type"])) + field(2, s(b"bytes"))) + field(12, 524288)
    p += field(13, s(BAD["comment"])) + field(15, s(BAD["doc_url"]))
    for v in strings:
        p += field(6, v)
    p += field(9, time.time_ns())
    return gzip.compress(p)


def fix(b):
    """What a browser shows for bytes that should be UTF-8: each maximal invalid subpart one
    U+FFFD (the WHATWG decoder; Python's 'replace' follows the same rule)."""
    return b.decode("utf-8", "replace")


def go_bytes(args):
    """go tool pprof's output as bytes (it prints strings as the profile has them)."""
    p = subprocess.run(["go", "tool", "pprof", "-symbolize=none", *args], capture_output=True, timeout=600)
    if p.returncode:
        raise RuntimeError(p.stderr.decode(errors="replace")[-1000:])
    return p.stdout


def go_top_names(path, index):
    """Function names of go tool pprof -top (every one, at sample index `index`), as bytes."""
    out = go_bytes(["-top", "-nodecount=1000000000", "-nodefraction=0", "-edgefraction=0", f"-sample_index={index}", path])
    lines = out.split(b"\n")
    start = next(i for i, l in enumerate(lines) if l.split() == [b"flat", b"flat%", b"sum%", b"cum", b"cum%"])
    names = set()
    for l in lines[start + 1:]:
        if l.strip():
            name = l.split(None, 5)[5]
            for suffix in (b" (inline)", b" (partial-inline)"):
                if name.endswith(suffix):
                    name = name[:-len(suffix)]
            names.add(name)
    return names


def strict_json(body):
    """The answer decoded as strict UTF-8 and JSON (raises on either)."""
    return json.loads(body.decode("utf-8", "strict"))


def utf8(t):
    body = badtext_profile()
    srv, names_only = StaticServer(body), StaticServer(badtext_profile(valid_types=True))
    cfg = (f"monitors:\n- name: badtext\n  endpoint: {srv.url}\n  labels: {{team: \"caf\u00e9\"}}\n  heap: {{interval_seconds: 1}}\n"
           f"- name: badnames\n  endpoint: {names_only.url}\n  heap: {{interval_seconds: 1}}\n")
    c = Collector(cfg, name="utf8")
    src = os.path.join(OUT, "utf8-served.pb.gz")
    open(src, "wb").write(body)
    try:
        # (counted by /metrics: the API's answers are what is under test)
        ok = c.wait_for(lambda: c.metric("collector_ingested_profiles_total") >= 4, timeout=30)
        t.tool("utf8: the profile with invalid UTF-8 in every string field is scraped and stored", ok, open(c.log).read()[-1500:])
        if not ok:
            return
        types = [(fix(BAD["count_type"]), fix(BAD["count_unit"])), (fix(BAD["type"]), fix(BAD["unit"]))]
        want_names = {fix(n) for n in go_top_names(src, 1)}

        def render(name="badtext"):
            st, raw, _ = http_req("GET", f"{c.url}/api/v1/render?type=heap&name={name}&agg=latest&sample=1&max_nodes=1000&top=100")
            d = strict_json(raw)["data"]
            names = d["names"]
            out = []
            used = [n[0] for n in d["nodes"]]
            if any(i < 0 or i >= len(names) for i in used):
                out.append(f"a node names index {max(used)} of {len(names)} names")
            flame = {names[i] for i in used[1:] if 0 <= i < len(names)}
            top = {r["name"] for r in d["top"]}
            if flame != want_names:
                out.append(f"flame graph names {sorted(flame)}, go tool pprof's (made valid) {sorted(want_names)}")
            if top != want_names:
                out.append(f"top table names {sorted(top)}, want {sorted(want_names)}")
            want_types = types if name == "badtext" else [("objects", "count"), ("space", "bytes")]
            if (d["sampleType"]["type"], d["sampleType"]["unit"]) != want_types[1] or \
                    [(x["type"], x["unit"]) for x in d["sampleTypes"]] != want_types:
                out.append(f"sample types {d['sampleType']} {d['sampleTypes']}, want {types}")
            # totals and structure are those of the profile: each node's name is its own
            by_name = {names[n[0]]: n for n in d["nodes"][1:] if 0 <= n[0] < len(names)}
            leaf = by_name.get(fix(BAD["fn_leaf"]))
            if not leaf or leaf[2] != 3000 or names[d["nodes"][leaf[1]][0]] != fix(BAD["fn_mid"]):
                out.append(f"the leaf {fix(BAD['fn_leaf'])!r}: {leaf}, its parent should be {fix(BAD['fn_mid'])!r}")
            return st == 200 and not out, "\n".join(out)
        check(t, "collector utf8: render answers valid UTF-8 JSON; names stay aligned with the nodes, each one the function's "
                 "name made valid (U+FFFD per invalid sequence), mapping-named frames and sample types too", render)
        check(t, "collector utf8: with valid sample types and invalid function names, render's names array keeps its "
                 "length and every node its own name", lambda: render("badnames"))

        def other_answers():
            out = []
            rows = None
            for path in ("/api/v1/series?name=badtext", "/api/v1/profiles?type=heap&name=badtext",
                         "/api/v1/timeline?type=heap&name=badtext&sample=1", "/api/v1/targets",
                         f"/api/v1/render?type=heap&name=badtext&sample={quote(fix(BAD['type']))}&max_nodes=10&top=5",
                         "/api/v1/render?type=heap&name=badtext&sample=" + "%FF%FE", "/api/v1/series?l%FF=v%FE"):
                st, raw, _ = http_req("GET", c.url + path)
                try:
                    j = strict_json(raw)
                except ValueError as e:
                    out.append(f"{path}: {st}, not valid UTF-8 JSON ({e}): {raw[:120]!r}")
                    continue
                if path.startswith("/api/v1/series?name"):
                    got = [(x["type"], x["unit"]) for x in j["data"][0]["sampleTypes"]]
                    if got != types or j["data"][0]["labels"].get("team") != "caf\u00e9":
                        out.append(f"series: sample types {got}, labels {j['data'][0]['labels']}")
                elif path.startswith("/api/v1/profiles"):
                    rows = j["data"]
                    want = ",".join(f"{a}/{b}" for a, b in types)
                    if rows[0]["sampleTypes"] != want or rows[0]["totals"] != [6, 6000]:
                        out.append(f"profiles: sampleTypes {rows[0]['sampleTypes']!r}, want {want!r}; totals {rows[0]['totals']}")
                elif path.startswith("/api/v1/timeline"):
                    pts = j["data"][0]["points"]
                    if not pts or any(p[2] != 6000 for p in pts):
                        out.append(f"timeline points {pts[:3]}")
                elif "sample=%FF" in path or "l%FF" in path:
                    if st != 400 or "\ufffd" not in j["error"]:
                        out.append(f"{path}: {st} {j}")
                elif "sample=" in path and st != 200:
                    out.append(f"{path}: {st} {j}")
            st, raw, _ = http_req("GET", c.url + "/raw")
            try:
                page = raw.decode("utf-8", "strict")
                if "caf\u00e9" not in page:
                    out.append("/raw lacks the label value")
            except UnicodeDecodeError as e:
                out.append(f"/raw is not valid UTF-8: {e}")
            return not out, "\n".join(out)
        check(t, "collector utf8: series, profiles, timeline, targets, /raw and the errors about bad parameters are valid "
                 "UTF-8 with the strings made valid", other_answers)

        def pprof_download():
            # the pprof answer keeps every string as the profile had it: go tool pprof reads the
            # served profile and the download alike
            # (the newest record: the peer serves the same bytes every time)
            st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?type=heap&name=badtext&agg=latest")
            f = os.path.join(OUT, "utf8-download.pb.gz")
            open(f, "wb").write(data)
            a = RawProfile(go_bytes(["-raw", src]).decode("utf-8", "surrogateescape"))
            b = RawProfile(go_bytes(["-raw", f]).decode("utf-8", "surrogateescape"))
            diff = compare_raw(b, a)
            raw = go_bytes(["-raw", f])
            missing = [k for k in ("label_key", "label_val", "num_key", "num_unit", "mapping", "fn_trunc", "file") if BAD[k] not in raw]
            return st == 200 and not diff and not missing, f"{diff}; missing from go -raw: {missing}"
        check(t, "collector utf8: /api/v1/profile serves the strings byte for byte (go tool pprof -raw reads the served and "
                 "downloaded profiles alike)", pprof_download)

        def sample_labels():
            # the sample label's key and value are invalid UTF-8: /api/v1/tags lists them made valid,
            # a tag= filter and a group_by= given as the raw bytes (percent-encoded) find them
            key, val = quote(BAD["label_key"]), quote(BAD["label_val"])
            out = []
            st, raw, _ = http_req("GET", f"{c.url}/api/v1/tags?type=heap&name=badtext&agg=latest&sample=1")
            j = strict_json(raw)
            keys = {k["key"]: [v["value"] for v in k["values"]] for k in j["data"]["keys"]}
            if st != 200 or keys != {fix(BAD["label_key"]): [fix(BAD["label_val"])]}:
                out.append(f"tags: {st} {keys}")
            st, raw, _ = http_req("GET", f"{c.url}/api/v1/render?type=heap&name=badtext&agg=latest&sample=1&tag={key}%3D{val}")
            r = strict_json(raw)
            if st != 200 or r["data"]["total"] != 6000:
                out.append(f"tag=KEY=VALUE (raw bytes): {st} total {r.get('data', {}).get('total')}, want 6000")
            st, raw, _ = http_req("GET", f"{c.url}/api/v1/render?type=heap&name=badtext&agg=latest&sample=1&group_by={key}")
            r = strict_json(raw)
            kids = [r["data"]["names"][n[0]] for n in r["data"]["nodes"] if n[1] == 0]
            if st != 200 or kids != [fix(BAD["label_val"])]:
                out.append(f"group_by (raw bytes): {st} root's children {kids}")
            st, raw, _ = http_req("GET", f"{c.url}/api/v1/timeline?type=heap&name=badtext&sample=1&group_by={key}")
            j = strict_json(raw)
            tags = {json.dumps(e["tag"]) for e in j["data"]}
            if st != 200 or tags != {json.dumps({fix(BAD["label_key"]): fix(BAD["label_val"])})}:
                out.append(f"timeline group_by (raw bytes): {st} {tags}")
            return not out, "\n".join(out)
        check(t, "collector utf8: sample labels of invalid UTF-8: /api/v1/tags, tag=, group_by= (render and timeline) answer "
                 "valid JSON naming them made valid", sample_labels)
    finally:
        c.stop()
        c.cleanup()
        srv.stop()
        names_only.stop()


PARTS = {"web_load": web_load, "web_limits": web_limits, "utf8": utf8}
