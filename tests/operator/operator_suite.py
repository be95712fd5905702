"""Operator suite (issue 5): kube-fake's fidelity proved with the real kubectl, then bin/operator
end to end against kube-fake: stacks and monitors applied with kubectl, Services and
EndpointSlices created, the ConfigMap's config.yaml, the StatefulSet and the statuses asserted;
endpoints scaled, services relabelled, a monitor deleted, watches dropped, a 410 forced, faults
injected, the operator killed and restarted, and two operators under leader election."""
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import OUT, ROOT, free_port, run

KUBE_FAKE = os.path.join(ROOT, "tools", "kube-fake", "kube_fake.py")
OPERATOR = os.path.join(ROOT, "bin", "operator")
OPERATOR_ASAN = os.path.join(ROOT, "build", "asan", "bin", "operator")
COLLECTOR = os.path.join(ROOT, "bin", "collector")
NS = "pprof-controller"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps/pprof-operator-config"


class KubeFake:
    def __init__(self, d):
        self.dir = d
        self.kubeconfig = os.path.join(d, "kubeconfig")
        self.kubeconfig_cert = os.path.join(d, "kubeconfig-cert")
        self.kubeconfig_cert_files = os.path.join(d, "kubeconfig-cert-files")
        self.p = subprocess.Popen(["python3", KUBE_FAKE, "--port", "0", "--kubeconfig", self.kubeconfig,
                                   "--kubeconfig-cert", self.kubeconfig_cert, "--kubeconfig-cert-files", self.kubeconfig_cert_files],
                                  stdout=subprocess.PIPE, stderr=open(os.path.join(d, "kube-fake.log"), "w"), text=True)
        line = self.p.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            raise RuntimeError("kube-fake did not start: " + line)
        self.url = m.group(1)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.token = "kube-fake-token"

    def req(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method,
                                   headers={"Authorization": f"Bearer {self.token}", "Content-Type": ctype})
        try:
            with urllib.request.urlopen(r, context=self.ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def apply(self, path, obj, manager="tests"):
        return self.req("PATCH", f"{path}?fieldManager={manager}&force=true", obj, "application/apply-patch+yaml")

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


class Kubectl:
    def __init__(self, kf, d):
        self.env = {"KUBECONFIG": kf.kubeconfig, "HOME": d}
        self.cache = os.path.join(d, "kubectl-cache")

    def __call__(self, *args, stdin=None, timeout=60):
        return run(["kubectl", "--cache-dir", self.cache, *args], env=self.env, timeout=timeout, input=stdin)


class Operator:
    binary = OPERATOR
    wrapper = []

    def __init__(self, kf, d, *extra, name="op"):
        self.mport, self.hport = free_port(), free_port()
        self.log = os.path.join(d, f"operator-{name}.log")
        self.p = subprocess.Popen([*Operator.wrapper, Operator.binary, "--kubeconfig", kf.kubeconfig, "-n", NS, "--name", "pprof-operator",
                                   "--metrics-addr", f"127.0.0.1:{self.mport}", "--health-addr", f"127.0.0.1:{self.hport}",
                                   *extra], stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

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

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def tail(self):
        try:
            return open(self.log).read()[-3000:]
        except OSError:
            return ""


def wait_for(fn, timeout=20, step=0.1):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(step)
    return None


def config_yaml(kf):
    st, cm = kf.req("GET", CM_PATH)
    return (cm.get("data") or {}).get("config.yaml", "") if st == 200 else None


def target_names(kf):
    y = config_yaml(kf) or ""
    return sorted(re.findall(r'^- name: "([^"]*)"', y, re.M))


def service(name, ns="default", labels=None, ports=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "pprof"}},
            "spec": {"selector": {"app": name}, "ports": ports or [{"name": "http", "port": 80, "targetPort": "pprof"}]}}


