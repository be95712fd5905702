#!/usr/bin/env python3
"""`make cluster`: the seed's Kubernetes section on one machine, without Docker.

Starts a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
built from Go modules by `make k8s`), one node run by the test kubelet (pods are processes in
network namespaces, containers chrooted into the images `make image` built), then does what the
seed's README says: `kubectl create ns pprof-controller`, `./bin/operator` out of the cluster,
`kubectl apply -f ./examples/manifests/`; and adds demo workloads in two more namespaces (several
replicas; `shop/checkout` is scaled between 2 and 4 while it runs). The collector's UI is
forwarded to http://localhost:8989 (what `kubectl port-forward` does in a real cluster; the test
kubelet has no streaming API). Ctrl-C removes every process, namespace and file it made.

Needs root (network namespaces, chroot). CLUSTER_PORT overrides 8989; CLUSTER_SCALE_SECONDS the
scaling period (30)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from cluster import ControlPlane  # noqa: E402
from kapi import Api  # noqa: E402
from kubelet import ImageStore, Kubelet  # noqa: E402
from podnet import PodNetwork  # noqa: E402
import testimages  # noqa: E402

NS = "pprof-controller"
OPERATOR_NAME = "pprof-operator"


def say(msg):
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def demo_workloads():
    """Two namespaces of Go services labelled app=pprof, Service port 80 like the seed's example,
    so the seed's monitor (namespaceSelector any, targetPort 80) finds them all."""
    docs = []
    for ns in ("shop", "search"):
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
    for ns, name, replicas in (("shop", "cart", 3), ("shop", "checkout", 2)):
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}, labels: {{app: pprof}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: pprof, service: {name}}}}}
  template:
    metadata: {{labels: {{app: pprof, service: {name}, app.kubernetes.io/version: "1.0.0"}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
      - name: demo
        image: {testimages.DEMO}
        args: ["-addr=:6060", "-load=0.05"]
        ports: [{{name: pprof, containerPort: 6060}}]
        readinessProbe: {{httpGet: {{path: /debug/pprof/, port: pprof}}, periodSeconds: 2}}
        securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL]}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}, labels: {{app: pprof}}}}
spec:
  selector: {{app: pprof, service: {name}}}
  ports: [{{name: http, port: 80, targetPort: pprof}}]
""")
    docs.append(f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: prometheus, namespace: search}}
data:
  prometheus.yml: |
    global: {{scrape_interval: 15s}}
    scrape_configs: [{{job_name: self, static_configs: [{{targets: ["localhost:9090"]}}]}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: prometheus, namespace: search, labels: {{app: pprof}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{service: prometheus}}}}
  template:
    metadata: {{labels: {{app: pprof, service: prometheus}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532}}
      containers:
      - name: prometheus
        image: {testimages.PROMETHEUS}
        args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
        ports: [{{name: web, containerPort: 9090}}]
        readinessProbe: {{httpGet: {{path: /-/ready, port: web}}, periodSeconds: 2}}
        volumeMounts: [{{name: config, mountPath: /etc/prometheus}}, {{name: data, mountPath: /prometheus}}]
      volumes: [{{name: config, configMap: {{name: prometheus}}}}, {{name: data, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: prometheus, namespace: search, labels: {{app: pprof}}}}
spec:
  selector: {{service: prometheus}}
  ports: [{{name: http, port: 80, targetPort: web}}]
""")
    return "---\n".join(docs)


class Forwarder(threading.Thread):
    """127.0.0.1:port -> the collector pod's address, looked up per connection (the pod may
    be replaced and come back with another address)."""

    def __init__(self, port, target):
        super().__init__(daemon=True)
        self.target = target
        self.srv = socket.create_server(("127.0.0.1", port), reuse_port=False)

    def run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(c,), daemon=True).start()

    def pipe(self, c):
        ip = self.target()
        if not ip:
            c.close()
            return
        try:
            u = socket.create_connection((ip, 8989), 5)
        except OSError:
            c.close()
            return

        def one_way(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=one_way, args=(u, c), daemon=True).start()
        one_way(c, u)
        c.close()
        u.close()

    def close(self):
        self.srv.close()


