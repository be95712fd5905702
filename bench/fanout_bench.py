#!/usr/bin/env python3
"""One query over every shard (issue 15 §5), part of `make bench`: the same render asked of one
collector holding all the data, and of shard 0 of three collectors that hold a third each and
name each other as peers (--peer: shard 0 merges its own part with the two others', asked at
once over loopback). The stores hold one hour of 10 s CPU profiles of 12 pods (Debian's
prometheus, testdata cpu-*; 4,320 profiles), pushed with their times spread over the last hour;
the shards get pods 0-3, 4-7 and 8-11. Answer cache off, median of 15 requests after one
warm-up each. Both answers' totals are checked equal first. The same for Grafana's call of the
flame graph (querier.v1 SelectMergeStacktraces, as protobuf, as Grafana sends it), its totals
checked equal as JSON first. Writes build/bench/fanout.md."""
import glob
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from harness import TESTDATA, pb_request  # noqa: E402
from ui_bench import NOCACHE, serve  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
PODS, PER_POD, RUNS, SHARDS = 12, 360, 15, 3


def conn(url):
    return http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=120)


def req(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    return data


def main():
    os.makedirs(OUT, exist_ok=True)
    profs = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(TESTDATA, "prometheus", "cpu-*.pb.gz")))]
    tmp = tempfile.mkdtemp(prefix="fanout-bench-")
    procs = []
    rows = []
    try:
        one_p, one = serve(os.path.join(tmp, "one"), NOCACHE)
        procs.append(one_p)
        # shards 1.. first, then shard 0 naming them (shard 0 is the one asked)
        shard_urls = []
        for k in range(1, SHARDS):
            p, u = serve(os.path.join(tmp, f"shard{k}"), NOCACHE)
            procs.append(p)
            shard_urls.append(u)
        p0, u0 = serve(os.path.join(tmp, "shard0"), (*NOCACHE, *sum((["--peer", u] for u in shard_urls), [])))
        procs.append(p0)
        shard_urls.insert(0, u0)
        cs = {u: conn(u) for u in [one] + shard_urls}
        end = int(time.time()) - 5
        for k in range(PER_POD):
            t1 = end - (PER_POD - 1 - k) * 10
            for pod in range(PODS):
                q = f"/ingest?name=bench%7Bpod%3Dp{pod}%7D&from={t1 - 10}&until={t1}"
                body, h = profs[(k + pod) % len(profs)], {"Content-Type": "application/octet-stream"}
                req(cs[one], "POST", q, body, h)
                req(cs[shard_urls[pod * SHARDS // PODS]], "POST", q, body, h)
        frm, to = end - PER_POD * 10 - 20, end + 1
        path = f"/api/v1/render?type=cpu&service_name=bench&sample=cpu&from={frm}&to={to}&max_nodes=16384"
        a = json.loads(req(cs[one], "GET", path))["data"]
        b = json.loads(req(cs[u0], "GET", path))["data"]
        if (a["total"], a["profiles"]) != (b["total"], b["profiles"]) or b.get("partial") is not False:
            raise RuntimeError(f"answers differ: one collector {a['total']}/{a['profiles']}, shards {b['total']}/"
                               f"{b['profiles']} partial {b.get('partial')}")
        # Grafana's flame graph call: the same selection through the query API
        qpath = "/querier.v1.QuerierService/SelectMergeStacktraces"
        sel = {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": '{service_name="bench"}',
               "start": str(frm * 1000), "end": str(to * 1000), "maxNodes": 16384}
        js = {"Content-Type": "application/json"}
        fa = json.loads(req(cs[one], "POST", qpath, json.dumps(sel).encode(), js))["flamegraph"]
        fb = json.loads(req(cs[u0], "POST", qpath, json.dumps(sel).encode(), js))["flamegraph"]
        if fa["total"] != fb["total"] or int(fa["total"]) <= 0:
            raise RuntimeError(f"flame graphs differ: one collector {fa['total']}, shards {fb['total']}")
        qbody = pb_request((1, sel["profileTypeID"]), (2, sel["labelSelector"]), (3, frm * 1000), (4, to * 1000), (5, 16384))
        pb = {"Content-Type": "application/proto"}
        # the stores build rollups of what was just pushed: timed while they did, the first case
        # measured took four times its time in a quiet store (2026-12-03)
        time.sleep(20)
        for c in cs.values():
            c.close()  # (idle connections the collectors closed meanwhile)
        cs = {u: conn(u) for u in cs}
        cases = [("one collector, all 12 pods", one, "GET", path, None, None),
                 (f"shard 0 of {SHARDS}, asking the other {SHARDS - 1} (--peer)", u0, "GET", path, None, None),
                 (f"shard 0 of {SHARDS}, its own third only (local=1)", u0, "GET", path + "&local=1", None, None),
                 ("query API: one collector, all 12 pods", one, "POST", qpath, qbody, pb),
                 (f"query API: shard 0 of {SHARDS}, asking the other {SHARDS - 1}", u0, "POST", qpath, qbody, pb),
                 (f"query API: shard 0 of {SHARDS}, its own third only (local=1)", u0, "POST", qpath + "?local=1", qbody, pb)]
        for name, u, method, pth, body, hdrs in cases:
            size = len(req(cs[u], method, pth, body, hdrs))
            ms = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                req(cs[u], method, pth, body, hdrs)
                ms.append((time.perf_counter() - t0) * 1000)
            rows.append((name, statistics.median(ms), min(ms), max(ms), size))
        for c in cs.values():
            c.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"{PODS * PER_POD:,} CPU profiles (12 pods x 1 h of 10 s), the same render (max_nodes 16384) and the same "
             f"flame graph through the query API, answer cache off, {RUNS} requests each; the totals checked equal:", "",
             "| asked | median | min | max | answer bytes |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {m:.1f} ms | {lo:.1f} ms | {hi:.1f} ms | {s:,} |" for n, m, lo, hi, s in rows]
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "fanout.md"), "w").write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
