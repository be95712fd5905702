#!/usr/bin/env python3
"""`make test`: every test of the project, one tally, one closing line `N passed, N failed`.

Suites: C unit tests (optimised and ASan+UBSan builds), fuzz corpus replay (ASan+UBSan),
valgrind memcheck, conformance with go tool pprof, the collector against real Go peers, the UI
in Chromium, the real Kubernetes control plane (tests/lib/cluster.py), the operator on it with
kubectl (tests/operator), and the container images. Exits non-zero on any
failure.

`tests/run.py SUITE[:PART,...]...` runs a subset: `unit:test_store`, `valgrind:tool`,
`conformance:roundtrip,merge`, `collector:faults,reload`, `collector-asan` and `collector-tsan`
(the collector's integration tests against the ASan+UBSan and the ThreadSanitizer builds). Each suite lists its parts in its module.

Counting: the last line is `N passed, M failed`. N counts the product's cases only; cases that
check our test tools and preconditions are counted on a line of their own above it, and their
failures are part of M. Cases run under a sanitizer or valgrind (repeats of other cases, and
the fuzz replays) carry it in their names ([asan], [tsan], "under ASan+UBSan", valgrind) and are counted
on the line above it too."""
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "collector"))

from harness import OUT, ROOT, TESTDATA, TOOL, Tally, run  # noqa: E402


