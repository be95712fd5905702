#!/usr/bin/env python3
"""Collector benchmarks (`make bench`, after the codec's): 2,000 simulated Go targets x 3 types
served by bin/load-target on loopback; then 4,000 split by two collectors (--shard 0 and 1) for
the per-shard cost; the store's ingest rate against SQLite blobs, and the merge of one hour of
10 s CPU profiles. Writes build/bench/collector.md."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.environ.get("PPROF_TESTDATA") or os.path.join(os.path.dirname(ROOT), "shared", "testdata", "pprof")
OUT = os.path.join(ROOT, "build", "bench")
TARGETS = int(os.environ.get("BENCH_TARGETS", "2000"))
WARMUP, WINDOW = 25, 60


def metrics(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, val = line.rsplit(" ", 1)
        out[name] = float(val)
    return out


def total(m, prefix):
    return sum(v for k, v in m.items() if k.startswith(prefix + "{") or k == prefix)


def quantile(m0, m1, name, q):
    """Quantile from the difference of two histogram snapshots (upper bucket bound)."""
    buckets = []
    for k, v in m1.items():
        mm = re.match(name + r'_bucket\{le="([^"]+)"\}', k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            buckets.append((le, v - m0.get(k, 0)))
    buckets.sort()
    n = buckets[-1][1] if buckets else 0
    for le, c in buckets:
        if c >= q * n:
            return le
    return float("nan")


def proc_cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0


def start_collector(cfg, d, port, *extra):
    coll = subprocess.Popen([os.path.join(ROOT, "bin", "collector"), "-c", cfg, "-d", os.path.join(d, f"data-{port}"), "-p",
                             str(port), "--web-listen-address", "127.0.0.1", "--retention-size", "2GiB", "-l", "warn", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, f"log-{port}"), "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/readyz", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    return coll, url


def measure(colls):
    """[(scrapes/s, failures, stored/s, CPU %, RSS MiB, peak MiB, drift p50, p99, targets)] over
    WINDOW seconds, one per (process, url), all measured over the same window."""
    before = [(metrics(u), proc_cpu_seconds(c.pid)) for c, u in colls]
    t0 = time.time()
    time.sleep(WINDOW)
    el = time.time() - t0
    out = []
    for (c, u), (m0, c0) in zip(colls, before):
        m1, c1 = metrics(u), proc_cpu_seconds(c.pid)
        with urllib.request.urlopen(u + "/api/v1/targets", timeout=30) as r:
            ntargets = len({x["monitor"] for x in json.load(r).get("data", [])})  # (one entry per type)
        out.append(((total(m1, "collector_scrapes_total") - total(m0, "collector_scrapes_total")) / el,
                    total(m1, "collector_scrape_failures_total") - total(m0, "collector_scrape_failures_total"),
                    (m1["collector_ingested_profiles_total"] - m0["collector_ingested_profiles_total"]) / el,
                    (c1 - c0) / el * 100, proc_rss_mib(c.pid), proc_rss_mib(c.pid, "VmHWM"),
                    quantile(m0, m1, "collector_schedule_drift_seconds", 0.5),
                    quantile(m0, m1, "collector_schedule_drift_seconds", 0.99), ntargets))
    return out


def write_config(cfg, n, base, shards=1):
    with open(cfg, "w") as f:
        if shards > 1:
            f.write(f"sharding: {{shards: {shards}}}\n")
        f.write("monitors:\n")
        for i in range(n):
            f.write(f"- name: t{i}\n  endpoint: http://127.0.0.1:{base + i}\n  profile: {{seconds: 10}}\n"
                    f"  heap: {{interval_seconds: 10}}\n  goroutine: {{interval_seconds: 10}}\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    base = 20000
    load = subprocess.Popen([os.path.join(ROOT, "bin", "load-target"), "-base-port", str(base), "-n", str(2 * TARGETS),
                             "-profiles", os.path.join(TESTDATA, "prometheus")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tempfile.mkdtemp(prefix="collector-bench-")
    colls = []
    try:
        cfg = os.path.join(d, "config.yaml")
        write_config(cfg, TARGETS, base)
        colls = [start_collector(cfg, d, 18989)]
        time.sleep(WARMUP)
        (scrapes, fails, stored, cpu, rss, hwm, p50, p99, _), = measure(colls)
        expected = TARGETS * 3 / 10.0
        rows += [(f"{TARGETS} targets x 3 types: scrapes per second (expected {expected:.0f})", f"{scrapes:.0f}"),
                 ("failed scrapes in the window", f"{fails:.0f}"),
                 ("profiles stored per second", f"{stored:.0f}"),
                 ("schedule drift p50 (histogram bucket bound)", f"<= {p50} s"),
                 ("schedule drift p99 (histogram bucket bound)", f"<= {p99} s"),
                 ("collector CPU (one core = 100%)", f"{cpu:.0f}%"),
                 ("collector RSS now / peak", f"{rss:.0f} / {hwm:.0f} MiB")]
        for c, _ in colls:
            c.terminate()
            c.wait(30)
        # shards (issue 15 §5): twice the targets in one file, two collectors with --shard 0 and
        # 1, so each carries about the load of the run above (FNV-1a of host:port decides)
        cfg2 = os.path.join(d, "config-2.yaml")
        write_config(cfg2, 2 * TARGETS, base, shards=2)
        colls = [start_collector(cfg2, d, 18990 + k, "--shard", str(k)) for k in range(2)]
        time.sleep(WARMUP)
        for k, (scrapes, fails, stored, cpu, rss, hwm, p50, p99, nt) in enumerate(measure(colls)):
            rows.append((f"shard {k} of 2 over {2 * TARGETS} targets: its targets, scrapes/s (expected {nt * 3 / 10:.0f}), "
                         "failures, CPU, RSS now / peak, drift p99",
                         f"{nt}, {scrapes:.0f}, {fails:.0f}, {cpu:.0f}%, {rss:.0f} / {hwm:.0f} MiB, <= {p99} s"))
    finally:
        for c, _ in colls:
            c.terminate()
            c.wait(30)
        load.terminate()
        load.wait(10)
        shutil.rmtree(d, ignore_errors=True)

    sb = os.path.join(ROOT, "build", "rel", "bench", "store-bench")
    tmp = tempfile.mkdtemp(prefix="store-bench-")
    r = json.loads(subprocess.check_output([sb, tmp, os.path.join(TESTDATA, "prometheus", "heap.pb.gz"), "20000"]))
    rows += [("store ingest, segments + SQLite index (ours)", f"{r['segments_per_s']:.0f} profiles/s"),
             ("store ingest, profile bytes as SQLite blobs (alternative)", f"{r['sqlite_blob_per_s']:.0f} profiles/s"),
             ("disk for 20,000 heap profiles: segments / blobs", f"{r['segments_disk_full'] / 2**20:.1f} / {r['sqlite_blob_disk_full'] / 2**20:.1f} MiB"),
             ("retention deleting the older half: segments / blobs", f"{r['segments_retention_ms']:.0f} / {r['sqlite_blob_retention_ms']:.0f} ms"),
             ("disk after that: segments / blobs", f"{r['segments_disk_after_half_deleted'] / 2**20:.1f} / {r['sqlite_blob_disk_after_half_deleted'] / 2**20:.1f} MiB")]
    cpus = [os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz") for i in range(1, 7)]
    m = json.loads(subprocess.check_output([sb, "merge", tmp, "9", *cpus]))
    rows.append(("merge of 360 stored 10 s CPU profiles of one series (store_merged)", f"{m['merge_median_ms']:.0f} ms median"))
    shutil.rmtree(tmp, ignore_errors=True)

    with open(os.path.join(OUT, "collector.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; `make bench` (bench/collector_bench.py).\n\n")
        f.write("| measurement | result |\n|---|---|\n")
        for k, v in rows:
            f.write(f"| {k} | {v} |\n")
    print(open(os.path.join(OUT, "collector.md")).read())


if __name__ == "__main__":
    sys.exit(main())
