#!/usr/bin/env python3
"""`make test`: every test of the project, one tally, one closing line `N passed, N failed`.

Suites: C unit tests (optimised and ASan+UBSan builds), fuzz corpus replay (ASan+UBSan),
valgrind memcheck, conformance with go tool pprof, the collector against real Go peers, the UI
in Chromium, the real Kubernetes control plane (tests/lib/cluster.py), the operator against
a real Kubernetes control plane (built by make k8s) with kubectl, and the container images. Exits non-zero on any failure. `tests/run.py SUITE...` runs a subset (unit, fuzz, valgrind, conformance)."""
import glob
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "collector"))

from harness import OUT, ROOT, TESTDATA, TOOL, Tally, run  # noqa: E402


def unit(t):
    bins = sorted(glob.glob(os.path.join(ROOT, "build", "rel", "tests", "test_*")) +
                  glob.glob(os.path.join(ROOT, "build", "asan", "tests", "test_*")))
    bins = [b for b in bins if os.access(b, os.X_OK) and not b.endswith((".o", ".d"))]
    if not bins:
        t.record("unit: test binaries exist", False, "none built")
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


def fuzz(t):
    for b in sorted(glob.glob(os.path.join(ROOT, "build", "asan", "fuzz", "*-replay"))):
        target = os.path.basename(b)[len("fuzz_"):-len("-replay")]
        corpus = os.path.join(ROOT, "fuzz", "corpus", target)
        p = run([b, corpus], env={"ASAN_OPTIONS": "detect_leaks=1"})
        n = len(os.listdir(corpus)) if os.path.isdir(corpus) else 0
        t.record(f"fuzz replay {target}: {n} corpus inputs under ASan+UBSan", p.returncode == 0 and n > 0,
                 p.stdout[-500:] + p.stderr[-3000:])


def valgrind(t):
    if run(["which", "valgrind"]).returncode != 0:
        t.record("valgrind: installed", False, "valgrind missing (make deps)")
        return
    g = os.path.join(TESTDATA, "gotarget")
    out = os.path.join(OUT, "vg-merge.pb.gz")
    cmds = [("top heap", [TOOL, "top", os.path.join(g, "heap.pb.gz")]),
            ("merge cpu", [TOOL, "merge", "-o", out] + sorted(glob.glob(os.path.join(g, "cpu-*.pb.gz")))),
            ("diff", [TOOL, "diff", "--base", os.path.join(g, "cpu-1.pb.gz"), os.path.join(g, "cpu-2.pb.gz")]),
            ("folded", [TOOL, "folded", os.path.join(g, "mutex.pb.gz")]),
            ("bad input", [TOOL, "top", os.path.join(g, "goroutine-debug2.txt")])]
    for name, cmd in cmds:
        p = run(["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", "-q"] + cmd)
        t.record(f"valgrind pprof-tool {name}: no errors or leaks", p.returncode != 99, p.stderr[-3000:])
    valgrind_collector(t)


def valgrind_collector(t):
    """The collector under memcheck: scrape, store, answer the API, reload, stop."""
    import signal
    import subprocess
    import tempfile
    import time
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "collector"))
    from peers import DemoTarget, free_port, http_req, wait_http
    demo = DemoTarget()
    d = tempfile.mkdtemp(prefix="vg-collector-")
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"monitors:\n- name: demo\n  endpoint: {demo.url}\n  profile: {{seconds: 1}}\n"
                f"  heap: {{interval_seconds: 1}}\n  goroutine: {{interval_seconds: 1}}\n")
    port = free_port()
    log = os.path.join(d, "valgrind.log")
    p = subprocess.Popen(["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                          "-q", f"--log-file={log}", os.path.join(ROOT, "bin", "collector"), "-c", cfg, "-d",
                          os.path.join(d, "data"), "-p", str(port), "--web-listen-address", "127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        ok = wait_http(url + "/readyz", 60)
        time.sleep(8)
        for path in ("/api/v1/targets", "/api/v1/series", "/metrics", "/api/v1/profile?type=heap&name=demo",
                     "/api/v1/profile?type=cpu&name=demo", "/api/v1/profiles?type=goroutine", "/"):
            http_req("GET", url + path)
        http_req("POST", url + "/-/reload", b"")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        text = open(log).read()
        t.record("valgrind collector: scrape, store, API, reload, stop: no errors or leaks",
                 ok and rc == 0 and "definitely lost" not in text and "Invalid" not in text, f"rc={rc}\n{text[-3000:]}")
    finally:
        if p.poll() is None:
            p.kill()
        demo.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def conformance(t):
    import conformance as c
    c.run_suite(t)


def collector(t):
    import collector_suite
    collector_suite.run_suite(t)


def ui(t):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui"))
    import ui_suite
    ui_suite.run_suite(t)


def k8s(t):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "k8s"))
    import k8s_suite
    k8s_suite.run_suite(t)


def operator(t):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "operator"))
    import operator_suite
    operator_suite.run_suite(t)


def image(t):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "image"))
    import image_suite
    image_suite.run_suite(t)


SUITES = {"unit": unit, "fuzz": fuzz, "valgrind": valgrind, "conformance": conformance, "collector": collector, "ui": ui,
          "k8s": k8s, "operator": operator, "image": image}


def main():
    names = sys.argv[1:] or list(SUITES)
    os.makedirs(OUT, exist_ok=True)
    t = Tally()
    start = time.time()
    for n in names:
        print(f"# suite {n}", flush=True)
        try:
            SUITES[n](t)
        except Exception as e:
            import traceback
            t.record(f"suite {n} ran to the end", False, traceback.format_exc())
    print(f"# {time.time() - start:.0f}s", flush=True)
    if t.failures:
        print("# failed: " + ", ".join(t.failures[:50]), flush=True)
    print(f"{t.passed} passed, {t.failed} failed", flush=True)
    return 1 if t.failed or t.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