def unit(t, parts=None):
    bins = sorted(glob.glob(os.path.join(ROOT, "build", "rel", "tests", "test_*")) +
                  glob.glob(os.path.join(ROOT, "build", "asan", "tests", "test_*")))
    bins = [b for b in bins if os.access(b, os.X_OK) and not b.endswith((".o", ".d"))]
    if parts:
        bins = [b for b in bins if os.path.basename(b) in parts]
    if not bins:
        t.tool("unit: test binaries exist", False, "none built")
    env = {"PPROF_TESTDATA": TESTDATA, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    for b in bins:
        flavour = os.path.basename(os.path.dirname(os.path.dirname(b)))
        p = run([b], env=env, cwd=ROOT)
        seen = 0
        for line in p.stdout.splitlines():
            if line.startswith("ok - ") or line.startswith("not ok - "):
                ok = line.startswith("ok - ")
                name = line.split(" - ", 1)[1]
                t.record(f"unit[{flavour}] {os.path.basename(b)}: {name}", ok, "" if ok else p.stderr)
                seen += 1
        # a crash (sanitizer report, signal) after the last test line is a failure of its own
        if p.returncode != 0 and "not ok" not in p.stdout or seen == 0:
            t.record(f"unit[{flavour}] {os.path.basename(b)}: exits cleanly", False,
                     f"exit {p.returncode}\n{p.stderr[-3000:]}")
    if not parts:
        # the mutation check's precondition: a mutant whose edit no longer matches the source
        # would break nothing, and `make mutants` would stop at it (no build, no run here)
        m = run([sys.executable, os.path.join(ROOT, "tests", "mutants.py"), "--check"], cwd=ROOT)
        t.tool("unit: every mutant's edit still applies to the source (tests/mutants.py --check)", m.returncode == 0,
               (m.stdout + m.stderr)[-2000:])


SANITIZER_REPORT = re.compile(r"runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: \w+Sanitizer|WARNING: ThreadSanitizer")


def fuzz_targets():
    """The fuzz targets (decode, config, ...): one per fuzz/fuzz_*.c."""
    return sorted(os.path.basename(f)[len("fuzz_"):-2] for f in glob.glob(os.path.join(ROOT, "fuzz", "fuzz_*.c")))


def fuzz(t, parts=None):
    """Every fuzz target's corpus replayed by a binary built as the fuzzers are (clang, ASan +
    UBSan, every report fatal): each input must run without a crash, a leak or undefined
    behaviour, and the replay must say it ran them all. Parts: the targets (decode, config, ...)."""
    bins = sorted(glob.glob(os.path.join(ROOT, "build", "clang", "fuzz", "*-replay")))
    targets = {os.path.basename(b)[len("fuzz_"):-len("-replay")]: b for b in bins}
    for target in [x for x in fuzz_targets() if not parts or x in parts]:
        b = targets.get(target)
        if not b:
            t.tool(f"fuzz replay {target}: build/clang/fuzz/fuzz_{target}-replay is built (make test builds it)", False)
            continue
        corpus = os.path.join(ROOT, "fuzz", "corpus", target)
        n = len([f for f in os.listdir(corpus) if not f.startswith(".")]) if os.path.isdir(corpus) else 0
        p = run([b, corpus], env={"ASAN_OPTIONS": "detect_leaks=1:handle_abort=1",
                                  "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        report = SANITIZER_REPORT.search(p.stderr)
        ok = p.returncode == 0 and n > 0 and not report and f"replayed {n} inputs" in p.stdout
        t.record(f"fuzz replay {target}: {n} corpus inputs under ASan+UBSan (clang, every report fatal)", ok,
                 f"exit {p.returncode}\n" + p.stdout[-500:] + p.stderr[-3000:])


VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect"]


def valgrind_clean(log):
    """'' when a valgrind log holds no error and no definite or indirect leak, else the reason.
    The ERROR SUMMARY line must be there: a log cut short (valgrind killed) is not clean."""
    text = open(log).read() if os.path.exists(log) else ""
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    if not summary:
        return "no ERROR SUMMARY in the valgrind log:\n" + text[-2000:]
    if summary[-1] != "0":
        return f"{summary[-1]} errors:\n" + text[-3000:]
    for kind in ("definitely lost", "indirectly lost"):
        m = re.search(kind + r": ([0-9,]+) bytes", text)
        if m and m.group(1) != "0":
            return f"{kind}: {m.group(1)} bytes\n" + text[-3000:]
    return ""


def valgrind(t, parts=None):
    parts = set(parts or ("tool", "collector"))
    if run(["which", "valgrind"]).returncode != 0:
        t.tool("valgrind: installed", False, "valgrind missing (make deps)")
        return
    if "tool" in parts:
        valgrind_tool(t)
    if "collector" in parts:
        valgrind_collector(t)


def valgrind_tool(t):
    """pprof-tool under memcheck: each command exits as it does without valgrind, prints the
    same output, and the log shows no error and no leak."""
    g = os.path.join(TESTDATA, "gotarget")
    out = os.path.join(OUT, "vg-merge.pb.gz")
    ref_out = os.path.join(OUT, "vg-merge-ref.pb.gz")
    cpus = sorted(glob.glob(os.path.join(g, "cpu-*.pb.gz")))
    cmds = [("top heap", [TOOL, "top", os.path.join(g, "heap.pb.gz")], 0, "runtime"),
            ("merge cpu", [TOOL, "merge", "-o", out] + cpus, 0, None),
            ("diff", [TOOL, "diff", "--base", os.path.join(g, "cpu-1.pb.gz"), os.path.join(g, "cpu-2.pb.gz")], 0, "main."),
            ("folded", [TOOL, "folded", os.path.join(g, "mutex.pb.gz")], 0, ";"),
            ("bad input", [TOOL, "top", os.path.join(g, "goroutine-debug2.txt")], 1, None)]
    for name, cmd, code, text in cmds:
        log = os.path.join(OUT, f"vg-{name.replace(' ', '-')}.log")
        p = run(VALGRIND + ["-q", f"--log-file={log}"] + cmd, timeout=900)
        # the same command without valgrind is the reference for what it prints
        ref = run([c if c != out else ref_out for c in cmd])
        problems = []
        if p.returncode != code:
            problems.append(f"exit {p.returncode}, want {code} (99 = valgrind found errors)")
        if ref.returncode != code:
            problems.append(f"without valgrind: exit {ref.returncode}, want {code}")
        if p.stdout != ref.stdout or (text and text not in p.stdout):
            problems.append(f"output differs from the run without valgrind or lacks {text!r}: {p.stdout[:300]!r}")
        if name == "merge cpu" and (not os.path.exists(out) or open(out, "rb").read() != open(ref_out, "rb").read()):
            problems.append("merged file differs from the run without valgrind")
        if code == 1 and "goroutine-debug2.txt" not in p.stderr:
            problems.append(f"error does not name the file: {p.stderr[-300:]!r}")
        # -q prints nothing on a clean run; a summary is forced by rerunning would cost time, so
        # a clean -q log is empty and any line in it is a finding
        vlog = open(log).read() if os.path.exists(log) else None
        if vlog is None:
            problems.append("no valgrind log")
        elif vlog.strip():
            problems.append("valgrind reported:\n" + vlog[-3000:])
        t.record(f"valgrind pprof-tool {name}: exit {code}, same output, no errors or leaks", not problems, "\n".join(problems))


def valgrind_collector(t):
    """The collector under memcheck: it gets ready, scrapes the demo target, stores, answers
    the API with the right content, reloads, and stops with exit 0 and a clean log."""
    import json
    import shutil
    import signal
    import subprocess
    import tempfile
    from peers import DemoTarget, free_port, http_req, wait_http
    demo = DemoTarget()
    d = tempfile.mkdtemp(prefix="vg-collector-")
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"monitors:\n- name: demo\n  endpoint: {demo.url}\n  profile: {{seconds: 1}}\n"
                f"  heap: {{interval_seconds: 1}}\n  goroutine: {{interval_seconds: 1}}\n")
    port = free_port()
    log = os.path.join(d, "valgrind.log")
    p = subprocess.Popen(VALGRIND + [f"--log-file={log}", os.path.join(ROOT, "bin", "collector"), "-c", cfg, "-d",
                                     os.path.join(d, "data"), "-p", str(port), "--web-listen-address", "127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    problems = []
    try:
        url = f"http://127.0.0.1:{port}"

        def get(path):
            st, body, hdr = http_req("GET", url + path, timeout=120)
            return st, body

        # ready means 200 from /readyz, not any answer (503 is "not ready")
        end = time.time() + 120
        ready = False
        while time.time() < end and not ready:
            wait_http(url + "/readyz", 5)
            try:
                ready = get("/readyz")[0] == 200
            except OSError:
                pass
            if not ready:
                time.sleep(0.5)
        if not ready:
            problems.append("/readyz never answered 200")

        def stored(ty):
            st, body = get(f"/api/v1/profiles?type={ty}&name=demo")
            return json.loads(body)["data"] if st == 200 else []
        end = time.time() + 90
        while time.time() < end and not all(stored(ty) for ty in ("cpu", "heap", "goroutine")):
            time.sleep(1)
        st, body = get("/api/v1/targets")
        targets = json.loads(body)["data"] if st == 200 else []
        if sorted(tg["type"] for tg in targets) != ["cpu", "goroutine", "heap"] or not all(tg["health"] == "up" for tg in targets):
            problems.append(f"targets: {st} {body[:600]!r}")
        for ty in ("cpu", "heap", "goroutine"):
            rows = stored(ty)
            if not rows:
                problems.append(f"nothing stored for {ty}")
                continue
            st, data = get(f"/api/v1/profile?type={ty}&name=demo")
            f = os.path.join(d, f"{ty}.pb.gz")
            open(f, "wb").write(data)
            info = run([TOOL, "info", f])
            if st != 200 or info.returncode != 0 or "samples:" not in info.stdout:
                problems.append(f"/api/v1/profile {ty}: HTTP {st}, pprof-tool info: {info.stdout[:200]} {info.stderr[:200]}")
        st, body = get("/api/v1/series")
        if st != 200 or len(json.loads(body)["data"]) != 3:
            problems.append(f"/api/v1/series: {st} {body[:300]!r}")
        st, body = get("/metrics")
        if st != 200 or b"collector_ingested_profiles_total" not in body:
            problems.append(f"/metrics: {st}")
        st, body = get("/")
        if st != 200 or b"/ui/app.js" not in body:
            problems.append(f"/: {st}")
        # a pushed heap profile (multipart, as pyroscope-go sends it): stored as heap and allocs
        heap = open(os.path.join(TESTDATA, "prometheus", "heap.pb.gz"), "rb").read()
        form = (b'--vgpush\r\nContent-Disposition: form-data; name="profile"; filename="profile.pprof"\r\n'
                b'Content-Type: application/octet-stream\r\n\r\n' + heap + b'\r\n--vgpush--\r\n')
        st, body, _ = http_req("POST", url + "/ingest?name=vg-push%7Benv%3Dx%7D", form, timeout=120,
                               headers={"Content-Type": "multipart/form-data; boundary=vgpush"})
        pst, pbody = get("/api/v1/series?service_name=vg-push")
        pushed = sorted(e["profileType"] for e in json.loads(pbody)["data"]) if pst == 200 else []
        if st != 200 or pushed != ["allocs", "heap"]:
            problems.append(f"POST /ingest: {st} {body[:200]!r}; series {pushed}")
        # Grafana's data source API: a flame graph and a time series (Connect, JSON; the flame
        # graph's total is the merged CPU profile's, as /api/v1/render has it)
        # (up to the newest CPU profile stored: one scrape of a target at a time, so none ends before it later)
        end_ms = max(r["endUnixNano"] for r in stored("cpu")) // 10**6
        q = {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": '{monitor="demo"}',
             "start": str(end_ms - 3600000), "end": str(end_ms)}
        st, body, _ = http_req("POST", url + "/querier.v1.QuerierService/SelectMergeStacktraces", json.dumps(q).encode(),
                               timeout=120, headers={"Content-Type": "application/json"})
        rst, rbody = get(f"/api/v1/render?type=cpu&name=demo&sample=cpu&to={end_ms // 1000}.{(end_ms % 1000) * 10**6 + 999999:09d}")
        fg = json.loads(body).get("flamegraph", {}) if st == 200 else {}
        if st != 200 or rst != 200 or int(fg.get("total", -1)) != json.loads(rbody)["data"]["total"]:
            problems.append(f"SelectMergeStacktraces: {st} {body[:200]!r}; render {rst}")
        st, body, _ = http_req("POST", url + "/querier.v1.QuerierService/SelectSeries", json.dumps({**q, "step": 60, "groupBy": ["pod"]}).encode(),
                               timeout=120, headers={"Content-Type": "application/json"})
        if st != 200 or not json.loads(body).get("series"):
            problems.append(f"SelectSeries: {st} {body[:200]!r}")
        # OTLP profiles (pdata's encoding, tools/otlp-client): a heap, four OTLP profiles, stored as one heap
        oc = subprocess.run([os.path.join(ROOT, "bin", "otlp-client"), "-server", url, "-service", "vg-otlp", "-in",
                             os.path.join(TESTDATA, "gotarget", "heap.pb.gz")], capture_output=True, text=True, errors="replace", timeout=300)
        ost, obody = get("/api/v1/series?service_name=vg-otlp")
        otlp_types = sorted(e["profileType"] for e in json.loads(obody)["data"]) if ost == 200 else []
        if oc.returncode != 0 or otlp_types != ["heap"]:
            problems.append(f"POST /v1development/profiles: {oc.stdout[:200]} {oc.stderr[-300:]}; series {otlp_types}")
        st, body, _ = http_req("POST", url + "/-/reload", b"", timeout=120)
        if st != 200 or b"config reloaded" not in body:
            problems.append(f"POST /-/reload: {st} {body[:200]!r}")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(120)
        if rc != 0:
            problems.append(f"exit {rc} (99: valgrind found errors)")
        bad = valgrind_clean(log)
        if bad:
            problems.append(bad)
        t.record("valgrind collector: ready, scrapes, stores, API answers, a push, an OTLP push, Grafana's query API, reload, exit 0; no errors or leaks",
                 not problems, "\n".join(problems))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        demo.stop()
        shutil.rmtree(d, ignore_errors=True)


def conformance(t, parts=None):
    import conformance as c
    c.run_suite(t, parts)


def collector(t, parts=None):
    import collector_suite
    collector_suite.run_suite(t, parts)


def collector_asan(t, parts=None):
    """The collector's integration tests again, against the ASan+UBSan build: every case named
    [asan], and each collector's log checked for sanitizer reports."""
    import collector_suite
    collector_suite.run_suite(t, parts or collector_suite.ASAN_PARTS, flavour="asan")


def collector_tsan(t, parts=None):
    """The collector's integration tests against the ThreadSanitizer build (the scrape loop, the
    decode workers, the compactor and the HTTP threads share the engine and the store): every
    case named [tsan], and each collector's log checked for ThreadSanitizer reports."""
    import collector_suite
    collector_suite.run_suite(t, parts or collector_suite.TSAN_PARTS, flavour="tsan")


def ui(t, parts=None):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui"))
    import ui_suite
    ui_suite.run_suite(t)


def k8s(t, parts=None):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "k8s"))
    import k8s_suite
    k8s_suite.run_suite(t)


def operator(t, parts=None):
    if parts:  # operator_suite.SECTIONS
        os.environ["PPROF_OPERATOR_SECTIONS"] = ",".join(parts)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "operator"))
    import operator_suite
    operator_suite.run_suite(t)


