#!/usr/bin/env python3
"""Storage benchmarks of issue 13, part of `make bench`: the symbols-once format (0) against the
old one (1, gzip pprof per record, STORE_FORMAT=1) on the same inputs.
  - bytes on disk per profile and per rollup, ingest rate and compaction time on the realistic
    mix (store-bench sched: 30 pods of three real Go programs, 10 s CPU back to back, heap and
    goroutine every minute, one hour), per type and mixed;
  - the 1-hour, 360-profile merge of one series (store-bench merge);
  - /api/v1/render of a 10-pod service over 24 h (86,400 profiles, rolled up), served by the
    collector with its answer cache off, first and median of 7.
Writes build/bench/store.md."""
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
sys.path.insert(0, os.path.join(ROOT, "bench"))
from harness import TESTDATA  # noqa: E402
from ui_bench import serve  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
SB = os.path.join(ROOT, "build", "rel", "bench", "store-bench")
PROGS = [os.path.join(TESTDATA, "gotarget"), os.path.join(TESTDATA, "prometheus"), os.path.join(ROOT, "tests", "testdata", "caddy")]
CPUS = [os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz") for i in range(1, 7)]


def sb(args, fmt):
    env = dict(os.environ, STORE_FORMAT=str(fmt))
    return json.loads(subprocess.check_output([SB, *args], env=env).decode().strip().splitlines()[-1])


def render_day(tmp, fmt):
    d = os.path.join(tmp, f"day-{fmt}")
    fill = sb(["fill", d, "10", "8640", "cpu", *CPUS], fmt)
    du = int(subprocess.check_output(["du", "-sb", d]).split()[0])
    p, url = serve(d, ("--web-cache-size", "0"))  # every request merges
    try:
        q = f"{url}/api/v1/render?type=cpu&__k8s_namespace=bench&__k8s_name=svc&max_nodes=4096&top=500"
        t = []
        for _ in range(8):
            t0 = time.perf_counter()
            body = json.loads(urllib.request.urlopen(q, timeout=300).read())
            t.append((time.perf_counter() - t0) * 1000)
        return {"first_ms": t[0], "median_ms": statistics.median(t[1:]), "profiles": body["data"]["profiles"],
                "disk_bytes": du, "compact_ms": fill.get("compact_ms", 0)}
    finally:
        p.terminate()
        p.wait(30)
        shutil.rmtree(d, ignore_errors=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="store13-bench-")
    res = {}
    try:
        for fmt in (1, 0):
            for types in ("cpu,heap,goroutine", "cpu", "heap", "goroutine"):
                res[(fmt, types)] = sb(["sched", os.path.join(tmp, "sched"), str(fmt), "10", "360", types, *PROGS], fmt)
            res[(fmt, "merge")] = sb(["merge", tmp, "21", *CPUS], fmt)
            res[(fmt, "day")] = render_day(tmp, fmt)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for types in ("cpu,heap,goroutine", "cpu", "heap", "goroutine"):
        o, n = res[(1, types)], res[(0, types)]
        label = "mix" if "," in types else types
        rows.append((f"bytes per profile, {label}", f"{o['bytes_per_profile']:,.0f}", f"{n['bytes_per_profile']:,.0f}",
                     f"{n['bytes_per_profile'] / o['bytes_per_profile']:.1%}"))
        rows.append((f"bytes per rollup, {label}", f"{o['bytes_per_rollup']:,.0f}", f"{n['bytes_per_rollup']:,.0f}",
                     f"{n['bytes_per_rollup'] / o['bytes_per_rollup']:.1%}"))
        rows.append((f"ingest, {label} (profiles/s)", f"{o['per_s']:,.0f}", f"{n['per_s']:,.0f}", f"{n['per_s'] / o['per_s']:.2f}x"))
        rows.append((f"compaction of the hour, {label} ({n['rollups']} rollups)", f"{o['compact_ms']:,.0f} ms",
                     f"{n['compact_ms']:,.0f} ms", f"{o['compact_ms'] / max(n['compact_ms'], 1):.1f}x faster"))
    o, n = res[(1, "merge")], res[(0, "merge")]
    rows.append(("merge of 360 stored 10 s CPU profiles, one series (median of 21)", f"{o['merge_median_ms']:.1f} ms",
                 f"{n['merge_median_ms']:.1f} ms", f"{o['merge_median_ms'] / n['merge_median_ms']:.1f}x faster"))
    o, n = res[(1, "day")], res[(0, "day")]
    rows.append(("render, 10-pod service, 24 h (86,400 profiles): first request", f"{o['first_ms']:.0f} ms", f"{n['first_ms']:.0f} ms",
                 f"{o['first_ms'] / n['first_ms']:.1f}x faster"))
    rows.append(("render, 10-pod service, 24 h: median of 7 more", f"{o['median_ms']:.0f} ms", f"{n['median_ms']:.0f} ms",
                 f"{o['median_ms'] / n['median_ms']:.1f}x faster"))
    rows.append(("disk of that day (10 pods, 86,400 CPU profiles + rollups)", f"{o['disk_bytes'] / 2**20:,.0f} MiB",
                 f"{n['disk_bytes'] / 2**20:,.0f} MiB", f"{n['disk_bytes'] / o['disk_bytes']:.1%}"))
    with open(os.path.join(OUT, "store.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.1f}; `make bench` (bench/store_bench.py).\n\n")
        f.write("| measurement | old format (gzip pprof per record) | symbols once (v2) | new / old |\n|---|---:|---:|---:|\n")
        for r in rows:
            f.write("| " + " | ".join(r) + " |\n")
    print(open(os.path.join(OUT, "store.md")).read())


if __name__ == "__main__":
    sys.exit(main())