def main():
    if os.geteuid() != 0:
        say("needs root (network namespaces and chroot for the pods)")
        return 1
    port = int(os.environ.get("CLUSTER_PORT", "8989"))
    period = float(os.environ.get("CLUSTER_SCALE_SECONDS", "30"))
    work = tempfile.mkdtemp(prefix="pprof-cluster-")
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    cp = net = kubelet = op = fwd = None
    try:
        say("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler")
        cp = ControlPlane(os.path.join(work, "control-plane")).start()
        say(f"control plane {cp.server} ready in {cp.startup_seconds:.1f} s")
        api = Api(cp.server, cp.ca_path, *cp.admin_cert)
        net = PodNetwork()
        net.up()
        images = ImageStore(os.path.join(work, "images"), testimages.layouts())
        kubelet = Kubelet(api, "node-1", net, os.path.join(work, "node-1"), images, log=say,
                          server_version=cp.version)
        kubelet.start()
        say(f"node-1 Ready, pods in {net.net} on bridge {net.bridge}")

        def kubectl(*args, **kw):
            p = cp.kubectl(*args, **kw)
            if p.returncode != 0:
                raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
            return p.stdout
        # the seed's steps
        kubectl("create", "ns", NS)
        oplog = open(os.path.join(work, "operator.log"), "w")
        op = subprocess.Popen([os.path.join(ROOT, "bin", "operator")], env=dict(os.environ, KUBECONFIG=cp.kubeconfig),
                              stdout=oplog, stderr=oplog, start_new_session=True)
        while "pprofmonitors.resources.cattle.io" not in cp.kubectl("get", "crd", "-o", "name").stdout:
            if stop.wait(0.5) or op.poll() is not None:
                raise RuntimeError("the operator did not install its CRDs: see " + oplog.name)
        kubectl("apply", "-f", os.path.join(ROOT, "examples", "manifests"))
        kubectl("apply", "-f", "-", input=demo_workloads())
        say("applied examples/manifests and demo workloads in shop and search")

        def collector_ip():
            rt = kubelet.runtime(NS, f"{OPERATOR_NAME}-collector-0")
            return rt.ip if rt else None
        fwd = Forwarder(port, collector_ip)
        fwd.start()
        say(f"UI: http://localhost:{port} (forwarded to pod {NS}/{OPERATOR_NAME}-collector-0)")
        say(f"kubectl: KUBECONFIG={cp.kubeconfig} {os.path.join(ROOT, 'build', 'k8s', 'bin', 'kubectl')} "
            "get pprofmonitors,pprofcollectorstacks -A")
        say(f"logs: operator {oplog.name}, containers {os.path.join(work, 'node-1', 'logs')}; Ctrl-C stops and removes everything")
        t0 = started = time.monotonic()
        replicas, shown = 2, False
        while not stop.wait(1):
            if op.poll() is not None:
                raise RuntimeError(f"the operator exited with {op.returncode}: see {oplog.name}")
            if time.monotonic() - t0 > period:
                t0 = time.monotonic()
                replicas = 4 if replicas == 2 else 2
                kubectl("scale", "-n", "shop", "deployment/checkout", f"--replicas={replicas}")
                say(f"scaled shop/checkout to {replicas}")
            if not shown:  # once the stack is Ready and the monitor has its targets
                st = cp.kubectl("get", "pcs", "-n", NS, "pprofmonitor-stack", "-o",
                                'jsonpath={.status.conditions[?(@.type=="Ready")].status}').stdout
                n = cp.kubectl("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.status.targets}").stdout
                if st == "True" and n.isdigit() and int(n) > 0:
                    say(f"profiles flowing after {time.monotonic() - started:.0f} s:")
                    print(cp.kubectl("get", "pprofmonitors,pprofcollectorstacks", "-A").stdout, file=sys.stderr, flush=True)
                    shown = True
        return 0
    except Exception as e:
        say(f"error: {e}")
        return 1
    finally:
        say("stopping: operator, pods, node, control plane")
        if fwd:
            fwd.close()
        if op and op.poll() is None:
            op.terminate()
            try:
                op.wait(15)
            except subprocess.TimeoutExpired:
                op.kill()
        if kubelet:
            kubelet.stop()
        if net:
            net.down()
        if cp:
            cp.stop()
        shutil.rmtree(work, ignore_errors=True)
        say("removed everything")


if __name__ == "__main__":
    sys.exit(main())
