#!/usr/bin/env python3
"""History read back from the object store (issue 15 §3, §5), part of `make bench`: the same
render (a sum), the same timeline and the same series listing, over the same profiles, asked of a collector that holds them on its disk, and of
one whose local retention deleted them after their upload, so that the render downloads the
segments into its cache (the first time) and reads them from the cache (after that).

versitygw (bin/versitygw, its posix backend) on loopback is the bucket. Both collectors get the
same 2,000 of Debian prometheus' CPU profiles (testdata cpu-1..6, over 50 series, three hours
old), pushed through /ingest; the bucket's collector has --retention-size 5MiB and is then pushed
new profiles until none of the old ones is left on its disk. The first read is timed on a
restarted collector (its cache is emptied at start), five times; the others are the median of 15
requests after one warm-up. The bucket holds raw segments only for these reads (rollup segments
are not read back yet), so the like-for-like local figure is --query-raw-only's; the default
local answer, from the store's rollups, is shown beside it. Answer cache off. Both answers' totals and profile counts are checked
equal first, and the bucket's answer must say it read the bucket and is whole. Writes
build/bench/bucket.md."""
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "collector"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from s3server import S3Server  # noqa: E402
from ui_bench import NOCACHE, serve  # noqa: E402

AK, SK, BUCKET = "pprofbench", "pprof-bench-secret-1", "profiles"
OUT = os.path.join(ROOT, "build", "bench")
OLD, AGO, RUNS, COLD = 2000, 3 * 3600, 15, 5


def metric(url, name):
    for line in urllib.request.urlopen(url + "/metrics", timeout=30).read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    return data


def local_profiles(c, path):
    """How many profiles of path's window the collector still holds on its disk (404: none): the
    answer's less those it read from the bucket."""
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    if r.status == 404:
        return 0
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    d = json.loads(data)["data"]
    return d.get("profiles", 0) - d.get("bucketRead", {}).get("profiles", 0)


def timed(u, path):
    """(median, min, max) ms of RUNS requests of path after one warm-up, and the answer's bytes."""
    c = conn(u)
    size = len(get(c, path))
    ms = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        get(c, path)
        ms.append((time.perf_counter() - t0) * 1000)
    c.close()
    return statistics.median(ms), min(ms), max(ms), size


def conn(url):
    return http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=300)


