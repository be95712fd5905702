"""The operator suite's world: a real control plane (tests/lib/cluster.py), one node run by the
test kubelet (tests/lib/kubelet.py) with pods in network namespaces, the fault proxy, and
bin/operator processes. Shared by the suite, its ASan/valgrind repeats and bench/operator_bench.py."""
import base64
import gzip
import json
import os
import re
import signal
import subprocess
import urllib.request

from cluster import ControlPlane
from faultproxy import FaultProxy
from harness import ROOT, free_port, wait_for  # noqa: F401 (tests/image/image_suite.py imports wait_for from here)
from kapi import Api
from kubelet import ImageStore, Kubelet
from podnet import PodNetwork
import testimages

OPERATOR = os.path.join(ROOT, "bin", "operator")
OPERATOR_ASAN = os.path.join(ROOT, "build", "asan", "bin", "operator")
NS = "pprof-controller"
NAME = "pprof-operator"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps/{NAME}-config"
CRD_GROUP = "/apis/resources.cattle.io/v1alpha1"


class Env:
    """One cluster for the whole suite: the pod network first (the API server binds the bridge's
    gateway address, so pods reach it as in-cluster clients do), then the control plane, then
    node-1. stop() removes all of it; it is also safe after a failed start."""

    def __init__(self, d, virtual_nodes=0, extra_args=None):
        self.dir = d
        self.logs = []
        self.net = self.cp = self.kubelet = self.proxy = None
        self.vkubelets = []
        try:
            self.net = PodNetwork()
            self.net.up()
            # endpointslices come from etcd, not the watch cache: a watch from before an etcd
            # compaction then ends in a real 410 Gone (the watch cache would serve it)
            self.cp = ControlPlane(os.path.join(d, "control-plane"), bind_address=self.net.gateway, extra_args=extra_args,
                                   no_watch_cache=("endpointslices.discovery.k8s.io",)).start()
            self.api = Api(self.cp.server, self.cp.ca_path, *self.cp.admin_cert)
            self.images = ImageStore(os.path.join(d, "images"), testimages.layouts())
            self.kubelet = Kubelet(self.api, "node-1", self.net, os.path.join(d, "node-1"), self.images, log=self.log,
                                   server_version=self.cp.version, api_endpoint=(self.net.gateway, self.cp.port))
            self.kubelet.start()
            for i in range(virtual_nodes):
                k = Kubelet(self.api, f"virtual-{i}", self.net, os.path.join(d, f"virtual-{i}"), self.images, log=self.log,
                            server_version=self.cp.version, virtual=True, capacity={"cpu": "1000", "memory": "1Ti", "pods": "20000"})
                k.start()
                self.vkubelets.append(k)
            pc, pk = self.cp.issue_cert("fault-proxy", ["IP:127.0.0.1"])
            self.proxy = FaultProxy(self.cp.server, self.cp.ca_path, pc, pk)
        except BaseException:
            self.stop()
            raise

    def log(self, msg):
        self.logs.append(msg)

    def stop(self):
        if self.proxy:
            self.proxy.stop()
        for k in [self.kubelet] + self.vkubelets:
            if k:
                k.stop()
        if self.cp:
            self.cp.stop()
        if self.net:
            self.net.down()

    # ---- kubectl and the API ----

    def kubectl(self, *args, **kw):
        return self.cp.kubectl(*args, **kw)

    def req(self, method, path, body=None, ctype="application/json"):
        return self.api.request(method, path, body, ctype)

    def get(self, path):
        return self.api.get(path)

    def apply(self, obj, manager="tests"):
        """Server-side apply of one object as `manager` (force)."""
        return self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-",
                            input=json.dumps(obj))

    def apply_yaml(self, text, *extra):
        return self.kubectl("apply", "--server-side", "--force-conflicts", *extra, "-f", "-", input=text)

    # ---- what the operator produced ----

    def config_yaml(self):
        """The config's text, plain (data) or gzipped (binaryData), or None without the ConfigMap."""
        cm = self.get(CM_PATH)
        if not cm:
            return None
        if "config.yaml" in (cm.get("binaryData") or {}):
            return gzip.decompress(base64.b64decode(cm["binaryData"]["config.yaml"])).decode()
        return (cm.get("data") or {}).get("config.yaml", "")

    def target_names(self):
        return sorted(re.findall(r'^- name: "([^"]*)"', self.config_yaml() or "", re.M))

    def targets(self):
        """{target name: endpoint} from the operator's config.yaml."""
        y = self.config_yaml() or ""
        return dict(re.findall(r'^- name: "([^"]*)"\n  endpoint: "([^"]*)"', y, re.M))

    def pods(self, ns, selector):
        lst = self.get(f"/api/v1/namespaces/{ns}/pods?labelSelector={urllib.request.quote(selector)}") or {}
        return lst.get("items", [])

    def ready_pods(self, ns, selector):
        """{pod name: pod IP} of the Ready pods."""
        out = {}
        for p in self.pods(ns, selector):
            conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
            if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
                out[p["metadata"]["name"]] = p["status"].get("podIP")
        return out

    def collector_ip(self):
        rt = self.kubelet.runtime(NS, f"{NAME}-collector-0")
        return rt.ip if rt else None

    def collector(self, path, timeout=10):
        """(status, body bytes) from the collector pod's API on its pod address."""
        ip = self.collector_ip()
        if not ip:
            return None, b""
        try:
            with urllib.request.urlopen(f"http://{ip}:8989{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None, b""

    def token_kubeconfig(self, path, token, server=None):
        return self.cp.kubeconfig_for_token(token, path, server=server)


class Operator:
    """bin/operator out of the cluster (as the seed runs it), its log in the suite's directory."""
    binary = OPERATOR
    wrapper = []

    def __init__(self, env, *extra, name="op", kubeconfig=None, via_env=False):
        self.mport, self.hport = free_port(), free_port()
        if Operator.binary == OPERATOR_ASAN:  # the sanitizer's runs have logs of their own
            name = "asan-" + name
        self.log = os.path.join(env.dir, f"operator-{name}.log")
        kc = kubeconfig or env.cp.kubeconfig
        args = [] if via_env else ["--kubeconfig", kc]
        e = dict(os.environ, KUBECONFIG=kc) if via_env else None
        self.p = subprocess.Popen([*Operator.wrapper, Operator.binary, *args, "-n", NS, "--name", NAME,
                                   "--metrics-addr", f"127.0.0.1:{self.mport}", "--health-addr", f"127.0.0.1:{self.hport}",
                                   *extra], stdout=subprocess.DEVNULL, stderr=open(self.log, "a"), env=e)

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.hport}/readyz", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def idle(self):
        """Ready, nothing queued."""
        return self.ready() and self.metrics().get("operator_workqueue_depth") == 0

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def text(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def tail(self):
        return self.text()[-3000:]