def slice_(svc, name, addrs, ns="default", port=6060, port_name="http", ready=None):
    ready = ready or {}
    eps = [{"addresses": [a], "conditions": {"ready": ready.get(a, True)}, "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "name": f"{svc}-{i}", "namespace": ns}} for i, a in enumerate(addrs)]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}], "endpoints": eps}


def put_service(kf, s):
    return kf.apply(f"/api/v1/namespaces/{s['metadata']['namespace']}/services/{s['metadata']['name']}", s)


def put_slice(kf, s):
    return kf.apply(f"/apis/discovery.k8s.io/v1/namespaces/{s['metadata']['namespace']}/endpointslices/{s['metadata']['name']}", s)


# ---- kube-fake fidelity, with the real kubectl --------------------------------------------------

def fidelity(t, kf, kc, d):
    p = kc("create", "namespace", NS)
    t.record("kubectl: create namespace", p.returncode == 0, p.stderr)
    p = kc("apply", "--server-side", "-f", os.path.join(ROOT, "deploy", "crds"))
    t.record("kubectl: apply --server-side -f deploy/crds", p.returncode == 0 and p.stdout.count("serverside-applied") == 2,
             p.stdout + p.stderr)
    p = kc("apply", "--server-side", "--dry-run=server", "-f", os.path.join(ROOT, "deploy", "operator"))
    t.record("kubectl: apply --server-side --dry-run=server -f deploy/operator (namespace, RBAC, Deployment)",
             p.returncode == 0 and p.stdout.count("serverside-applied (server dry run)") == 7, p.stdout + p.stderr)
    p = kc("apply", "--server-side", "--dry-run=server", "-f", os.path.join(ROOT, "examples", "manifests"))
    t.record("kubectl: apply --server-side --dry-run=server -f examples/manifests stores nothing",
             p.returncode == 0 and "server dry run" in p.stdout and kc("get", "pprofmonitors", "-A").stdout.strip() == "",
             p.stdout + p.stderr)
    p = kc("apply", "--server-side", "-f", os.path.join(ROOT, "examples", "manifests"))
    t.record("kubectl: apply --server-side -f examples/manifests", p.returncode == 0 and p.stdout.count("serverside-applied") >= 4,
             p.stdout + p.stderr)
    p = kc("get", "pprofmonitors", "-A", "-o", "yaml")
    t.record("kubectl: get pprofmonitors -o yaml shows the seed's spec",
             p.returncode == 0 and "pprofmonitor-sample" in p.stdout and "targetPort: 80" in p.stdout and "any: true" in p.stdout,
             p.stdout + p.stderr)
    p = kc("get", "pcs", "-n", NS)
    t.record("kubectl: get by short name prints the printer columns",
             p.returncode == 0 and re.search(r"NAME\s+DISK\s+READY\s+REPLICAS\s+AGE", p.stdout) and "5Gi" in p.stdout,
             p.stdout + p.stderr)
    bad = os.path.join(d, "bad.yaml")
    open(bad, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: bad, namespace: default}\n"
                         "spec:\n  endpoint: {scheme: ftp}\n  config: {heap: {seconds: 0}}\n")
    p = kc("apply", "--server-side", "-f", bad)
    t.record("kubectl: the CRD schema refuses scheme ftp and seconds 0 (422, both named)",
             p.returncode != 0 and "spec.endpoint.scheme" in p.stderr and "spec.config.heap.seconds" in p.stderr, p.stderr)
    open(bad, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: bad, namespace: default}\n"
                         "spec:\n  endpoint: {path: '/debug?x=1', interval: 100000h, timeout: 100000, targetPort: 70000}\n"
                         "  config: {profile: {seconds: 3601}}\n")
    p = kc("apply", "--server-side", "-f", bad)
    t.record("kubectl: the CRD schema refuses what the collector would: a path with ?, 100000h, a timeout over a day, "
             "seconds over 3600, a port over 65535",
             p.returncode != 0 and all(f in p.stderr for f in ("spec.endpoint.path", "spec.endpoint.interval", "spec.endpoint.timeout",
                                                                 "spec.config.profile.seconds", "spec.endpoint.targetPort")),
             p.stderr)
    open(bad, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\nmetadata: {name: bad, namespace: default}\n"
                         "spec:\n  storage: {diskSpace: lots}\n  collectorImage: {image: c}\n")
    p = kc("apply", "--server-side", "-f", bad)
    t.record("kubectl: diskSpace must be a quantity", p.returncode != 0 and "diskSpace" in p.stderr, p.stderr)
    open(bad, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\nmetadata: {name: bad, namespace: default}\n"
                         "spec:\n  storage: {diskSpace: 1Gi, storageClassName: Fast_SSD}\n"
                         "  collectorImage: {image: Collector, tag: 'v1 beta', sha: 'latest', imagePullSecrets: [{}]}\n")
    p = kc("apply", "--server-side", "-f", bad)
    t.record("kubectl: the stack's schema refuses a bad storage class, image name, tag, digest and a pull secret without a name",
             p.returncode != 0 and all(f in p.stderr for f in ("spec.storage.storageClassName", "spec.collectorImage.image",
                                                                 "spec.collectorImage.tag", "spec.collectorImage.sha",
                                                                 "spec.collectorImage.imagePullSecrets[0].name")), p.stderr)
    open(bad, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: bad, namespace: default}\n"
                         "spec:\n  bogus: 1\n")
    p = kc("apply", "--server-side", "-f", bad)
    t.record("kubectl: unknown fields are refused (strict field validation)",
             p.returncode != 0 and 'unknown field "spec.bogus"' in p.stderr, p.stderr)
    # field managers: another manager changing kubectl's field conflicts unless forced
    mon = os.path.join(d, "mon.yaml")
    open(mon, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: pprofmonitor-sample, namespace: default}\n"
                         "spec:\n  endpoint: {targetPort: 81}\n")
    p = kc("apply", "--server-side", "--field-manager", "someone-else", "-f", mon)
    t.record("kubectl: server-side apply conflict with another field manager", p.returncode != 0 and "conflict" in p.stderr.lower(),
             p.stdout + p.stderr)
    p = kc("apply", "--server-side", "--field-manager", "someone-else", "--force-conflicts", "-f", mon)
    g = kc("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.spec.endpoint.targetPort} {.metadata.generation}")
    t.record("kubectl: --force-conflicts takes the field; generation counts spec changes",
             p.returncode == 0 and g.stdout.strip() == "81 2", p.stderr + g.stdout + g.stderr)
    kc("apply", "--server-side", "--force-conflicts", "-f", os.path.join(ROOT, "examples", "manifests", "monitor.yaml"))
    # watch: kubectl get --watch sees an add, a change and a delete
    w = subprocess.Popen(["kubectl", "--cache-dir", kc.cache, "get", "pm", "-n", "default", "--watch", "-o", "name"],
                         env={**os.environ, **kc.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    open(mon, "w").write("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: watched, namespace: default}\nspec: {}\n")
    kc("apply", "--server-side", "-f", mon)
    kc("label", "pm", "-n", "default", "watched", "x=y")
    kc("delete", "pm", "-n", "default", "watched")
    time.sleep(1.5)
    w.terminate()
    out = w.communicate(timeout=10)[0]
    t.record("kubectl: get --watch streams add, change and delete",
             out.count("pprofmonitor.resources.cattle.io/watched") >= 3, out)
    # label selectors and status subresource
    p = kc("get", "services", "-A", "-l", "app=pprof", "-o", "name")
    t.record("kubectl: label selector on list", p.stdout.split() == ["service/pprof-demo"], p.stdout + p.stderr)
    p = kc("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=merge", "-p", '{"status":{"targets":7}}')
    s = kc("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.metadata.name}:{.status.targets}")
    t.record("kube-fake: status is only written through the status subresource",
             p.returncode == 0 and s.returncode == 0 and s.stdout.strip() == "pprofmonitor-sample:", p.stderr + s.stdout + s.stderr)
    p = kc("patch", "pm", "-n", "default", "pprofmonitor-sample", "--subresource=status", "--type=merge", "-p",
           '{"status":{"targets":7}}')
    s = kc("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.status.targets} {.metadata.generation}")
    t.record("kubectl: patch --subresource=status writes status without a new generation",
             p.returncode == 0 and s.stdout.strip() == "7 3", p.stderr + s.stdout)
    # 410 Gone: a watch from before a compaction is refused, as etcd's compaction does
    st, lst = kf.req("GET", "/apis/resources.cattle.io/v1alpha1/pprofmonitors")
    old_rv = lst["metadata"]["resourceVersion"]
    kf.req("POST", "/_fake/compact")
    r = urllib.request.Request(f"{kf.url}/apis/resources.cattle.io/v1alpha1/pprofmonitors?watch=1&resourceVersion={int(old_rv) - 1}",
                               headers={"Authorization": f"Bearer {kf.token}"})
    with urllib.request.urlopen(r, context=kf.ctx, timeout=10) as resp:
        ev = json.loads(resp.readline())
    t.record("kube-fake: a watch older than the compaction gets ERROR 410 Expired",
             ev["type"] == "ERROR" and ev["object"]["code"] == 410, ev)
    # paging
    st1, page = kf.req("GET", "/api/v1/namespaces?limit=2")
    st2, rest = kf.req("GET", "/api/v1/namespaces?limit=2&continue=" + page["metadata"].get("continue", ""))
    names = [o["metadata"]["name"] for o in page["items"] + rest["items"]]
    t.record("kube-fake: limit/continue pages through a list", st1 == 200 and st2 == 200 and len(names) == 4 and
             len(set(names)) == 4, names)


# ---- the operator end to end ------------------------------------------------------------------

def e2e(t, kf, kc, d):
    op = Operator(kf, d)
    try:
        t.record("operator: ready (CRDs installed, informers synced)", bool(wait_for(op.ready, 30)), op.tail())
        # the seed's example service: port 80 -> targetPort "pprof"; slices carry the resolved 6060
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.6"]))
        ok = wait_for(lambda: target_names(kf) == ["pprof-demo-0", "pprof-demo-1"], 15)
        y = config_yaml(kf) or ""
        t.record("operator: one collector monitor per ready endpoint address, named after its pod",
                 bool(ok) and 'endpoint: "http://10.0.0.5:6060"' in y and '__k8s_namespace: "default"' in y and
                 '__k8s_name: "pprof-demo"' in y and 'monitor: "pprofmonitor-sample"' in y and 'node: "node-1"' in y, y)
        cfg = os.path.join(d, "config.yaml")
        open(cfg, "w").write(y)
        p = run([COLLECTOR, "--check-config", cfg])
        t.record("operator: the collector accepts the generated config (--check-config)", p.returncode == 0, p.stdout + p.stderr)
        st, sts = kf.req("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")
        c = (sts.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0] if st == 200 else {}
        args = c.get("args", [])
        owner = (sts.get("metadata", {}).get("ownerReferences") or [{}])[0] if st == 200 else {}
        t.record("operator: StatefulSet with the seed's image, flags, 85% retention, probes, non-root, owned by the stack",
                 st == 200 and c.get("image") == "docker.io/pprof-controller/collector:dev" and
                 "--config=/etc/pprof-collector/config.yaml" in args and "--web-port=8989" in args and
                 f"--retention-size={5 * 1024 ** 3 // 100 * 85}B" in args and c.get("readinessProbe") and c.get("livenessProbe") and
                 c["securityContext"]["runAsNonRoot"] and c["securityContext"]["allowPrivilegeEscalation"] is False and
                 owner.get("kind") == "PprofCollectorStack" and owner.get("controller") is True and
                 len(sts["spec"]["template"]["spec"]["containers"]) == 1, json.dumps(sts)[:3000])
        st1, svc = kf.req("GET", f"/api/v1/namespaces/{NS}/services/pprof-operator-collector")
        st2, pvc = kf.req("GET", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/pprof-operator-collector-data")
        t.record("operator: Service pprof-operator-collector (8989 web) and PVC of diskSpace",
                 st1 == 200 and svc["spec"]["ports"][0]["port"] == 8989 and svc["spec"]["ports"][0]["name"] == "web" and
                 st2 == 200 and pvc["spec"]["resources"]["requests"]["storage"] == "5Gi", [svc, pvc])

        def stack_status():
            st, s = kf.req("GET", f"/apis/resources.cattle.io/v1alpha1/namespaces/{NS}/pprofcollectorstacks/pprofmonitor-stack")
            conds = {c["type"]: c["status"] for c in s.get("status", {}).get("conditions", [])}
            return s if conds.get("Reconciled") == "True" and s["status"].get("observedGeneration") == s["metadata"]["generation"] else None
        s = wait_for(stack_status, 10)
        t.record("operator: stack status Reconciled=True, Ready=False until a pod is ready, observedGeneration",
                 bool(s) and {c["type"]: c["status"] for c in s["status"]["conditions"]}.get("Ready") == "False", s)
        # the StatefulSet's pod becomes ready (kube-fake has no kubelet: the test plays it)
        kf.req("PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector/status",
               {"status": {"replicas": 1, "readyReplicas": 1}}, "application/merge-patch+json")
        s = wait_for(lambda: (lambda x: x if x and x["status"].get("readyReplicas") == 1 else None)(stack_status()), 10)
        t.record("operator: stack Ready=True with readyReplicas once the collector is ready",
                 bool(s) and {c["type"]: c["status"] for c in s["status"]["conditions"]}.get("Ready") == "True", s)

        def mon_status(name="pprofmonitor-sample", ns="default"):
            st, m = kf.req("GET", f"/apis/resources.cattle.io/v1alpha1/namespaces/{ns}/pprofmonitors/{name}")
            return m.get("status", {}) if st == 200 else {}
        m = wait_for(lambda: (lambda s: s if s.get("targets") == 2 else None)(mon_status()), 10)
        t.record("operator: monitor status counts its targets, Reconciled=True, observedGeneration",
                 bool(m) and m["conditions"][0]["type"] == "Reconciled" and m["conditions"][0]["status"] == "True", mon_status())

        # scale: a third address, one not ready
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.6", "10.0.0.7"], ready={"10.0.0.6": False}))
        ok = wait_for(lambda: target_names(kf) == ["pprof-demo-0", "pprof-demo-2"], 10)
        t.record("operator: scaling endpoints updates the config; not-ready endpoints are left out", bool(ok), target_names(kf))
        # another service in another namespace, by port name, https and a path prefix
        kf.req("POST", "/api/v1/namespaces", {"metadata": {"name": "team-b"}})
        put_service(kf, service("api", "team-b", {"app": "pprof", "tier": "api"},
                                [{"name": "debug", "port": 8443, "targetPort": 8443}]))
        put_slice(kf, slice_("api", "api-x", ["10.1.0.1"], ns="team-b", port=8443, port_name="debug"))
        kf.apply("/apis/resources.cattle.io/v1alpha1/namespaces/team-b/pprofmonitors/api",
                 {"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor", "metadata": {"name": "api", "namespace": "team-b"},
                  "spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]},
                           "endpoint": {"port": "debug", "scheme": "https", "path": "/internal", "interval": "30s"},
                           "config": {"heap": {"seconds": 5}}}})
        ok = wait_for(lambda: 'endpoint: "https://10.1.0.1:8443/internal"' in (config_yaml(kf) or ""), 10)
        t.record("operator: matchExpressions, own namespace, port by name, https and path prefix",
                 bool(ok) and "interval_seconds: 30" in (config_yaml(kf) or ""), config_yaml(kf))
        # relabel: the seed monitor's service no longer matches
        put_service(kf, service("pprof-demo", labels={"app": "other"}, ports=[{"name": "http", "port": 80, "targetPort": "pprof"}]))
        ok = wait_for(lambda: "pprof-demo" not in " ".join(target_names(kf)), 10)
        t.record("operator: relabelled service drops out of the config", bool(ok), target_names(kf))
        put_service(kf, service("pprof-demo", labels={"app": "pprof"}, ports=[{"name": "http", "port": 80, "targetPort": "pprof"}]))
        t.record("operator: relabelled back, it returns",
                 bool(wait_for(lambda: "pprof-demo-0" in target_names(kf), 10)), target_names(kf))
        # a monitor whose port resolves nowhere says so in its status
        kf.apply("/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/noport",
                 {"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor", "metadata": {"name": "noport", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": {"app": "pprof"}}, "endpoint": {"port": "nope"}}})
        m = wait_for(lambda: (lambda s: s if s.get("conditions") and s["conditions"][0]["status"] == "False" else None)(mon_status("noport")), 10)
        t.record("operator: an unresolvable port is a Reconciled=False condition with the reason",
                 bool(m) and "nope" in m["conditions"][0]["message"], mon_status("noport"))
        kf.req("DELETE", "/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/noport")

        # one bad monitor beside good ones: its interval passes the CRD's pattern but not the
        # collector's bounds; only it is left out (its status says why), the others' targets
        # keep flowing and the collector accepts the config
        slow_path = "/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/slow"
        kf.apply(slow_path, {"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor",
                             "metadata": {"name": "slow", "namespace": "default"},
                             "spec": {"selector": {"matchLabels": {"app": "pprof"}}, "endpoint": {"targetPort": 80, "interval": "99999h"}}})
        m = wait_for(lambda: (lambda s: s if s.get("conditions") and s["conditions"][0]["status"] == "False" else None)(mon_status("slow")), 10)
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.6", "10.0.0.7"]))
        ok = wait_for(lambda: target_names(kf) == ["api-0", "pprof-demo-0", "pprof-demo-1", "pprof-demo-2"], 10)
        y = config_yaml(kf) or ""
        open(cfg, "w").write(y)
        p = run([COLLECTOR, "--check-config", cfg])
        st, slow = kf.req("GET", slow_path)
        cond = (m or {}).get("conditions", [{}])[0]
        good, api = mon_status(), mon_status("api", "team-b")
        t.record("operator: a monitor the collector would refuse (interval 99999h) is left out alone, its status says why",
                 bool(m) and bool(ok) and p.returncode == 0 and 'monitor: "slow"' not in y and
                 cond.get("reason") == "InvalidSpec" and "spec.endpoint.interval" in cond.get("message", "") and
                 "99999h" in cond.get("message", "") and cond.get("observedGeneration") == slow["metadata"]["generation"] and
                 m.get("targets") == 0 and good.get("targets") == 3 and api.get("targets") == 1 and
                 api["conditions"][0]["status"] == "True", [m, good, api, p.stdout + p.stderr, y])
        # fixed (1h30m is 5400 s, not 0): its targets join, its status turns True
        kf.apply(slow_path, {"apiVersion": "resources.cattle.io/v1alpha1", "kind": "PprofMonitor",
                             "metadata": {"name": "slow", "namespace": "default"},
                             "spec": {"selector": {"matchLabels": {"app": "pprof"}}, "endpoint": {"targetPort": 80, "interval": "1h30m"}}})
        m = wait_for(lambda: (lambda s: s if s.get("targets") == 3 and s["conditions"][0]["status"] == "True" else None)(mon_status("slow")), 10)
        y = config_yaml(kf) or ""
        open(cfg, "w").write(y)
        p = run([COLLECTOR, "--check-config", cfg])
        t.record("operator: the fixed monitor (interval 1h30m) joins with interval_seconds 5400; the collector accepts it",
                 bool(m) and y.count('monitor: "slow"') == 3 and y.count("interval_seconds: 5400\n") == 3 and p.returncode == 0,
                 [mon_status("slow"), p.stdout + p.stderr, y])
        kf.req("DELETE", slow_path)

        # drift: a deleted child comes back, an edited one is put back
        kf.req("DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")
        ok = wait_for(lambda: kf.req("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")[0] == 200, 10)
        t.record("operator: a deleted StatefulSet is recreated", bool(ok))
        kf.req("PATCH", f"/api/v1/namespaces/{NS}/services/pprof-operator-collector",
               {"spec": {"ports": [{"name": "web", "port": 9999, "targetPort": "web"}]}}, "application/merge-patch+json")
        ok = wait_for(lambda: kf.req("GET", f"/api/v1/namespaces/{NS}/services/pprof-operator-collector")[1]["spec"]["ports"][0]["port"] == 8989, 10)
        t.record("operator: an edited Service is put back (forced apply)", bool(ok))
        kf.req("PATCH", CM_PATH, {"data": {"config.yaml": "monitors: []\n"}}, "application/merge-patch+json")
        ok = wait_for(lambda: "pprof-demo-0" in target_names(kf), 10)
        t.record("operator: a hand-edited config.yaml is rewritten", bool(ok), config_yaml(kf))

        # watches dropped, history compacted: the operator relists and converges
        before = op.metrics()
        kf.req("POST", "/_fake/drop-watches")
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok = wait_for(lambda: target_names(kf) == ["api-0", "pprof-demo-0"], 15)
        after = op.metrics()
        t.record("operator: dropped watches resume (watch restarts counted) and the change lands",
                 bool(ok) and after.get('operator_watch_restarts_total{resource="endpointslices"}', 0) >
                 before.get('operator_watch_restarts_total{resource="endpointslices"}', 0), target_names(kf))
        # a write nobody watches first, so the compaction passes every informer's resourceVersion
        # (a bookmark can bring a watch up to the newest one, which a compaction keeps)
        kf.req("POST", "/api/v1/namespaces", {"metadata": {"name": "compaction-marker"}})
        kf.req("POST", "/_fake/compact")
        kf.req("POST", "/_fake/drop-watches")
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.8"]))
        ok = wait_for(lambda: target_names(kf) == ["api-0", "pprof-demo-0", "pprof-demo-1"], 20)
        m = op.metrics()
        t.record("operator: after a compaction the watch gets 410, relists and converges",
                 bool(ok) and m.get('operator_relists_total{resource="endpointslices"}', 0) >= 1, [target_names(kf), m])
        # faults: the config write fails with 500 twice, then goes through (per-key backoff)
        kf.req("POST", "/_fake/faults", {"method": "PATCH", "path": r"configmaps/pprof-operator-config\?fieldManager=pprof-operator-config", "status": 500, "count": 2})
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok = wait_for(lambda: target_names(kf) == ["api-0", "pprof-demo-0"], 15)
        m = op.metrics()
        t.record("operator: API errors are retried with backoff until the config lands",
                 bool(ok) and m.get('operator_reconcile_errors_total{controller="monitors"}', 0) >= 2, [target_names(kf), m])
        kf.req("POST", "/_fake/faults", {"watch": True, "path": "pprofmonitors", "status": 429, "count": 3})
        kf.req("POST", "/_fake/drop-watches")
        kf.req("DELETE", "/apis/resources.cattle.io/v1alpha1/namespaces/team-b/pprofmonitors/api")
        ok = wait_for(lambda: target_names(kf) == ["pprof-demo-0"], 45)
        t.record("operator: 429 on watches backs off, then a deleted monitor leaves the config", bool(ok), target_names(kf))
        kf.req("DELETE", "/_fake/faults")

        # killed and restarted: converges without rewriting what is already right
        op.stop(signal.SIGKILL)
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.9"]))
        op = Operator(kf, d, name="restarted")
        ok = wait_for(lambda: target_names(kf) == ["pprof-demo-0", "pprof-demo-1"], 20)
        t.record("operator: killed (-9) during a change, a new process converges", bool(ok), target_names(kf) + [op.tail()])
        time.sleep(1)
        m = op.metrics()
        writes = m.get("operator_config_writes_total", -1)
        p = Operator(kf, d, name="idle")
        wait_for(p.ready, 20)
        time.sleep(1.5)
        m2 = p.metrics()
        p.stop()
        t.record("operator: a restart over a correct cluster writes no config and no status",
                 writes >= 1 and m2.get("operator_config_writes_total") == 0 and m2.get("operator_status_writes_total") == 0, [m, m2])
        req = m2.get("operator_api_requests_total", 0)
        t.record("operator: API requests of a start-up (2 CRD applies, 8 lists and watches, ~2 discovery reads)",
                 0 < req <= 30, req)
        # deleting the stack garbage-collects its children
        kf.req("DELETE", f"/apis/resources.cattle.io/v1alpha1/namespaces/{NS}/pprofcollectorstacks/pprofmonitor-stack")
        gone = [kf.req("GET", p)[0] for p in (f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector",
                                              f"/api/v1/namespaces/{NS}/services/pprof-operator-collector",
                                              f"/api/v1/namespaces/{NS}/persistentvolumeclaims/pprof-operator-collector-data")]
        time.sleep(1)
        t.record("operator: deleting the stack garbage-collects its StatefulSet, Service and PVC (not recreated)",
                 gone == [404, 404, 404] and kf.req("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")[0] == 404,
                 gone)
        rc = op.stop()
        t.record("operator: SIGTERM stops it with status 0", rc == 0, op.tail())
    finally:
        op.stop()


def leader_election(t, kf, d):
    a = Operator(kf, d, "--leader-elect", name="a")
    time.sleep(1.0)
    b = Operator(kf, d, "--leader-elect", name="b")
    try:
        ok = wait_for(lambda: a.ready() and b.ready(), 20)
        lead = wait_for(lambda: [x for x in (a, b) if x.metrics().get("operator_leader") == 1], 20)
        t.record("leader election: two operators, exactly one leads", bool(ok) and lead and len(lead) == 1,
                 [a.metrics().get("operator_leader"), b.metrics().get("operator_leader"), a.tail(), b.tail()])
        if not lead or len(lead) != 1:
            return
        leader, other = lead[0], (b if lead[0] is a else a)
        before = other.metrics().get('operator_reconciles_total{controller="monitors"}', 0)
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.10", "10.0.0.11"]))
        ok = wait_for(lambda: len(target_names(kf)) == 3, 10)
        after = other.metrics().get('operator_reconciles_total{controller="monitors"}', 0)
        t.record("leader election: only the leader reconciles and writes", bool(ok) and after == before == 0,
                 [before, after, target_names(kf)])
        st, lease = kf.req("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/pprof-operator-leader")
        t.record("leader election: the Lease names the holder with a 15 s duration",
                 st == 200 and lease["spec"]["leaseDurationSeconds"] == 15 and lease["spec"]["holderIdentity"], lease)
        leader.stop()
        ok = wait_for(lambda: other.metrics().get("operator_leader") == 1, 10)
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok2 = wait_for(lambda: len(target_names(kf)) == 1, 10)
        t.record("leader election: a stopped leader releases the Lease; the other takes over and reconciles",
                 bool(ok) and bool(ok2), [other.tail()])
        # a leader that dies without releasing: the standby waits out the 15 s lease, then leads
        c = Operator(kf, d, "--leader-elect", name="c")
        try:
            wait_for(c.ready, 20)
            time.sleep(2.5)  # c has seen the current record
            t0 = time.time()
            other.stop(signal.SIGKILL)
            ok = wait_for(lambda: c.metrics().get("operator_leader") == 1, 30, 0.2)
            took = time.time() - t0
            t.record(f"leader election: a leader killed with -9 is replaced once its lease expires ({took:.1f} s; lease 15 s)",
                     bool(ok) and 14.0 <= took <= 25.0, [took, c.tail()])
        finally:
            c.stop()
    finally:
        a.stop()
        b.stop()


LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/pprof-operator-leader"
RETRY_S = 2.0  # the operator's leader-election retry period (docs/operator.md)


def rfc3339(ts):
    """A Lease time (RFC 3339 with microseconds) as seconds since the epoch."""
    import datetime
    return datetime.datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class LeaseWatcher:
    """Samples the Lease every 50 ms in a thread: each renewTime the holder writes, and whether
    the operator stayed the leader (its metric) the whole time."""

    def __init__(self, kf, op):
        import threading
        self.kf, self.op, self.renewals, self.not_leader, self.stopped = kf, op, [], 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopped:
            st, lease = self.kf.req("GET", LEASE_PATH)
            rt = (lease.get("spec") or {}).get("renewTime") if st == 200 else None
            if rt and (not self.renewals or self.renewals[-1] != rt):
                self.renewals.append(rt)
            if self.op.metrics().get("operator_leader") != 1:
                self.not_leader += 1
            time.sleep(0.05)

    def stop(self):
        self.stopped = True
        self.t.join(5)
        times = [rfc3339(r) for r in self.renewals]
        return max((b - a for a, b in zip(times, times[1:])), default=None), len(times)


def slow_api_server(t, kf, d):
    """A slow API server: lists and writes are in flight for 12 s (longer than the 10 s renew
    deadline) while the leader's loop goes on, so its Lease is renewed every retry period; a
    failed lease request is logged once (and its recovery once); --log-level=error silences
    info lines."""
    op = Operator(kf, d, "--leader-elect", name="slow")
    try:
        ok = wait_for(lambda: op.ready() and op.metrics().get("operator_leader") == 1, 30)
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok = ok and wait_for(lambda: target_names(kf) == ["pprof-demo-0"] and op.metrics().get("operator_workqueue_depth") == 0, 15)
        t.record("slow API: the operator leads and has converged", bool(ok), [target_names(kf), op.tail()])
        watcher = LeaseWatcher(kf, op)
        # a relist of EndpointSlices that takes 12 s (a watch refused with 410 forces it)
        kf.req("POST", "/_fake/faults", {"method": "GET", "path": r"endpointslices\?limit", "delay": 12, "count": 1})
        kf.req("POST", "/_fake/faults", {"watch": True, "path": "endpointslices", "status": 410, "count": 1})
        t0 = time.time()
        kf.req("POST", "/_fake/drop-watches")
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.12"]))
        listed = wait_for(lambda: target_names(kf) == ["pprof-demo-0", "pprof-demo-1"], 40)
        took_list = time.time() - t0
        # then a config write that takes 12 s
        kf.req("POST", "/_fake/faults", {"method": "PATCH", "path": r"configmaps/pprof-operator-config\?", "delay": 12, "count": 1})
        t1 = time.time()
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        written = wait_for(lambda: target_names(kf) == ["pprof-demo-0"], 40)
        took_write = time.time() - t1
        gap, n = watcher.stop()
        text = open(op.log).read()
        t.record(f"slow API: a 12 s relist ({took_list:.1f} s to land) and a 12 s config write ({took_write:.1f} s) in flight, the "
                 f"Lease is renewed every retry period (largest gap {gap if gap is None else round(gap, 3)} s over {n} renewals)",
                 bool(listed) and bool(written) and took_list >= 12 and took_write >= 12 and gap is not None and
                 gap <= RETRY_S + 0.5 and n >= (took_list + took_write) / RETRY_S - 2 and watcher.not_leader == 0 and
                 "leader election lost" not in text,
                 [took_list, took_write, gap, n, watcher.not_leader, watcher.renewals[-20:], op.tail()])
        # three lease requests fail in a row: one line when it starts, one when it works again
        before = op.metrics().get("operator_lease_failures_total", 0)
        kf.req("POST", "/_fake/faults", {"method": "GET", "path": "leases/pprof-operator-leader", "status": 500, "count": 3})
        failed = wait_for(lambda: op.metrics().get("operator_lease_failures_total", 0) - before >= 3, 20)
        wait_for(lambda: "lease requests work again" in open(op.log).read(), 10)
        text = open(op.log).read()
        lines = [ln for ln in text.splitlines() if "lease request failed" in ln]
        t.record("slow API: three failed lease requests are logged once (and the recovery once); still the leader",
                 bool(failed) and len(lines) == 1 and "level=warn" in lines[0] and "500" in lines[0] and text.count("lease requests work again") == 1 and
                 op.metrics().get("operator_leader") == 1, [lines, op.tail()])
        kf.req("DELETE", "/_fake/faults")
        # --log-level=error: a standby that starts, syncs and stops prints no info line
        q = Operator(kf, d, "--leader-elect", "--log-level=error", name="quiet")
        try:
            ready = wait_for(q.ready, 20)
            q.stop()
            quiet = open(q.log).read()
        finally:
            q.stop()
        t.record("operator: --log-level=error silences info and warn lines (the default level prints them)",
                 bool(ready) and "level=info" not in quiet and "level=warn" not in quiet and "level=info" in open(op.log).read(),
                 quiet[-2000:])
    finally:
        kf.req("DELETE", "/_fake/faults")
        op.stop()


def bad_watch_events(t, kf, d):
    """A watch that ends on an event it cannot read (not JSON; over 16 MiB) is an error: logged
    once, counted, followed by the backoff and a relist (the event is lost), not re-watched at
    once as if the server had closed it."""
    op = Operator(kf, d, name="badevents")
    try:
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok = wait_for(lambda: op.ready() and target_names(kf) == ["pprof-demo-0"], 20)
        for case, fault, says in (("not JSON", {"inject": "this is not json"}, "not {type, object}"),
                                  ("over 16 MiB", {"inject_bytes": 17 << 20}, "over 16777216 bytes")):
            before = op.metrics()
            kf.req("POST", "/_fake/faults", {"watch": True, "path": "endpointslices", "count": 1, **fault})
            addrs = ["10.0.0.5", "10.0.0.13"] if case == "not JSON" else ["10.0.0.5"]
            want = ["pprof-demo-0", "pprof-demo-1"] if case == "not JSON" else ["pprof-demo-0"]
            t0 = time.time()
            put_slice(kf, slice_("pprof-demo", "pprof-demo-a", addrs))
            landed = wait_for(lambda: target_names(kf) == want, 30, 0.02)
            took = time.time() - t0
            after = op.metrics()
            key = 'operator_watch_errors_total{resource="endpointslices",reason="bad_event"}'
            errors = after.get(key, 0) - before.get(key, 0)
            rkey = 'operator_relists_total{resource="endpointslices"}'
            relists = after.get(rkey, 0) - before.get(rkey, 0)
            lines = [ln for ln in open(op.log).read().splitlines() if says in ln]
            t.record(f"operator: a watch event {case} is an error: logged once, counted, backoff ({took:.1f} s >= 0.8 s), "
                     "relist, and the change it carried lands",
                     bool(ok) and bool(landed) and errors == 1 and relists == 1 and took >= 0.8 and len(lines) == 1 and
                     "endpointslices" in lines[0] and "level=warn" in lines[0],
                     [errors, relists, took, lines, target_names(kf), op.tail()])
    finally:
        kf.req("DELETE", "/_fake/faults")
        op.stop()


def sanitizer_reports(d):
    """ASan/UBSan findings in the operator logs of the run, and how many logs were read."""
    found, scanned = [], 0
    for f in os.listdir(d):
        if f.startswith("operator-") and f.endswith(".log"):
            scanned += 1
            text = open(os.path.join(d, f), errors="replace").read()
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                found.append(f + ":\n" + text[-2500:])
    return found, scanned


def client_certificates(t, kf, d):
    """Kubeconfigs that authenticate with a client certificate, as data and as files (with the CA
    as a file too): kubectl and the operator both get in; without credentials the server says 401."""
    for name, path in (("data", kf.kubeconfig_cert), ("files", kf.kubeconfig_cert_files)):
        k = Kubectl(kf, d)
        k.env["KUBECONFIG"] = path
        p = k("get", "namespaces", "-o", "name")
        t.record(f"kubectl: client certificate ({name}) authenticates", p.returncode == 0 and "namespace/default" in p.stdout,
                 p.stdout + p.stderr)

        class K:
            kubeconfig = path
        op = Operator(K, d, name=f"cert-{name}")
        try:
            ok = wait_for(op.ready, 20)
            t.record(f"operator: kubeconfig with client certificate and key as {name} (CA as {name}): lists and watches",
                     bool(ok) and "Unauthorized" not in open(op.log).read(), op.tail())
        finally:
            op.stop()
    r = urllib.request.Request(kf.url + "/api/v1/namespaces")
    try:
        urllib.request.urlopen(r, context=kf.ctx, timeout=10)
        code = 200
    except urllib.error.HTTPError as e:
        code = e.code
    t.record("kube-fake: no token and no certificate is 401", code == 401, code)


def exec_plugin(t, kf, d):
    """A kubeconfig whose user is an exec credential plugin (ExecCredential v1), as cloud
    providers ship them: kubectl and the operator run it, with KUBERNETES_EXEC_INFO, and the
    operator keeps the token until its expiry; a failing plugin is a clear start-up error."""
    plugin = os.path.join(d, "cred-plugin.sh")
    open(plugin, "w").write('#!/bin/sh\necho "$KUBERNETES_EXEC_INFO" >> "$RUNS_FILE"\n'
                            '[ -n "$FAIL" ] && { echo "no credentials for you" >&2; exit 1; }\n'
                            '# SLOW: runs after the first take that many seconds; EXP_IN: the token lives that long\n'
                            '[ -n "$SLOW" ] && [ "$(wc -l < "$RUNS_FILE")" -gt 1 ] && sleep "$SLOW"\n'
                            'exp=2099-01-01T00:00:00Z\n[ -n "$EXP_IN" ] && exp=$(date -u -d "+$EXP_IN seconds" +%Y-%m-%dT%H:%M:%SZ)\n'
                            'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
                            '"status":{"token":"%s","expirationTimestamp":"%s"}}\' "$TOKEN" "$exp"\n')
    os.chmod(plugin, 0o755)
    base = open(kf.kubeconfig).read()

    def make_kc(name, runs, fail=False, slow=None, exp_in=None):
        path = os.path.join(d, f"kubeconfig-exec-{name}")
        env = f"      - {{name: RUNS_FILE, value: {runs}}}\n      - {{name: TOKEN, value: {kf.token}}}\n"
        if fail:
            env += "      - {name: FAIL, value: '1'}\n"
        if slow:
            env += f"      - {{name: SLOW, value: '{slow}'}}\n      - {{name: EXP_IN, value: '{exp_in}'}}\n"
        open(path, "w").write(base.replace(f"    token: {kf.token}\n",
                                           "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                           "      command: ./cred-plugin.sh\n      args: [--cluster, kube-fake]\n"
                                           "      interactiveMode: Never\n      env:\n" + env))
        return path
    k = Kubectl(kf, d)
    k.env["KUBECONFIG"] = make_kc("kubectl", os.path.join(d, "runs-kubectl"))
    p = k("get", "namespaces", "-o", "name")
    t.record("kubectl: the exec-plugin kubeconfig works (the fixture is what kubectl accepts)",
             p.returncode == 0 and "namespace/default" in p.stdout, p.stdout + p.stderr)
    runs = os.path.join(d, "runs-operator")

    class K:
        kubeconfig = make_kc("operator", runs)
    op = Operator(K, d, name="exec")
    try:
        ok = wait_for(op.ready, 20)
        lines = open(runs).read().splitlines() if os.path.exists(runs) else []
        t.record("operator: exec credential plugin run once (token kept until expiry), with KUBERNETES_EXEC_INFO",
                 bool(ok) and len(lines) == 1 and '"kind":"ExecCredential"' in lines[0], [lines, op.tail()])
    finally:
        op.stop()

    class F:
        kubeconfig = make_kc("failing", os.path.join(d, "runs-failing"), fail=True)
    op = Operator(F, d, name="exec-fail")
    try:
        rc = op.p.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    t.record("operator: a failing exec plugin stops start-up with exit 1 and says which plugin",
             rc == 1 and "exec plugin" in open(op.log).read() and "cred-plugin.sh" in open(op.log).read(), op.tail())
    op.stop()

    # the token is renewed in the background: it lives 24 s and is renewed from a quarter of its
    # life on; each renewal takes the plugin 6 s, while the operator leads and renews its Lease
    slow_runs = os.path.join(d, "runs-slow")

    class S:
        kubeconfig = make_kc("slow", slow_runs, slow=6, exp_in=24)
    op = Operator(S, d, "--leader-elect", name="exec-slow")
    try:
        ok = wait_for(lambda: op.ready() and op.metrics().get("operator_leader") == 1, 30)
        watcher = LeaseWatcher(kf, op)
        time.sleep(22)
        gap, n = watcher.stop()
        runs = open(slow_runs).read().splitlines() if os.path.exists(slow_runs) else []
        text = open(op.log).read()
        t.record(f"operator: a 6 s exec plugin renews the token in the background ({len(runs)} runs); the Lease keeps "
                 f"its rhythm (largest gap {gap if gap is None else round(gap, 3)} s over {n} renewals)",
                 bool(ok) and len(runs) >= 2 and gap is not None and gap <= RETRY_S + 0.5 and watcher.not_leader == 0 and
                 "no credentials" not in text and "leader election lost" not in text,
                 [len(runs), gap, n, watcher.not_leader, watcher.renewals[-15:], op.tail()])
    finally:
        op.stop()


def in_cluster_rbac(t, kf, kc, d):
    """deploy/operator's RBAC applied for real; the operator then runs as that service account
    (kube-fake enforces RBAC for service-account tokens): everything it does is allowed, and
    what it must not do is not."""
    p = kc("apply", "--server-side", "-f", os.path.join(ROOT, "deploy", "operator"))
    t.record("kubectl: apply --server-side -f deploy/operator", p.returncode == 0, p.stdout + p.stderr)
    sa_kc = os.path.join(d, "kubeconfig-sa")
    open(sa_kc, "w").write(open(kf.kubeconfig).read().replace(f"token: {kf.token}", f"token: sa:{NS}:pprof-operator"))

    class SA:
        kubeconfig = sa_kc
    op = Operator(SA, d, "--leader-elect", name="rbac")
    try:
        kc("apply", "--server-side", "-f", os.path.join(ROOT, "examples", "manifests", "stack.yaml"))
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.6"]))
        ok = wait_for(lambda: target_names(kf) == ["pprof-demo-0", "pprof-demo-1"] and
                      kf.req("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")[0] == 200 and
                      op.metrics().get("operator_workqueue_depth") == 0, 30)
        st, sts = kf.req("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")
        errs = op.metrics()
        forbidden = "forbidden" in open(op.log).read().lower()
        t.record("operator as its service account (deploy/operator RBAC): CRDs, lease, children, config, statuses all allowed",
                 bool(ok) and st == 200 and not forbidden and errs.get('operator_reconcile_errors_total{controller="stack"}') == 0 and
                 errs.get('operator_reconcile_errors_total{controller="monitors"}') == 0,
                 [bool(ok), st, forbidden, {k: v for k, v in errs.items() if "errors" in k}, op.tail()])
    finally:
        op.stop()
    sa = {"Authorization": f"Bearer sa:{NS}:pprof-operator"}
    denied = []
    for method, path in (("GET", "/api/v1/namespaces/default/secrets"), ("DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector"),
                         ("DELETE", "/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/pprofmonitor-sample"),
                         ("PATCH", "/apis/resources.cattle.io/v1alpha1/namespaces/default/pprofmonitors/pprofmonitor-sample"),
                         ("GET", "/api/v1/pods")):
        r = urllib.request.Request(kf.url + path, method=method, headers={**sa, "Content-Type": "application/merge-patch+json"},
                                   data=b"{}" if method == "PATCH" else None)
        try:
            urllib.request.urlopen(r, context=kf.ctx, timeout=10)
            denied.append((method, path, 200))
        except urllib.error.HTTPError as e:
            denied.append((method, path, e.code))
    t.record("RBAC: the operator's account cannot read secrets or pods, delete its children or edit monitors' specs",
             all(c == 403 for _, _, c in denied), denied)


def under_asan(t, d):
    """The end-to-end run, the slow API server and the bad watch events again with the
    ASan+UBSan operator, on a fresh kube-fake."""
    if not os.access(OPERATOR_ASAN, os.X_OK):
        t.record("operator[asan]: binary built", False, OPERATOR_ASAN)
        return
    sub = os.path.join(d, "asan")
    os.makedirs(sub)
    kf = KubeFake(sub)
    Operator.binary = OPERATOR_ASAN
    os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    os.environ["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    inner = Tally_prefix(t, "[asan] ")
    try:
        kc = Kubectl(kf, sub)
        kc("create", "namespace", NS)
        kc("apply", "--server-side", "-f", os.path.join(ROOT, "deploy", "crds"))
        kc("apply", "--server-side", "-f", os.path.join(ROOT, "examples", "manifests"))
        e2e(inner, kf, kc, sub)
        slow_api_server(inner, kf, sub)  # jobs, lease attempts and lists cancelled at shutdown
        bad_watch_events(inner, kf, sub)
    finally:
        Operator.binary = OPERATOR
        kf.stop()
    reports, scanned = sanitizer_reports(sub)
    t.record(f"operator[asan]: no AddressSanitizer, LeakSanitizer or UBSan report in any of the {scanned} runs' logs",
             scanned >= 3 and not reports, "\n".join(reports) or f"{scanned} logs")


class Tally_prefix:
    def __init__(self, t, prefix):
        self.t, self.prefix = t, prefix

    def record(self, name, ok, detail=""):
        self.t.record(self.prefix + name, ok, detail)


def under_valgrind(t, d):
    """The operator under memcheck: start, reconcile a stack and a monitor, take changes, stop."""
    if not shutil.which("valgrind"):
        t.record("operator[valgrind]: valgrind installed", False, "missing")
        return
    sub = os.path.join(d, "valgrind")
    os.makedirs(sub)
    kf = KubeFake(sub)
    vlog = os.path.join(sub, "valgrind.log")
    Operator.wrapper = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                        "-q", f"--log-file={vlog}"]
    try:
        kc = Kubectl(kf, sub)
        kc("create", "namespace", NS)
        op = Operator(kf, sub, name="valgrind")
        ok = wait_for(op.ready, 60)
        kc("apply", "--server-side", "-f", os.path.join(ROOT, "examples", "manifests"))
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5", "10.0.0.6"]))
        ok = ok and wait_for(lambda: len(target_names(kf)) == 2, 60)
        kf.req("POST", "/_fake/drop-watches")
        put_slice(kf, slice_("pprof-demo", "pprof-demo-a", ["10.0.0.5"]))
        ok = ok and wait_for(lambda: len(target_names(kf)) == 1, 60)
        rc = op.stop()
        text = open(vlog).read()
        t.record("operator[valgrind]: reconcile, watch restart, stop: no errors or leaks",
                 bool(ok) and rc == 0 and "definitely lost" not in text and "Invalid" not in text,
                 f"rc={rc}\n{text[-3000:]}\n{op.tail()}")
    finally:
        Operator.wrapper = []
        kf.stop()


def run_suite(t):
    if not shutil.which("kubectl"):
        t.record("operator: kubectl installed (make deps)", False, "kubectl missing")
        return
    d = tempfile.mkdtemp(prefix="operator-suite-", dir=OUT if os.path.isdir(OUT) else None)
    kf = KubeFake(d)
    try:
        kc = Kubectl(kf, d)
        fidelity(t, kf, kc, d)
        client_certificates(t, kf, d)
        exec_plugin(t, kf, d)
        e2e(t, kf, kc, d)
        leader_election(t, kf, d)
        slow_api_server(t, kf, d)
        bad_watch_events(t, kf, d)
        in_cluster_rbac(t, kf, kc, d)
    finally:
        kf.stop()
    under_asan(t, d)
    under_valgrind(t, d)
