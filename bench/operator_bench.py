#!/usr/bin/env python3
"""Operator benchmark, part of `make bench`, on the real control plane (tests/operator/kenv.py):
1,000 Services in 10 namespaces, each selecting 10 pods (10,000 endpoints). Pods are created
through the API on a virtual node (the test kubelet gives them an address and makes them Ready
without running anything, as kwok would); the EndpointSlice controller writes the slices.
One PprofMonitor selects them all; the operator runs with --leader-elect.

Measures: start-up to a correct ConfigMap; for 3 bursts of 50 new pods (one more endpoint for
50 Services), the time from the EndpointSlice controller's last write to a correct ConfigMap;
the operator's RSS idle and at peak; API requests per monitor pass; and a full relist of the
EndpointSlices after a real 410 Gone (a second operator behind the fault proxy takes over the
Lease; its watch is held off while pods change and etcd compacts): the time to a correct
ConfigMap and the largest gap between Lease renewals meanwhile, against the 2 s retry period and
the 10 s renew deadline. Writes build/bench/operator.md. BENCH_SERVICES (default 1,000; at
least 160, the bursts use Services 0-159) scales it down."""
import concurrent.futures
import json
import os
import re
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "operator"))
from kenv import NS, Env, Operator  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
SERVICES, PER = max(160, int(os.environ.get("BENCH_SERVICES", "1000"))), 10
NSS = 10


def rss_kib(pid):
    st = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+)", st).group(1)), int(re.search(r"VmHWM:\s+(\d+)", st).group(1))


def wait(pred, timeout, step=0.01):
    """Seconds until pred() is true (an exception counts as false: a CRD's storage answers 429
    while it initialises), or None after timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if pred():
                return time.perf_counter() - t0
        except Exception:  # noqa: BLE001
            pass
        time.sleep(step)
    return None


def pod(ns, svc, i):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{svc}-{i}", "namespace": ns, "labels": {"app": svc}},
            "spec": {"nodeName": "virtual-0", "containers": [{"name": "app", "image": "bench/app:1",
                                                               "ports": [{"name": "pprof", "containerPort": 6060}]}],
                     "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0}}


def service(ns, svc):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns, "labels": {"tier": "bench"}},
            "spec": {"selector": {"app": svc}, "ports": [{"name": "http", "port": 80, "targetPort": "pprof"}]}}


class LeaseWatch(threading.Thread):
    """Records every renewTime of the operator's Lease as the API server reports it."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env, self.stop, self.times = env, threading.Event(), []

    def run(self):
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases?fieldSelector=metadata.name%3Dpprof-operator-leader"
        rv = self.env.api.must("GET", path)["metadata"]["resourceVersion"]
        while not self.stop.is_set():
            try:
                for typ, obj in self.env.api.watch(f"{path}&resourceVersion={rv}", self.stop):
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    rt = (obj.get("spec") or {}).get("renewTime")
                    if typ in ("ADDED", "MODIFIED") and rt:
                        self.times.append(time.time())
            except Exception:  # noqa: BLE001 - a cut watch is simply watched again
                time.sleep(0.2)


