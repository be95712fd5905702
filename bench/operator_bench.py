#!/usr/bin/env python3
"""Operator benchmark (issue 5), part of `make bench`: 1,000 Services with 10,000 ready endpoints
in kube-fake, one PprofMonitor selecting them all. Measures the time from start to a correct
ConfigMap, the time from the last of a burst of changes to a correct ConfigMap, the operator's
RSS, and API requests per reconcile. Writes build/bench/operator.md."""
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "operator"))
from operator_suite import NS, KubeFake, Operator, config_yaml, put_service, put_slice, service, slice_  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
SERVICES, PER = int(os.environ.get("BENCH_SERVICES", "1000")), 10


def rss_kib(pid):
    st = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+)", st).group(1)), int(re.search(r"VmHWM:\s+(\d+)", st).group(1))


def count_targets(kf):
    return (config_yaml(kf) or "").count("\n- name: ")


def wait(pred, timeout, step=0.01):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred():
            return time.perf_counter() - t0
        time.sleep(step)
    return None


def main():
    os.makedirs(OUT, exist_ok=True)
    d = tempfile.mkdtemp(prefix="operator-bench-")
    kf = KubeFake(d)
    rows = []
    try:
        kf.req("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
        for n in range(10):
            kf.req("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        t0 = time.perf_counter()
        for i in range(SERVICES):
            ns = f"bench-{i % 10}"
            put_service(kf, service(f"svc-{i}", ns, {"app": "bench"}))
            put_slice(kf, slice_(f"svc-{i}", f"svc-{i}-a", [f"10.{i // 250}.{i % 250}.{k + 1}" for k in range(PER)], ns=ns))
        fill_s = time.perf_counter() - t0
        op = Operator(kf, d, "--install-crds=true", name="bench")
        start = time.perf_counter()
        wait(lambda: kf.req("GET", "/apis/resources.cattle.io/v1alpha1/pprofmonitors")[0] == 200, 30)
        st, body = kf.apply("/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/all",
                            {"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor",
                             "metadata": {"name": "all", "namespace": "default"},
                             "spec": {"selector": {"matchLabels": {"app": "bench"}}, "namespaceSelector": {"any": True},
                                      "endpoint": {"port": "http"}, "config": {"profile": {"seconds": 10}}}})
        if st not in (200, 201):
            raise RuntimeError(f"monitor not created: {st} {body}")
        ok = wait(lambda: count_targets(kf) == SERVICES * PER, 120, 0.05)
        first = time.perf_counter() - start
        rows.append((f"start-up to a correct ConfigMap ({SERVICES:,} Services, {SERVICES * PER:,} endpoints; includes CRD install)",
                     f"{first:.2f} s" if ok is not None else "not reached"))
        m0 = op.metrics()
        # a burst: 50 services scale from 10 to 11 endpoints; time from the last write to a correct config
        lat = []
        for rnd in range(3):
            for i in range(rnd * 50, rnd * 50 + 50):
                ns = f"bench-{i % 10}"
                put_slice(kf, slice_(f"svc-{i}", f"svc-{i}-a", [f"10.{i // 250}.{i % 250}.{k + 1}" for k in range(PER + 1)], ns=ns))
            t_last = time.perf_counter()
            want = SERVICES * PER + 50 * (rnd + 1)
            w = wait(lambda: count_targets(kf) == want, 60)
            lat.append(w if w is not None else float("inf"))
            time.sleep(0.5)
        m1 = op.metrics()
        # steady state: the queue idle, then RSS sampled a few times (a pass in flight holds
        # transient buffers, so a single sample varies by 10 MiB)
        wait(lambda: op.metrics().get("operator_workqueue_depth") == 0, 10, 0.05)
        time.sleep(1.0)
        samples = []
        for _ in range(5):
            samples.append(rss_kib(op.p.pid)[0])
            time.sleep(0.2)
        rss = sorted(samples)[len(samples) // 2]
        hwm = rss_kib(op.p.pid)[1]
        recon = m1.get('operator_reconciles_total{controller="monitors"}', 0) - m0.get('operator_reconciles_total{controller="monitors"}', 0)
        reqs = m1.get("operator_api_requests_total", 0) - m0.get("operator_api_requests_total", 0)
        rows.append(("last change of a 50-Service burst to a correct ConfigMap (3 bursts, client polls every 10 ms)",
                     " / ".join(f"{x * 1000:.0f} ms" for x in lat)))
        rows.append(("operator RSS, idle after the bursts: median of 5 samples (peak over the run)",
                     f"{rss / 1024:.1f} MiB ({hwm / 1024:.1f} MiB)"))
        rows.append(("monitor reconciles for 150 changes (the queue coalesces)", f"{recon:.0f}"))
        rows.append(("API requests per monitor pass (all requests while the bursts ran, divided by the passes)",
                     f"{reqs / recon:.1f}" if recon else "n/a"))
        rows.append(("kube-fake fill: 2,000 objects through its API (Python, for scale)", f"{fill_s:.1f} s"))
        op.stop()
    finally:
        kf.stop()
    with open(os.path.join(OUT, "operator.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; `make bench` (bench/operator_bench.py).\n\n"
                "| measurement | result |\n|---|---|\n")
        for k, v in rows:
            f.write(f"| {k} | {v} |\n")
    print(open(os.path.join(OUT, "operator.md")).read())


if __name__ == "__main__":
    sys.exit(main())
