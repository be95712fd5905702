#!/usr/bin/env python3
"""UI/API benchmarks (issue 4), part of `make bench`: /api/v1/render server time over one hour
of 10 s CPU profiles of one target (360 records) and of a 10-pod service (3,600), and a flame
graph of ~137k call-tree nodes in Chromium (time to first draw, redraw after a zoom). Writes
build/bench/ui.md."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from harness import TESTDATA, decode_render_binary, free_port, wide_profile  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
SB = os.path.join(ROOT, "build", "rel", "bench", "store-bench")


def serve(data_dir, extra=()):
    """A collector serving data_dir (its config beside it, in the bench's temp dir), once /readyz
    answers 200; extra: more flags."""
    port = free_port()
    cfg = data_dir + "-config.yaml"
    open(cfg, "w").write("monitors: []\n")
    p = subprocess.Popen([os.path.join(ROOT, "bin", "collector"), "-c", cfg, "-d", data_dir, "-p", str(port),
                          "--web-listen-address", "127.0.0.1", "-l", "warn", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/readyz", timeout=1)
            return p, url
        except OSError:
            time.sleep(0.1)
    p.kill()
    p.wait()
    raise RuntimeError(f"the collector serving {data_dir} did not get ready in 10 s")


# the 100k-node views are timed with the answer cache off: every navigation is computed anew, as
# the first look at a new selection is (a diff's binary answer, 4.0 MB, would be cached)
NOCACHE = ("--web-cache-size", "0")


def timed_get(url, runs, parse=json.loads):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        body = urllib.request.urlopen(url, timeout=120).read()
        t.append((time.perf_counter() - t0) * 1000)
        parse(body)
    return statistics.median(t)


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    cpus = [os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz") for i in range(1, 7)]
    tmp = tempfile.mkdtemp(prefix="ui-bench-")
    try:
        one, svc, day, big, two, sand = (os.path.join(tmp, x) for x in ("one", "svc", "day", "big", "two", "sand"))
        fills = {}
        # `ui_bench.py flame`: the browser measurements only (the render stores take minutes)
        only_flame = sys.argv[1:] == ["flame"]
        for d, pods, n in () if only_flame else ((one, "1", "360"), (svc, "10", "360"), (day, "10", "8640")):
            fills[d] = json.loads(subprocess.check_output([SB, "fill", d, pods, n, "cpu", *cpus]).decode().strip().splitlines()[-1])
        open(os.path.join(tmp, "wide.pb.gz"), "wb").write(wide_profile(6, 7))
        nodes = 1 + sum(7 ** d for d in range(1, 7))  # the call tree's nodes, root included
        subprocess.check_call([SB, "fill", big, "1", "1", "cpu", os.path.join(tmp, "wide.pb.gz")])
        # the diff flame graph: the same tree with other weights, 10 s later (base: the first)
        open(os.path.join(tmp, "wide2.pb.gz"), "wb").write(wide_profile(6, 7, skew=3))
        subprocess.check_call([SB, "fill", two, "1", "2", "cpu", os.path.join(tmp, "wide.pb.gz"), os.path.join(tmp, "wide2.pb.gz")])
        # the sandwich: every stack under one function, main.root, whose callees are the whole tree
        open(os.path.join(tmp, "rooted.pb.gz"), "wb").write(wide_profile(6, 7, root="main.root"))
        subprocess.check_call([SB, "fill", sand, "1", "1", "cpu", os.path.join(tmp, "rooted.pb.gz")])
        for label, d, q in (("one target, 1 h of 10 s CPU profiles (360)", one, "name=pod-0"),
                            ("10-pod service, 1 h each (3,600 profiles)", svc, "__k8s_namespace=bench&__k8s_name=svc"),
                            ("10-pod service, 24 h each (86,400 profiles)", day, "__k8s_namespace=bench&__k8s_name=svc"))[:0 if only_flame else 3]:
            p, url = serve(d)
            try:
                ms = timed_get(f"{url}/api/v1/render?type=cpu&{q}&max_nodes=4096&top=500", 7)
                body = json.loads(urllib.request.urlopen(f"{url}/api/v1/render?type=cpu&{q}&max_nodes=64&top=5", timeout=120).read())
                label += f"; the answer merged {body.get('data', {}).get('profiles', '?')} profiles"
                fl = fills[d]
                rows.append((f"/api/v1/render, {label}", f"{ms:.0f} ms median (client on loopback)"))
                rows.append((f"compaction of that store ({fl['records']} profiles into {fl['rollups']} 10-minute rollups; "
                             "the collector does this in the background as windows close)", f"{fl['compact_ms']:.0f} ms"))
            finally:
                p.terminate()
                p.wait()
        if not only_flame:
            # a decoded timeline (tag=, group_by=, function=) reads every record as a profile;
            # the answer cache off, so each request does
            p, url = serve(one, ("--web-cache-size", "0"))
            try:
                ms = timed_get(f"{url}/api/v1/timeline?type=cpu&name=pod-0&function=runtime.mallocgc", 7)
                rows.append(("/api/v1/timeline?function=runtime.mallocgc, one target, 1 h of 10 s CPU profiles (360), answer cache off",
                             f"{ms:.0f} ms median"))
            finally:
                p.terminate()
                p.wait()
        p, url = serve(big, NOCACHE)
        try:
            ms = timed_get(f"{url}/api/v1/render?type=cpu&name=pod-0&max_nodes=100000&top=2000", 5)
            rows.append((f"/api/v1/render, one profile with {nodes:,} call-tree nodes, max_nodes=100000, answer cache off", f"{ms:.0f} ms median"))
            r = subprocess.run(["node", os.path.join(ROOT, "tests", "ui", "bench_flame.mjs"), f"{url}/explorer?name=pod-0&type=cpu", "5"],
                               capture_output=True, text=True, timeout=600, cwd=os.path.join(ROOT, "tests", "ui"),
                               env=dict(os.environ, NODE_PATH=os.path.join(ROOT, "tests", "ui", "node_modules")))
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(("Chromium: navigation to first flame graph drawn (100k nodes; answer cache off)", f"{res['first_draw_ms']:.0f} ms median"))
            rows.append(("Chromium: redraw after a click zooms in", f"{res['zoom_redraw_ms']:.0f} ms median"))
            rows.append(("what the page said", res["summary"]))
        finally:
            p.terminate()
            p.wait()
        p, url = serve(two, NOCACHE)
        try:
            ends = [r["endUnixNano"] for r in json.loads(urllib.request.urlopen(f"{url}/api/v1/profiles?type=cpu&name=pod-0", timeout=60).read())["data"]]
            mid = f"{(ends[0] + ends[1]) // 2 // 10**9}"
            dq = f"{url}/api/v1/render?type=cpu&name=pod-0&base_from=0&base_to={mid}&from={mid}&max_nodes=100000&top=2000"
            for enc, parse in (("json", json.loads), ("binary", decode_render_binary)):
                ms = timed_get(f"{dq}&encoding={enc}", 7, parse)
                rows.append((f"/api/v1/render, the diff below (base and comparison of {nodes:,} call-tree nodes each), max_nodes=100000, "
                             f"encoding={enc}, answer cache off", f"{ms:.0f} ms median (client on loopback)"))
            r = subprocess.run(["node", os.path.join(ROOT, "tests", "ui", "bench_flame.mjs"),
                                f"{url}/compare?name=pod-0&type=cpu&base_from=0&base_to={mid}&from={mid}", "5"],
                               capture_output=True, text=True, timeout=600, cwd=os.path.join(ROOT, "tests", "ui"))
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(("Chromium: navigation to the first drawn diff flame graph (compare, 100k nodes of base and comparison; answer cache off)", f"{res['first_draw_ms']:.0f} ms median"))
            rows.append(("Chromium: diff flame graph redraw after a click zooms in", f"{res['zoom_redraw_ms']:.0f} ms median"))
            rows.append(("what the compare page said", res["summary"]))
        finally:
            p.terminate()
            p.wait()
        p, url = serve(sand, NOCACHE)
        try:
            r = subprocess.run(["node", os.path.join(ROOT, "tests", "ui", "bench_flame.mjs"),
                                f"{url}/explorer?name=pod-0&type=cpu&table=sandwich&fn=main.root", "5", "3"],
                               capture_output=True, text=True, timeout=600, cwd=os.path.join(ROOT, "tests", "ui"))
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(("Chromium: navigation to the sandwich of main.root drawn (the flame graph, then callers and callees, 100k nodes each at most; answer cache off)",
                         f"{res['first_draw_ms']:.0f} ms median"))
        finally:
            p.terminate()
            p.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(OUT, "ui.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; `make bench` (bench/ui_bench.py).\n\n| measurement | result |\n|---|---|\n")
        for k, v in rows:
            f.write(f"| {k} | {v} |\n")
    print(open(os.path.join(OUT, "ui.md")).read())


if __name__ == "__main__":
    sys.exit(main())