def main():
    from objstore import push  # (tests/collector/objstore.py: the same pushes as its cases)
    os.makedirs(OUT, exist_ok=True)
    os.environ.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK)
    s3 = S3Server(AK, SK, BUCKET)
    tmp = tempfile.mkdtemp(prefix="bucket-bench-")
    procs = []
    rows = []
    store = ["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET, "--object-store-prefix", "bench",
             "--retention-size", "5MiB", *NOCACHE]

    class C:
        def __init__(self, url):
            self.url = url
    try:
        lp, local = serve(os.path.join(tmp, "local"), NOCACHE)
        procs.append(lp)
        rp, raw = serve(os.path.join(tmp, "raw"), (*NOCACHE, "--query-raw-only"))
        procs.append(rp)
        bp, bucket = serve(os.path.join(tmp, "bucket"), store)
        procs.append(bp)
        push(C(local), OLD, app="old", ago=AGO)
        push(C(raw), OLD, app="old", ago=AGO)
        push(C(bucket), OLD, app="old", ago=AGO)
        frm, to = int(time.time()) - AGO - 3600, int(time.time()) - AGO + 600
        path = f"/api/v1/render?name=old&type=cpu&agg=sum&from={frm}&to={to}&max_nodes=16384"
        avg = path.replace("agg=sum", "agg=avg")  # per series, the bucket's joined to the local ones
        cb = conn(bucket)
        pushed = 0
        while local_profiles(cb, path) and pushed < 40000:
            push(C(bucket), 250, app="new")
            pushed += 250
        time.sleep(5)  # two upload scans after the last deletion
        segs = metric(bucket, "collector_bucket_only_segments")
        a = json.loads(get(conn(local), path))["data"]
        b = json.loads(get(cb, path))["data"]
        if ((a["total"], a["profiles"]) != (b["total"], b["profiles"]) or b.get("partial") is not False
                or b.get("bucketRead", {}).get("profiles") != OLD):
            raise RuntimeError(f"answers differ: local {a['total']}/{a['profiles']}, bucket {b['total']}/{b['profiles']} "
                               f"partial {b.get('partial')} bucketRead {b.get('bucketRead')}")
        got = metric(bucket, "collector_bucket_download_bytes_total")
        dl = metric(bucket, "collector_bucket_downloads_total")
        cb.close()
        # the first read: a restarted collector, its cache empty
        cold = []
        for _ in range(COLD):
            bp.terminate()
            bp.wait(60)
            procs.remove(bp)
            bp, bucket = serve(os.path.join(tmp, "bucket"), store)
            procs.append(bp)
            deadline = time.time() + 30
            while (metric(bucket, "collector_bucket_only_segments") or 0) < segs and time.time() < deadline:
                time.sleep(0.2)
            c = conn(bucket)
            t0 = time.perf_counter()
            body = get(c, path)
            cold.append((time.perf_counter() - t0) * 1000)
            c.close()
            size, d = len(body), json.loads(body)["data"]
            if d.get("partial") is not False or d.get("bucketRead", {}).get("profiles") != OLD:  # (a failed read is fast)
                raise RuntimeError(f"a first read did not read the bucket: partial {d.get('partial')} bucketRead {d.get('bucketRead')}")
        rows.append((f"bucket: first read ({int(segs)} segments, {got / 1e6:.1f} MB downloaded)",
                     statistics.median(cold), min(cold), max(cold), size))
        for name, u in (("bucket: read from its cache", bucket),
                        ("local: every profile on the collector's disk, raw profiles only (--query-raw-only)", raw),
                        ("local: the same, its rollups answering (the default)", local)):
            rows.append((name, *timed(u, path)))
        # avg over the same window: per series, the bucket's parts joined to the local merge (here
        # the bucket holds every old profile: each series divided by its own records, as locally)
        la, ba = json.loads(get(conn(raw), avg))["data"], json.loads(get(conn(bucket), avg))["data"]
        if la["total"] != ba["total"] or ba.get("partial") is not False or ba.get("bucketRead", {}).get("profiles") != OLD:
            raise RuntimeError(f"avg answers differ: local raw {la['total']}, bucket {ba['total']} partial "
                               f"{ba.get('partial')} bucketRead {ba.get('bucketRead')}")
        for name, u in (("avg: bucket, read from its cache", bucket),
                        ("avg: local, raw profiles only (--query-raw-only)", raw),
                        ("avg: local, its rollups answering (the default)", local)):
            rows.append((name, *timed(u, avg)))
        # the timeline over the same window: a point per profile from the bucket's cache, against
        # the local raw profiles' (the default's rollup points are fewer: shown beside)
        tl = path.replace("/api/v1/render", "/api/v1/timeline").replace("&agg=sum", "").replace("&max_nodes=16384", "")
        pts = {}
        for name, u in (("timeline: bucket, read from its cache", bucket),
                        ("timeline: local, raw profiles only (--query-raw-only)", raw),
                        ("timeline: local, the default (rollup points where raw is gone)", local)):
            d = json.loads(get(conn(u), tl))
            pts[u] = sum(len(e["points"]) for e in d["data"])
            if u == bucket and (d.get("partial") is not False or d.get("bucketRead", {}).get("profiles") != OLD):
                raise RuntimeError(f"the timeline did not read the bucket: {d.get('partial')} {d.get('bucketRead')}")
            rows.append((f"{name}: {pts[u]:,} points", *timed(u, tl)))
        # the series listing: the bucket's series from its series index (nothing downloaded),
        # against the same listing of the local store
        sl = "/api/v1/series?name=old"
        sums = {}
        for name, u in (("series: bucket, from its series index", bucket),
                        ("series: local, every profile on the collector's disk", raw)):
            d = json.loads(get(conn(u), sl))
            sums[u] = (len(d["data"]), sum(e["profiles"] for e in d["data"]))
            if u == bucket and (d.get("partial") is not False or d.get("bucketRead", {}).get("windows") != 1):
                raise RuntimeError(f"the series listing did not read the index: {d.get('partial')} {d.get('bucketRead')}")
            rows.append((f"{name}: {sums[u][0]} entries", *timed(u, sl)))
        if sums[bucket] != sums[raw] or sums[raw] != (50, OLD):
            raise RuntimeError(f"series listings: bucket {sums[bucket]}, local {sums[raw]}, want (50, {OLD})")
        if pts[bucket] != OLD or pts[raw] != OLD:
            raise RuntimeError(f"timeline points: bucket {pts[bucket]}, raw {pts[raw]}, want {OLD}")
        if metric(bucket, "collector_bucket_downloads_total") != dl:
            raise RuntimeError("reads from the cache downloaded again")
    finally:
        for p in procs:
            p.terminate()
            p.wait(60)
        s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(s3.dir, ignore_errors=True)
        if os.path.exists(s3.log):
            os.unlink(s3.log)
    lines = [f"{OLD:,} CPU profiles (50 series, three hours old), the same render (agg=sum, max_nodes 16384), "
             f"its agg=avg and the timeline, answer cache off; first reads {COLD} times on a restarted collector, the others {RUNS} requests each; the "
             f"totals checked equal:", "",
             "| asked | median | min | max | answer bytes |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {m:.1f} ms | {lo:.1f} ms | {hi:.1f} ms | {s:,} |" for n, m, lo, hi, s in rows]
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "bucket.md"), "w").write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
