#!/usr/bin/env python3
"""Collector benchmarks (`make bench`, after the codec's): 2,000 simulated Go targets x 3 types
served by bin/load-target on loopback, the store's ingest rate against SQLite blobs, and the
merge of one hour of 10 s CPU profiles. Writes build/bench/collector.md."""
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


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    base = 20000
    load = subprocess.Popen([os.path.join(ROOT, "bin", "load-target"), "-base-port", str(base), "-n", str(TARGETS),
                             "-profiles", os.path.join(TESTDATA, "prometheus")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tempfile.mkdtemp(prefix="collector-bench-")
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write("monitors:\n")
        for i in range(TARGETS):
            f.write(f"- name: t{i}\n  endpoint: http://127.0.0.1:{base + i}\n  profile: {{seconds: 10}}\n"
                    f"  heap: {{interval_seconds: 10}}\n  goroutine: {{interval_seconds: 10}}\n")
    port = 18989
    coll = subprocess.Popen([os.path.join(ROOT, "bin", "collector"), "-c", cfg, "-d", os.path.join(d, "data"), "-p", str(port),
                             "--web-listen-address", "127.0.0.1", "--retention-size", "2GiB", "-l", "warn"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(WARMUP)
        m0, c0, t0 = metrics(url), proc_cpu_seconds(coll.pid), time.time()
        time.sleep(WINDOW)
        m1, c1, t1 = metrics(url), proc_cpu_seconds(coll.pid), time.time()
        el = t1 - t0
        scrapes = (total(m1, "collector_scrapes_total") - total(m0, "collector_scrapes_total")) / el
        fails = total(m1, "collector_scrape_failures_total") - total(m0, "collector_scrape_failures_total")
        stored = (m1["collector_ingested_profiles_total"] - m0["collector_ingested_profiles_total"]) / el
        expected = TARGETS * 3 / 10.0
        cpu = (c1 - c0) / el * 100
        rss, hwm = proc_rss_mib(coll.pid), proc_rss_mib(coll.pid, "VmHWM")
        p50 = quantile(m0, m1, "collector_schedule_drift_seconds", 0.5)
        p99 = quantile(m0, m1, "collector_schedule_drift_seconds", 0.99)
        rows += [(f"{TARGETS} targets x 3 types: scrapes per second (expected {expected:.0f})", f"{scrapes:.0f}"),
                 ("failed scrapes in the window", f"{fails:.0f}"),
                 ("profiles stored per second", f"{stored:.0f}"),
                 ("schedule drift p50 (histogram bucket bound)", f"<= {p50} s"),
                 ("schedule drift p99 (histogram bucket bound)", f"<= {p99} s"),
                 ("collector CPU (one core = 100%)", f"{cpu:.0f}%"),
                 ("collector RSS now / peak", f"{rss:.0f} / {hwm:.0f} MiB")]
    finally:
        coll.terminate()
        coll.wait(30)
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