def main():
    os.makedirs(OUT, exist_ok=True)
    d = tempfile.mkdtemp(prefix="operator-bench-")
    # the controllers' client rate limits are raised so that filling the cluster does not take
    # ten minutes; the operator is measured with its own defaults
    env = Env(d, virtual_nodes=1, extra_args={
        "kube-controller-manager": ["--kube-api-qps=500", "--kube-api-burst=1000", "--concurrent-service-endpoint-syncs=10"]})
    rows = []
    pool = concurrent.futures.ThreadPoolExecutor(16)
    try:
        env.kubectl("create", "ns", NS)
        t0 = time.perf_counter()
        for n in range(NSS):
            env.api.must("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        wait(lambda: all(env.get(f"/api/v1/namespaces/bench-{n}/serviceaccounts/default") for n in range(NSS)), 60, 0.2)
        jobs = []
        for i in range(SERVICES):
            ns = f"bench-{i % NSS}"
            jobs.append(pool.submit(env.api.must, "POST", f"/api/v1/namespaces/{ns}/services", service(ns, f"svc-{i}")))
            for k in range(PER):
                jobs.append(pool.submit(env.api.must, "POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, f"svc-{i}", k)))
        for j in jobs:
            j.result()

        def ready_endpoints():
            n = 0
            for s in env.api.must("GET", "/apis/discovery.k8s.io/v1/endpointslices?labelSelector=endpointslice.kubernetes.io%2Fmanaged-by")["items"]:
                n += sum(1 for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
            return n
        if wait(lambda: ready_endpoints() >= SERVICES * PER, 900, 2) is None:
            raise RuntimeError(f"only {ready_endpoints()} of {SERVICES * PER} endpoints became ready")
        fill_s = time.perf_counter() - t0
        print(f"filled in {fill_s:.0f} s", file=sys.stderr, flush=True)
        # the ConfigMap a PprofCollectorStack would create (the operator writes the config only
        # into it); no stack, so no collector tries to scrape 10,000 addresses nobody answers
        env.api.must("POST", f"/api/v1/namespaces/{NS}/configmaps",
                     {"metadata": {"name": "pprof-operator-config", "namespace": NS}})
        lw = LeaseWatch(env)
        op = Operator(env, "--leader-elect", name="bench")
        start = time.perf_counter()
        wait(lambda: env.get("/apis/resources.cattle.io/v1alpha1/pprofmonitors") is not None, 60, 0.05)
        env.apply({"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor",
                   "metadata": {"name": "all", "namespace": "default"},
                   "spec": {"selector": {"matchLabels": {"tier": "bench"}}, "namespaceSelector": {"any": True},
                            "endpoint": {"port": "http"}, "config": {"profile": {"seconds": 10}}}})

        def count():
            return (env.config_yaml() or "").count("\n- name: ")
        ok = wait(lambda: count() == SERVICES * PER, 300, 0.05)
        first = time.perf_counter() - start
        rows.append((f"start-up to a correct ConfigMap ({SERVICES:,} Services, {SERVICES * PER:,} endpoints written by the "
                     "EndpointSlice controller; includes CRD install and leader election)",
                     f"{first:.2f} s" if ok is not None else f"not reached ({count()} targets)"))
        lw.start()
        wait(lambda: op.metrics().get("operator_workqueue_depth") == 0, 30, 0.05)
        m0 = op.metrics()
        # bursts: one more pod for 50 Services; the clock starts at the controller's last slice write
        lat = []
        for rnd in range(3):
            want = SERVICES * PER + 50 * (rnd + 1)
            rv = env.api.must("GET", "/apis/discovery.k8s.io/v1/endpointslices?limit=1")["metadata"]["resourceVersion"]
            for i in range(rnd * 50, rnd * 50 + 50):
                ns = f"bench-{i % NSS}"
                pool.submit(env.api.must, "POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, f"svc-{i}", PER + rnd))
            last_write = [None]
            seen = set()
            stop = threading.Event()

            def watch_slices():
                for typ, obj in env.api.watch(f"/apis/discovery.k8s.io/v1/endpointslices?resourceVersion={rv}", stop, idle_s=30):
                    if typ == "MODIFIED" and (obj["metadata"].get("labels") or {}).get("kubernetes.io/service-name", "").startswith("svc-"):
                        svc = obj["metadata"]["labels"]["kubernetes.io/service-name"]
                        readies = sum(1 for e in obj.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
                        if readies == PER + 1:  # each burst adds one pod to 50 Services not touched before
                            seen.add(svc)
                            last_write[0] = time.perf_counter()
                    if len(seen) == 50:
                        return
            wt = threading.Thread(target=watch_slices, daemon=True)
            wt.start()
            done = wait(lambda: count() == want, 120, 0.01)
            t_done = time.perf_counter()
            wt.join(30)
            stop.set()
            lat.append((t_done - last_write[0]) if done is not None and last_write[0] else float("inf"))
            time.sleep(1)
        m1 = op.metrics()
        wait(lambda: op.metrics().get("operator_workqueue_depth") == 0, 30, 0.05)
        time.sleep(1.0)
        samples = []
        for _ in range(5):
            samples.append(rss_kib(op.p.pid)[0])
            time.sleep(0.2)
        rss = sorted(samples)[len(samples) // 2]
        recon = m1.get('operator_reconciles_total{controller="monitors"}', 0) - m0.get('operator_reconciles_total{controller="monitors"}', 0)
        reqs = m1.get("operator_api_requests_total", 0) - m0.get("operator_api_requests_total", 0)
        hwm = rss_kib(op.p.pid)[1]
        # a full relist under leader election. The operator above talks to the API server
        # directly, whose watches outlive an etcd compaction; so a second operator, through the
        # fault proxy, takes over the Lease (the first releases it on SIGTERM), and its
        # EndpointSlice watch is held off (500s) while the data changes and etcd compacts: its
        # next watch gets a real 410 Gone and it lists all 1,000+ slices again while it renews
        op.stop()
        env.api.must("POST", f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": "bench"}})
        env.api.must("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                     {"metadata": {"name": "pprof-bench"}, "subjects": [{"kind": "ServiceAccount", "name": "bench", "namespace": NS}],
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}})
        kc = env.token_kubeconfig(os.path.join(d, "kubeconfig-proxy"), env.cp.token(NS, "bench", 3600), server=env.proxy.url)
        op = Operator(env, "--leader-elect", name="bench-proxied", kubeconfig=kc)
        wait(lambda: op.metrics().get("operator_leader") == 1 and op.metrics().get("operator_workqueue_depth") == 0 and
             count() == SERVICES * PER + 150, 120, 0.1)
        gone_key = 'operator_watch_errors_total{resource="endpointslices",reason="gone"}'
        gone0 = op.metrics().get(gone_key, 0)
        env.proxy.fail(10 ** 6, 500, "GET", r"/endpointslices\?.*watch=")
        env.proxy.drop_watches()
        n0 = ready_endpoints()
        for i in range(150, 160):  # new events while the watch is held off
            ns = f"bench-{i % NSS}"
            pool.submit(env.api.must, "POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, f"svc-{i}", PER))
        wait(lambda: ready_endpoints() >= n0 + 10, 60, 0.5)
        env.cp.etcd_compact()
        n_before = len(lw.times)
        t_relist = time.time()
        env.proxy.clear()
        relist_s = wait(lambda: count() == SERVICES * PER + 160, 120, 0.05)
        time.sleep(4)
        gone = op.metrics().get(gone_key, 0) - gone0
        ts = [x for x in lw.times[n_before:] if x >= t_relist - 2]
        gaps = [b - a for a, b in zip([t_relist] + ts, ts)]
        hwm2 = rss_kib(op.p.pid)[1]
        rows.append(("last EndpointSlice write of a 50-pod burst to a correct ConfigMap (3 bursts, client polls every 10 ms)",
                     " / ".join(f"{x * 1000:.0f} ms" for x in lat)))
        rows.append(("operator RSS, idle after the bursts: median of 5 samples (peak over the run)",
                     f"{rss / 1024:.1f} MiB ({hwm / 1024:.1f} MiB)"))
        rows.append(("monitor passes for 150 changes (the queue coalesces)", f"{recon:.0f}"))
        rows.append(("API requests per monitor pass (all requests while the bursts ran, divided by the passes)",
                     f"{reqs / recon:.1f}" if recon else "n/a"))
        rows.append((f"full EndpointSlice relist after a real 410 Gone ({gone:.0f} seen): from the watch's release to a correct "
                     "ConfigMap; Lease renewals in that time and 4 s after: count, largest gap (retry 2 s, renew deadline 10 s); "
                     "peak RSS of this operator",
                     (f"{relist_s:.2f} s" if relist_s is not None else "not reached") +
                     (f"; {len(ts)}, {max(gaps):.2f} s" if ts else "; none seen") + f"; {hwm2 / 1024:.1f} MiB"))
        rows.append((f"fill: {SERVICES:,} Services and {SERVICES * PER:,} pods through the API until every endpoint is ready "
                     "(for scale)", f"{fill_s:.0f} s"))
        lw.stop.set()
        op.stop()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        env.stop()
    with open(os.path.join(OUT, "operator.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; `make bench` (bench/operator_bench.py), "
                f"Kubernetes {env.cp.version}.\n\n| measurement | result |\n|---|---|\n")
        for k, v in rows:
            f.write(f"| {k} | {v} |\n")
    print(open(os.path.join(OUT, "operator.md")).read())
    print(json.dumps(dict(rows)), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