def image(t, parts=None):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "image"))
    import image_suite
    image_suite.run_suite(t)


def suite_parts(name):
    """The parts suite `name` accepts, or None where any name is taken (unit: the test binaries
    that are built; a name none of them has fails as "none built"). A part that is not one of
    them would otherwise select nothing and let the run pass without the case it meant."""
    here = os.path.dirname(os.path.abspath(__file__))
    if name == "fuzz":
        return fuzz_targets()
    if name == "valgrind":
        return ("tool", "collector")
    if name == "conformance":
        import conformance as c
        return c.PARTS
    if name.startswith("collector"):
        import collector_suite
        return tuple(collector_suite.PARTS)
    if name == "operator":
        sys.path.insert(0, os.path.join(here, "operator"))
        import operator_suite
        return operator_suite.SECTIONS
    if name in ("ui", "k8s", "image"):
        return ()
    return None


SUITES = {"unit": unit, "fuzz": fuzz, "valgrind": valgrind, "conformance": conformance, "collector": collector,
          "collector-asan": collector_asan, "collector-tsan": collector_tsan, "ui": ui, "k8s": k8s, "operator": operator, "image": image}


def main():
    args = sys.argv[1:] or list(SUITES)
    # every selection is checked before anything runs
    for a in args:
        n, _, p = a.partition(":")
        if n not in SUITES:
            print(f"run.py: unknown suite {n!r} (one of {', '.join(SUITES)})", file=sys.stderr)
            return 2
        known = suite_parts(n) if p else None
        unknown = [x for x in p.split(",") if x and known is not None and x not in known]
        if unknown:
            print(f"run.py: suite {n} has no part {', '.join(unknown)} "
                  f"({'its parts: ' + ', '.join(known) if known else 'it has no parts'})", file=sys.stderr)
            return 2
    os.makedirs(OUT, exist_ok=True)
    t = Tally()
    start = time.time()
    for a in args:
        n, _, p = a.partition(":")
        parts = [x for x in p.split(",") if x] or None
        print(f"# suite {a}", flush=True)
        began = time.time()
        before = t.passed + t.failed + t.tool_passed + t.tool_failed
        try:
            SUITES[n](t, parts)
        except Exception:
            import traceback
            t.record(f"suite {a} ran to the end", False, traceback.format_exc())
        finally:
            if "peers" in sys.modules:  # the peers and collectors a suite that failed half-way left running
                sys.modules["peers"].stop_leftovers()
        # a selection that ran no case at all has checked nothing: that is a failure, not a pass
        if t.passed + t.failed + t.tool_passed + t.tool_failed == before:
            t.tool(f"suite {a} ran at least one case", False)
        # (what each suite takes of CI's 90 minutes)
        print(f"# suite {a}: {time.time() - began:.0f}s", flush=True)
    print(f"# {time.time() - start:.0f}s", flush=True)
    if t.failures:
        print("# failed: " + ", ".join(t.failures[:50]), flush=True)
    print(f"# test tools and preconditions (not counted as passed below, failures counted): "
          f"{t.tool_passed} passed, {t.tool_failed} failed", flush=True)
    print(f"# of the product's cases below, {t.sanitizer_passed} passed ran under a sanitizer or valgrind "
          f"(named [asan], [tsan], under ASan+UBSan, valgrind)", flush=True)
    print(f"{t.passed} passed, {t.failed + t.tool_failed} failed", flush=True)
    # (a run of the k8s suite alone passes with tool cases only: it checks the test cluster)
    return 1 if t.failed or t.tool_failed or t.passed + t.tool_passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
