#!/usr/bin/env python3
"""Grafana's data source API (issue 16 §1), part of `make bench`: the same flame graph asked of a
collector of its own through /api/v1/render (our UI's JSON) and through
querier.v1.QuerierService/SelectMergeStacktraces (what Grafana asks; protobuf and JSON), and the
same range as SelectSeries points. The store holds one hour of 10 s CPU profiles of ten pods
(Debian's prometheus, testdata cpu-*, pushed with their times spread over the last hour: 3,600
profiles). Answer cache off, median of 15 requests after one warm-up each. There is no
permissively licensed peer server to run beside it (Pyroscope's server is AGPL), so the
querier's figures stand next to our own render's. Writes build/bench/querier.md."""
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
PODS, PER_POD, RUNS = 10, 360, 15


def main():
    os.makedirs(OUT, exist_ok=True)
    profs = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(TESTDATA, "prometheus", "cpu-*.pb.gz")))]
    tmp = tempfile.mkdtemp(prefix="querier-bench-")
    p, url = serve(os.path.join(tmp, "data"), NOCACHE)
    port = int(url.rsplit(":", 1)[1])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def req(method, path, body=None, headers=None):
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
        return data

    rows = []
    try:
        end = int(time.time()) - 5
        for k in range(PER_POD):
            t1 = end - (PER_POD - 1 - k) * 10
            for pod in range(PODS):
                req("POST", f"/ingest?name=bench%7Bpod%3Dp{pod}%7D&from={t1 - 10}&until={t1}", profs[(k + pod) % len(profs)],
                    {"Content-Type": "application/octet-stream"})
        start_ms, end_ms = (end - PER_POD * 10 - 20) * 1000, end * 1000 + 999
        frm, to = f"{start_ms / 1000:.3f}", f"{end_ms / 1000:.3f}"
        q = {"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": '{service_name="bench"}',
             "start": str(start_ms), "end": str(end_ms), "maxNodes": 16384}
        cases = [
            ("/api/v1/render (JSON, max_nodes 16384)", "GET",
             f"/api/v1/render?type=cpu&service_name=bench&sample=cpu&from={frm}&to={to}&max_nodes=16384", None, None),
            ("SelectMergeStacktraces, JSON", "POST", "/querier.v1.QuerierService/SelectMergeStacktraces",
             json.dumps(q).encode(), {"Content-Type": "application/json"}),
            ("SelectMergeStacktraces, protobuf", "POST", "/querier.v1.QuerierService/SelectMergeStacktraces",
             bytes.fromhex(proto_request(q)), {"Content-Type": "application/proto"}),
            ("SelectSeries, step 60 s, group by pod, JSON", "POST", "/querier.v1.QuerierService/SelectSeries",
             json.dumps({**q, "step": 60, "groupBy": ["pod"]}).encode(), {"Content-Type": "application/json"}),
        ]
        for name, method, path, body, headers in cases:
            size = len(req(method, path, body, headers))  # warm-up
            ms = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                req(method, path, body, headers)
                ms.append((time.perf_counter() - t0) * 1000)
            rows.append((name, statistics.median(ms), min(ms), max(ms), size))
    finally:
        c.close()
        p.terminate()
        p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"{PODS * PER_POD:,} CPU profiles (10 pods x 1 h of 10 s), answer cache off, {RUNS} requests each:", "",
             "| request | median | min | max | answer bytes |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {m:.1f} ms | {lo:.1f} ms | {hi:.1f} ms | {s:,} |" for n, m, lo, hi, s in rows]
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "querier.md"), "w").write(text)
    print(text)
    return 0


def proto_request(q):
    """SelectMergeStacktracesRequest as protobuf (fields 1-5 of querier.v1), hex."""
    return pb_request((1, q["profileTypeID"]), (2, q["labelSelector"]), (3, int(q["start"])), (4, int(q["end"])),
                      (5, q["maxNodes"])).hex()


if __name__ == "__main__":
    sys.exit(main())
