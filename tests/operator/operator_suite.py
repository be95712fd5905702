"""Operator suite on a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
kube-scheduler, etcd and kubectl v1.37 built from Go modules; tests/lib/cluster.py) with one
node whose pods are real processes in network namespaces (tests/lib/kubelet.py).

Nothing here is written by hand that a controller writes in a cluster: EndpointSlices come
from the EndpointSlice controller as the demo pods become ready, unready and deleted; the
collector pod from the StatefulSet controller, run from its image with what the API server
stored; garbage collection, namespace deletion, Leases, TokenRequest tokens and RBAC are the
real ones. Faults (dropped watches, 429/500, slow answers) come from a proxy in front of the
real server; 410 Gone from a real etcd compaction.

Sections: CRDs with kubectl; the seed's steps end to end (pods scraped by the collector pod);
changes (scale, unready, deleted pods, relabel, namespaces, port names, matchNames, drift);
the operator in the cluster from deploy/operator as its service account (RBAC enforced);
leader election on real Leases; faults; credentials (client certificates, exec plugins,
auth-provider); garbage collection; the whole seed path again under ASan+UBSan, and under
valgrind."""
import base64
import calendar
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import kenv
from harness import OUT, ROOT, fnv_shard, go_pprof, go_top_args, parse_go_top, run, wait_for
from kenv import CM_PATH, CRD_GROUP, NAME, NS, Env, Operator
from s3server import VGW, S3Server

EXAMPLES = os.path.join(ROOT, "examples", "manifests")
MONITOR = f"{CRD_GROUP}/namespaces/default/pprofmonitors/pprofmonitor-sample"
STACK = f"{CRD_GROUP}/namespaces/{NS}/pprofcollectorstacks/pprofmonitor-stack"
STS = f"/apis/apps/v1/namespaces/{NS}/statefulsets/{NAME}-collector"


def conds(obj):
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def proc_of(env, ns, pod, container):
    rt = env.kubelet.runtime(ns, pod)
    for c in rt.containers if rt else []:
        if c.name == container and c.proc and c.proc.poll() is None:
            return c.proc.pid
    return None


def written_by(pid):
    """The names of the files process pid holds open for writing (its active segments)."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                flags = int(next(x for x in fh if x.startswith("flags:")).split()[1], 8)
        except (OSError, StopIteration, ValueError):
            continue
        if flags & os.O_ACCMODE != os.O_RDONLY:
            out.add(os.path.basename(target))
    return out


def collector_args(env, other_than=None):
    """(pid, argv) of the stack's running collector process, or None when there is none (or it
    is still the process other_than: the pod has not rolled yet)."""
    pid = proc_of(env, NS, f"{NAME}-collector-0", "collector")
    if not pid or pid == other_than:
        return None
    try:
        return pid, [a.decode() for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]]
    except OSError:
        return None


# ---- CRDs through kubectl, against the real API server ----------------------------------------

def crds(t, env):
    d = env.dir
    # --install-crds=false: nothing is installed, the operator waits for them
    op = Operator(env, "--install-crds=false", name="no-crds")
    time.sleep(4)
    p = env.kubectl("get", "crd", "-o", "name")
    t.record("operator --install-crds=false installs no CRD and is not ready without them",
             p.returncode == 0 and "resources.cattle.io" not in p.stdout and not op.ready() and op.p.poll() is None,
             p.stdout + op.tail())
    op.stop()
    p = env.kubectl("apply", "--server-side", "-f", os.path.join(ROOT, "deploy", "crds"))
    t.record("kubectl: apply --server-side -f deploy/crds: both accepted by the real API server (structural schemas)",
             p.returncode == 0 and p.stdout.count("serverside-applied") == 2, p.stdout + p.stderr)
    est = wait_for(lambda: all(env.kubectl("get", "crd", c, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}')
                               .stdout == "True" for c in ("pprofmonitors.resources.cattle.io",
                                                           "pprofcollectorstacks.resources.cattle.io")), 30)
    t.record("CRDs: Established and NamesAccepted", bool(est), env.kubectl("get", "crd", "-o", "yaml").stdout[-2000:])
    p = env.kubectl("apply", "--server-side", "--dry-run=server", "-f", os.path.join(ROOT, "deploy", "operator"))
    t.record("kubectl: deploy/operator (namespace, RBAC, Deployment) passes the real server's validation (dry run)",
             p.returncode == 0 and p.stdout.count("serverside-applied (server dry run)") == 7, p.stdout + p.stderr)
    p = env.kubectl("apply", "--server-side", "--dry-run=server", "-f", EXAMPLES)
    t.record("kubectl: examples/manifests pass the real server's validation and a dry run stores nothing",
             p.returncode == 0 and "server dry run" in p.stdout and env.kubectl("get", "pm", "-A", "-o", "name").stdout.strip() == "",
             p.stdout + p.stderr)

    def refused(doc, *needles):
        p = env.kubectl("apply", "--server-side", "-f", "-", input=doc)
        return p.returncode != 0 and all(n in p.stderr for n in needles), p.stderr
    mon = "apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: bad, namespace: default}\n"
    ok, err = refused(mon + "spec:\n  endpoint: {scheme: ftp}\n  config: {heap: {seconds: 0}}\n",
                      "spec.endpoint.scheme", "spec.config.heap.seconds")
    t.record("CRD schema: scheme ftp and heap seconds 0 refused by the API server, both named", ok, err)
    ok, err = refused(mon + "spec:\n  bogus: 1\n", ".spec.bogus: field not declared in schema")
    t.record("CRD schema: unknown fields refused (strict field validation)", ok, err)
    ok, err = refused("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\n"
                      "metadata: {name: bad, namespace: default}\nspec:\n  storage: {diskSpace: lots}\n  collectorImage: {image: c}\n",
                      "spec.storage.diskSpace")
    t.record("CRD schema: diskSpace must be a quantity", ok, err)
    ok, err = refused(mon + "spec:\n  endpoint: {path: '/debug?x=1', interval: 100000h, timeout: 100000, targetPort: 70000}\n"
                      "  config: {profile: {seconds: 3601}}\n", "spec.endpoint.path", "spec.endpoint.interval",
                      "spec.endpoint.timeout", "spec.config.profile.seconds", "spec.endpoint.targetPort")
    t.record("CRD schema: the API server refuses what the collector would: a path with ?, 100000h, a timeout over a day, "
             "seconds over 3600, a port over 65535 (each named)", ok, err)
    ok, err = refused("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\nmetadata: {name: bad, namespace: default}\n"
                      "spec:\n  storage: {diskSpace: 1Gi, storageClassName: Fast_SSD}\n"
                      "  collectorImage: {image: Collector, tag: 'v1 beta', sha: 'latest', imagePullSecrets: [{}]}\n",
                      "spec.storage.storageClassName", "spec.collectorImage.image", "spec.collectorImage.tag",
                      "spec.collectorImage.sha", "spec.collectorImage.imagePullSecrets[0].name")
    t.record("CRD schema: the stack's bad storage class, image name, tag, digest and a pull secret without a name are refused",
             ok, err)
    # printer columns, status subresource, generation
    p = env.kubectl("apply", "-f", os.path.join(EXAMPLES, "monitor.yaml"))
    t.record("kubectl apply (client-side, as the seed) of the seed's monitor", p.returncode == 0, p.stdout + p.stderr)
    p = env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=merge", "-p", '{"status":{"targets":7}}')
    s = env.kubectl("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.metadata.name}:{.status.targets}")
    t.record("status subresource: a patch of the main resource does not write status",
             s.returncode == 0 and s.stdout.strip() == "pprofmonitor-sample:", p.stdout + p.stderr + s.stdout + s.stderr)
    gen0 = env.kubectl("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.metadata.generation}").stdout
    p = env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--subresource=status", "--type=merge", "-p",
                    '{"status":{"targets":7}}')
    s = env.kubectl("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "jsonpath={.status.targets} {.metadata.generation}")
    t.record("status subresource: patch --subresource=status writes status without a new generation",
             p.returncode == 0 and s.stdout.strip() == f"7 {gen0}", p.stderr + s.stdout)
    p = env.kubectl("get", "pm", "-n", "default")
    t.record("printer columns: kubectl get pm shows TARGETS and RECONCILED",
             re.search(r"NAME\s+TARGETS\s+RECONCILED\s+AGE", p.stdout) is not None and re.search(r"pprofmonitor-sample\s+7\s+\d+s", p.stdout),
             p.stdout + p.stderr)
    # server-side apply with two managers: a conflict unless forced; generation counts spec changes
    doc = mon.replace("name: bad", "name: pprofmonitor-sample") + "spec:\n  endpoint: {targetPort: 81}\n"
    p = env.kubectl("apply", "--server-side", "--field-manager", "someone-else", "-f", "-", input=doc)
    p2 = env.kubectl("apply", "--server-side", "--field-manager", "someone-else", "--force-conflicts", "-f", "-", input=doc)
    g = env.kubectl("get", "pm", "-n", "default", "pprofmonitor-sample", "-o", "json", "--show-managed-fields")
    got = json.loads(g.stdout) if g.returncode == 0 else {}
    managers = {m["manager"]: m["operation"] for m in got.get("metadata", {}).get("managedFields", [])}
    t.record("server-side apply: another manager conflicts with kubectl's field unless --force-conflicts, then owns it",
             p.returncode != 0 and "conflict" in p.stderr.lower() and p2.returncode == 0 and
             got.get("spec", {}).get("endpoint", {}).get("targetPort") == 81 and managers.get("someone-else") == "Apply" and
             got["metadata"]["generation"] > int(gen0), [p.stderr, p2.stderr, gen0, got.get("metadata")])
    env.kubectl("delete", "pm", "-n", "default", "pprofmonitor-sample", "bad", "--ignore-not-found")


# ---- the seed's steps, end to end with real pods ---------------------------------------------

def seed_e2e(t, env, prefix=""):
    """kubectl create ns (done by the caller), the operator out of cluster with KUBECONFIG, kubectl
    apply -f ./examples/manifests/ (client-side): the demo pods run, the collector pod runs from
    its image and scrapes them. Returns the operator (running) or None."""
    r = lambda name, ok, detail="": t.record(prefix + name, ok, detail)  # noqa: E731
    op = Operator(env, name="seed", via_env=True)
    r("operator: ready with KUBECONFIG (CRDs installed, informers synced)", bool(wait_for(op.ready, 60)), op.tail())
    p = env.kubectl("apply", "-f", EXAMPLES)
    r("kubectl apply -f ./examples/manifests/ (client-side, the seed's command)", p.returncode == 0 and p.stdout.count("created") >= 4,
      p.stdout + p.stderr)
    demo = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(env.ready_pods("default", "app=pprof")), 90)
    r("the demo Deployment's 2 pods run (scheduled, started from the demo-target image, readiness probe passed)",
      bool(demo) and all(ip and ip.startswith(str(env.net.net).rsplit(".", 2)[0]) for ip in demo.values()),
      [env.kubectl("get", "pods", "-A", "-o", "wide").stdout, env.logs[-5:]])
    want = {name: f"http://{ip}:6060" for name, ip in (demo or {}).items()}
    got = wait_for(lambda: (lambda x: x if x == want else None)(env.targets()), 30)
    sl = env.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dpprof-demo")
    managed = {s["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by") for s in (sl or {}).get("items", [])}
    r("one target per ready pod, named after the pod, at the pod's address and container port (from the real "
      "EndpointSlice controller's slices)", bool(got) and managed == {"endpointslice-controller.k8s.io"},
      [want, env.targets(), managed])
    y = env.config_yaml() or ""
    cfg = os.path.join(env.dir, "config.yaml")
    open(cfg, "w").write(y)
    p = run([os.path.join(ROOT, "bin", "collector"), "--check-config", cfg])
    r("the collector accepts the generated config (--check-config)", p.returncode == 0 and '__k8s_name: "pprof-demo"' in y and
      'node: "node-1"' in y, p.stdout + p.stderr + y[:1500])
    # the collector pod: from the StatefulSet controller, run from its image as the API stored it
    pod = wait_for(lambda: (lambda x: x if x else None)(env.ready_pods(NS, "app.kubernetes.io/name=pprof-collector")), 90)
    r("the collector pod runs from its image and passes its readiness probe (/readyz)", bool(pod),
      [env.kubectl("get", "pods", "-n", NS, "-o", "yaml").stdout[-3000:], env.logs[-5:]])
    stored = env.get(f"/api/v1/namespaces/{NS}/pods/{NAME}-collector-0") or {}
    spec = (stored.get("spec") or {})
    c = (spec.get("containers") or [{}])[0]
    pid = proc_of(env, NS, f"{NAME}-collector-0", "collector")
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1] if pid else []
    status = open(f"/proc/{pid}/status").read() if pid else ""
    mounts = open(f"/proc/{pid}/mountinfo").read() if pid else ""
    root_ro = any(line.split()[4] == "/" and " ro," in f" {line.split()[5]}," for line in mounts.splitlines())
    r("the collector process runs the args the API server stored, as uid/gid 65532 with fsGroup, read-only root, "
      "no service-account token", bool(pid) and [a.decode() for a in cmdline] == ["/usr/local/bin/collector"] + c.get("args", []) and
      re.search(r"^Uid:\s+65532\s", status, re.M) and re.search(r"^Groups:.*\b65532\b", status, re.M) and root_ro and
      spec.get("automountServiceAccountToken") is False and "serviceaccount" not in mounts,
      [cmdline, c.get("args"), status[:600], mounts[-1500:]])
    # docs/operations.md, tiered retention: without spec.storage.retention the collector gets the
    # default split of its budget (85% of the example's diskSpace of 5Gi): raw 55%, rollups 30%
    budget = (5 << 30) // 100 * 85
    tier_args = [f"--retention-size={budget}B", "--retention-raw=86400s", f"--retention-raw-size={budget // 100 * 55}B",
                 "--retention-rollup=2592000s", f"--retention-rollup-size={budget // 100 * 30}B"]
    args = [a.decode() for a in cmdline]
    r("the collector process runs with the stack's tiered retention flags (default: a split of diskSpace)",
      bool(pid) and all(a in args for a in tier_args), [args, tier_args])
    sts = env.get(STS) or {}
    tpl = sts.get("spec", {}).get("template", {}).get("spec", {})
    csc = (tpl.get("containers") or [{}])[0].get("securityContext", {})
    r("StatefulSet hardening as stored: runAsNonRoot, seccomp RuntimeDefault, no privilege escalation, caps dropped, "
      "read-only root (and admitted under PodSecurity restricted)",
      tpl.get("securityContext", {}).get("runAsNonRoot") is True and
      tpl.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault" and
      csc.get("allowPrivilegeEscalation") is False and csc.get("capabilities", {}).get("drop") == ["ALL"] and
      csc.get("readOnlyRootFilesystem") is True and
      env.get(f"/api/v1/namespaces/{NS}")["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted",
      json.dumps(tpl)[:2000])

    tg = wait_for(lambda: set(want) <= collector_target_names(env, with_profiles=True), 60, 1)
    r("the collector pod scrapes both demo pods over the pod network (health up, scrapes counted)", bool(tg),
      [env.collector("/api/v1/targets")[1][:2000], open(env.kubelet.log_path(NS, f"{NAME}-collector-0", "collector"),
                                                        errors="replace").read()[-2000:]])
    name = sorted(want)[0] if want else ""
    # `pod` is the label the operator writes for a target (`monitor` is the PprofMonitor's name)
    got = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(env.collector(f"/api/v1/profile?type=heap&pod={name}")), 60, 1)
    st, prof = got or env.collector(f"/api/v1/profile?type=heap&pod={name}")
    pf = os.path.join(env.dir, "heap.pb.gz")
    open(pf, "wb").write(prof)
    g = run(["go", "tool", "pprof", "-raw", pf]) if st == 200 else None
    r("a pod's heap profile, scraped in the cluster, opens in go tool pprof", st == 200 and g and g.returncode == 0 and
      "Samples:" in g.stdout and "main.allocator" in g.stdout,
      [st, g.stderr if g else ""])
    stack = wait_for(lambda: (lambda s: s if conds(s).get("Ready", {}).get("status") == "True" and
                              s["status"].get("readyReplicas") == 1 and
                              s["status"].get("observedGeneration") == s["metadata"]["generation"] else None)(env.get(STACK)), 60)
    r("stack status: Reconciled and Ready once the StatefulSet controller counts the ready pod, observedGeneration",
      bool(stack) and conds(stack).get("Reconciled", {}).get("status") == "True", env.get(STACK))
    m = wait_for(lambda: (lambda s: s if s.get("targets") == 2 else None)((env.get(MONITOR) or {}).get("status") or {}), 30)
    r("monitor status: 2 targets, Reconciled=True with observedGeneration",
      bool(m) and conds({"status": m}).get("Reconciled", {}).get("status") == "True" and
      m.get("observedGeneration") == env.get(MONITOR)["metadata"]["generation"], m)
    return op


def changes(t, env, op):
    """What happens to pods and services in a cluster reaches the config and the collector."""
    def demo():
        return env.ready_pods("default", "app=pprof")

    def config_follows(timeout=45):
        """The demo Deployment's ready pods are exactly the config's pprof-demo targets."""
        def same():
            d, tg = demo(), env.targets()
            mine = {n: e for n, e in tg.items() if n.startswith("pprof-demo-")}
            return d if d and mine == {n: f"http://{ip}:6060" for n, ip in d.items()} else None
        return wait_for(same, timeout)
    r0 = scrape_reloads(env)
    p = env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
    d3 = wait_for(lambda: (lambda d: d if len(d) == 3 else None)(demo()), 60)
    ok = config_follows()
    coll = wait_for(lambda: (lambda tg: tg if set(d3 or {}) <= tg else None)(collector_target_names(env)), 45, 1)
    r1 = scrape_reloads(env)
    t.record("scale the Deployment to 3: the config has 3 targets and the collector picks up the new file by itself "
             "(ConfigMap volume updated by ..data swap; no /reload request)", p.returncode == 0 and bool(ok) and bool(coll) and
             r0 and r1 and r1[0] > r0[0] and r1[1] == r0[1], [p.stderr, d3, env.targets(), collector_target_names(env), r0, r1])
    # unready: a stopped process fails its readiness probe; the EndpointSlice controller marks it
    victim = sorted(d3 or demo())[0]
    pid = proc_of(env, "default", victim, "demo")
    os.kill(pid, signal.SIGSTOP)
    try:
        gone = wait_for(lambda: victim not in env.targets() and len(env.targets()) == 2, 60)
        sl = env.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dpprof-demo")
        unready = [e for s in sl.get("items", []) for e in s.get("endpoints") or []
                   if (e.get("targetRef") or {}).get("name") == victim and e["conditions"].get("ready") is False]
    finally:
        os.kill(pid, signal.SIGCONT)
    back = wait_for(lambda: victim in env.targets(), 60)
    t.record("a pod failing its readiness probe (SIGSTOP) is marked not ready in its EndpointSlice and left out; back when it "
             "recovers", bool(gone) and len(unready) == 1 and bool(back), [victim, env.targets(), unready])
    # a deleted pod: the Deployment replaces it, with a new name and address
    p = env.kubectl("delete", "pod", "-n", "default", victim, "--wait=false")
    ok = wait_for(lambda: victim not in env.targets() and len(demo()) == 3 and config_follows(1), 90)
    t.record("a deleted pod's target goes; its replacement (new name, new address) comes", p.returncode == 0 and bool(ok),
             [victim, env.targets(), demo()])
    # another namespace: Debian's prometheus behind a named Service port, a monitor with
    # matchExpressions in its own namespace, selecting by port name
    ns_doc = f"""apiVersion: v1
kind: Namespace
metadata: {{name: team-b}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: prometheus, namespace: team-b}}
data:
  prometheus.yml: "global: {{scrape_interval: 1m}}\\n"
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: prom, namespace: team-b}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: prom}}}}
  template:
    metadata: {{labels: {{app: prom}}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532}}
      containers:
      - name: prometheus
        image: {kenv.testimages.PROMETHEUS}
        args: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/data, --web.listen-address=:9090]
        ports: [{{name: web, containerPort: 9090}}]
        readinessProbe: {{httpGet: {{path: /-/ready, port: web}}, periodSeconds: 1}}
        volumeMounts: [{{name: config, mountPath: /etc/prometheus}}, {{name: data, mountPath: /data}}]
      volumes: [{{name: config, configMap: {{name: prometheus}}}}, {{name: data, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: team-b, labels: {{app: pprof, tier: api}}}}
spec:
  selector: {{app: prom}}
  ports: [{{name: debug, port: 8443, targetPort: web}}]
---
apiVersion: resources.cattle.io/v1alpha1
kind: PprofMonitor
metadata: {{name: api, namespace: team-b}}
spec:
  selector: {{matchExpressions: [{{key: tier, operator: In, values: [api]}}]}}
  endpoint: {{port: debug, interval: 30s}}
  config: {{heap: {{seconds: 5}}}}
"""
    p = env.apply_yaml(ns_doc)
    prom = wait_for(lambda: (lambda x: x if x else None)(env.ready_pods("team-b", "app=prom")), 90)
    pname, pip = (sorted(prom.items())[0] if prom else ("", ""))
    ok = wait_for(lambda: env.targets().get(pname) == f"http://{pip}:9090" and "interval_seconds: 30" in env.config_yaml(), 45)
    scraped = wait_for(lambda: pname in collector_target_names(env, with_profiles=True), 60, 1)
    t.record("another namespace: Debian's prometheus in a pod, found by matchExpressions and Service port name "
             "(8443 -> container 9090), scraped by the collector", p.returncode == 0 and bool(ok) and bool(scraped),
             [p.stderr, prom, env.targets(), collector_target_names(env)])
    bad_monitor(t, env, pname)
    # https and a path prefix, and namespaceSelector.matchNames from another namespace
    env.apply_yaml("""apiVersion: resources.cattle.io/v1alpha1
kind: PprofMonitor
metadata: {name: remote, namespace: default}
spec:
  selector: {matchLabels: {tier: api}}
  namespaceSelector: {matchNames: [team-b]}
  endpoint: {port: debug, scheme: https, path: /internal}
""")
    ok = wait_for(lambda: f'endpoint: "https://{pip}:9090/internal"' in env.config_yaml() and 'monitor: "remote"' in env.config_yaml(), 30)
    t.record("namespaceSelector.matchNames reaches Services in the named namespace; https and path prefix in the endpoint",
             bool(ok), env.config_yaml())
    env.kubectl("delete", "pm", "-n", "default", "remote")
    # relabel: the seed monitor's Service no longer matches
    p = env.kubectl("label", "svc", "-n", "default", "pprof-demo", "app=other", "--overwrite")
    ok = wait_for(lambda: not any(n in env.targets() for n in demo()), 30)
    t.record("relabelled Service: its targets leave the config", p.returncode == 0 and bool(ok), env.targets())
    env.kubectl("label", "svc", "-n", "default", "pprof-demo", "app=pprof", "--overwrite")
    ok = wait_for(lambda: config_follows(1) and pname in env.targets(), 30)
    if not ok:
        env.log("relabel back: " + (env.config_yaml() or ""))
    # a namespace deleted: the real namespace controller removes its pods, services and monitor
    p = env.kubectl("delete", "ns", "team-b", "--wait=false")
    ok2 = wait_for(lambda: pname not in env.targets() and env.get("/api/v1/namespaces/team-b") is None, 120, 0.5)
    t.record("relabelled back: targets return; a deleted namespace (its pods, Service and monitor) leaves the config",
             bool(ok) and p.returncode == 0 and bool(ok2), [pname, env.targets(), env.kubectl("get", "ns").stdout, env.logs[-3:]])
    # spec.storage.retention reaches the collector process (the StatefulSet rolls its pod)
    pid0 = proc_of(env, NS, f"{NAME}-collector-0", "collector")
    p = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    '{"spec":{"storage":{"retention":{"raw":"12h","rollup":"2w","rawSize":"1Gi","rollupSize":"512Mi"}}}}')
    want_args = ["--retention-raw=43200s", f"--retention-raw-size={1 << 30}B", "--retention-rollup=1209600s",
                 f"--retention-rollup-size={512 << 20}B"]

    def running():
        pa = collector_args(env, pid0)
        return pa[1] if pa and all(a in pa[1] for a in want_args) else None
    got = wait_for(running, 120, 0.5)
    t.record("spec.storage.retention {raw, rollup, rawSize, rollupSize} reaches the collector process's flags",
             p.returncode == 0 and bool(got), [p.stdout + p.stderr, got, (env.get(STS) or {}).get("spec", {}).get("template", {})
                                               .get("spec", {}).get("containers", [{}])[0].get("args")])
    # a bad one is refused by the CRD's schema, before the operator sees it
    p = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    '{"spec":{"storage":{"retention":{"raw":"soon"}}}}')
    t.record("CRD schema: spec.storage.retention.raw must be a duration", p.returncode != 0 and "retention.raw" in p.stderr,
             p.stdout + p.stderr)
    # and one the schema lets through but the operator refuses (sizes over the budget) is told in the stack's status
    p = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    '{"spec":{"storage":{"retention":{"rawSize":"5Gi"}}}}')
    bad = wait_for(lambda: (lambda c: c if c.get("status") == "False" and "85%" in c.get("message", "") else None)(
        conds(env.get(STACK)).get("Reconciled", {})), 30)
    t.record("an over-budget spec.storage.retention is refused in the stack's Reconciled condition", p.returncode == 0 and bool(bad),
             conds(env.get(STACK)))
    # back to the defaults; the next sections need the rolled pod running and ready (a status read
    # before the StatefulSet controller saw the change says "rolled out" already: wait for the
    # new process with the default flags instead, so no restart lands in a later section)
    pid1 = proc_of(env, NS, f"{NAME}-collector-0", "collector")
    env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=json", "-p",
                '[{"op":"remove","path":"/spec/storage/retention"}]')

    def back():
        pa = collector_args(env, pid1)
        sts = env.get(STS) or {}
        st = sts.get("status") or {}
        return (pa and "--retention-raw=86400s" in pa[1] and conds(env.get(STACK)).get("Reconciled", {}).get("status") == "True"
                and st.get("readyReplicas") == 1 and st.get("observedGeneration") == sts.get("metadata", {}).get("generation")
                and st.get("currentRevision") == st.get("updateRevision"))
    wait_for(back, 120, 0.5)


def bad_monitor(t, env, prom_pod):
    """One bad monitor beside good ones: its interval passes the CRD's pattern but not the
    collector's bounds; only it is left out (its status says why), the others' targets keep
    flowing and the collector accepts the config. Fixed (1h30m is 5400 s, not 0), it joins."""
    path = f"{CRD_GROUP}/namespaces/default/pprofmonitors/slow"
    demo = env.ready_pods("default", "app=pprof")

    def slow(interval):
        return env.apply_yaml("apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\n"
                              "metadata: {name: slow, namespace: default}\n"
                              f"spec: {{selector: {{matchLabels: {{app: pprof}}}}, endpoint: {{targetPort: 80, interval: {interval}}}}}\n")
    p = slow("99999h")

    def status(ns, name):
        return ((env.get(f"{CRD_GROUP}/namespaces/{ns}/pprofmonitors/{name}") or {}).get("status") or {})
    m = wait_for(lambda: (lambda s: s if conds({"status": s}).get("Reconciled", {}).get("status") == "False" else None)(status("default", "slow")), 30)
    y = env.config_yaml() or ""
    cfg = os.path.join(env.dir, "config-bad.yaml")
    open(cfg, "w").write(y)
    c = run([os.path.join(ROOT, "bin", "collector"), "--check-config", cfg])
    cond = conds({"status": m}).get("Reconciled", {})
    good, api = status("default", "pprofmonitor-sample"), status("team-b", "api")
    t.record("a monitor the collector would refuse (interval 99999h, allowed by the CRD) is left out alone; its status says "
             "why; the others' targets stay and the collector accepts the config",
             p.returncode == 0 and bool(m) and c.returncode == 0 and 'monitor: "slow"' not in y and
             cond.get("reason") == "InvalidSpec" and "spec.endpoint.interval" in cond.get("message", "") and
             "99999h" in cond.get("message", "") and cond.get("observedGeneration") == env.get(path)["metadata"]["generation"] and
             good.get("targets") == len(demo) and api.get("targets") == 1 and all(n in env.targets() for n in demo) and
             prom_pod in env.targets(), [p.stderr, m, good, api, c.stdout + c.stderr, y[:2000]])
    slow("1h30m")
    m = wait_for(lambda: (lambda s: s if s.get("targets") == len(demo) and
                          conds({"status": s}).get("Reconciled", {}).get("status") == "True" else None)(status("default", "slow")), 30)
    y = env.config_yaml() or ""
    open(cfg, "w").write(y)
    c = run([os.path.join(ROOT, "bin", "collector"), "--check-config", cfg])
    t.record("the fixed monitor (interval 1h30m) joins with interval_seconds 5400; the collector accepts it",
             bool(m) and y.count('monitor: "slow"') == len(demo) and y.count("interval_seconds: 5400\n") == len(demo) and
             c.returncode == 0, [status("default", "slow"), c.stdout + c.stderr, y[:2000]])
    env.kubectl("delete", "pm", "-n", "default", "slow")
    wait_for(lambda: 'monitor: "slow"' not in (env.config_yaml() or ""), 30)


def collector_target_names(env, with_profiles=False):
    """Monitors the collector pod reports in /api/v1/targets (with_profiles: scraped, health up)."""
    st, body = env.collector("/api/v1/targets")
    if st != 200:
        return set()
    return {x["monitor"] for x in json.loads(body).get("data", [])
            if not with_profiles or (x.get("health") == "up" and x.get("scrapesTotal", 0) > 0)}


def scrape_reloads(env):
    """(reloads attempted, failed) from the collector pod's /metrics."""
    st, body = env.collector("/metrics")
    if st != 200:
        return None
    get = lambda n: int(re.search(rb"^%s (\d+)" % n, body, re.M).group(1))  # noqa: E731
    return get(b"collector_config_reloads_total"), get(b"collector_config_reload_failures_total")


def gzipped_config(t, env, op):
    """A config over --config-gzip-above goes gzipped into binaryData (a ConfigMap holds 1 MiB;
    10,000 targets are 2.5 MB of YAML): the real API server takes it, the kubelet mounts the
    bytes, and the collector pod reloads them by itself; below the size it is plain again."""
    op.stop()
    plain = env.config_yaml()
    gz = Operator(env, "--config-gzip-above=200", name="gzip")
    try:
        cm = wait_for(lambda: (lambda c: c if c and "config.yaml" in (c.get("binaryData") or {}) else None)(env.get(CM_PATH)), 60)
        raw = base64.b64decode(cm["binaryData"]["config.yaml"]) if cm else b""
        t.record("a config over --config-gzip-above is written gzipped to binaryData, alone (no data key), the same YAML",
                 bool(cm) and raw[:2] == b"\x1f\x8b" and gzip.decompress(raw).decode() == plain and
                 "config.yaml" not in (cm.get("data") or {}), [cm and cm.get("data"), raw[:10], gz.tail()])
        # a change while gzipped: the collector pod reads the gzip bytes the kubelet mounted
        # one pod more than now (the changes section may leave 2 or 3): a real change to reload
        n0 = (env.get("/apis/apps/v1/namespaces/default/deployments/pprof-demo") or {}).get("spec", {}).get("replicas", 2)
        wait_for(lambda: len(env.ready_pods("default", "app=pprof")) == n0, 60)
        reloads = scrape_reloads(env)
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", f"--replicas={n0 + 1}")
        d3 = wait_for(lambda: (lambda d: d if len(d) == n0 + 1 else None)(env.ready_pods("default", "app=pprof")), 60)
        ok = wait_for(lambda: d3 and set(d3) <= set(env.targets()) and
                      "config.yaml" in ((env.get(CM_PATH) or {}).get("binaryData") or {}), 60)
        scraped = wait_for(lambda: d3 and set(d3) <= collector_target_names(env, with_profiles=True), 60, 1)
        after = scrape_reloads(env)
        t.record("the collector pod reloads a gzipped config by itself (the third pod is scraped; no failed reload)",
                 bool(ok) and bool(scraped) and reloads and after and after[0] > reloads[0] and after[1] == reloads[1],
                 [d3, collector_target_names(env), reloads, after])
    finally:
        gz.stop()
    op = Operator(env, name="plain")
    cm = wait_for(lambda: (lambda c: c if c and "config.yaml" in (c.get("data") or {}) and
                           "config.yaml" not in (c.get("binaryData") or {}) else None)(env.get(CM_PATH)), 60)
    t.record("below the size the config goes back to plain data (the gzipped key removed by server-side apply)",
             bool(cm) and set(env.targets()) == set(env.ready_pods("default", "app=pprof")), [env.get(CM_PATH), env.targets()])
    env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
    return op


def config_labels(env):
    """{target name: its labels} from the operator's config.yaml (parsed as YAML)."""
    import yaml
    doc = yaml.safe_load(env.config_yaml() or "") or {}
    return {m["name"]: m.get("labels") or {} for m in doc.get("monitors") or []}


def stored_version(pod):
    """A pod's version as issue 14 defines it, read from what the API server stored: the
    app.kubernetes.io/version label, else the image tag of the container exposing the port (the
    demo's only container), else its digest."""
    lab = (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/version")
    if lab:
        return lab
    image = pod["spec"]["containers"][0]["image"]
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else digest or None


def version_label(t, env, op):
    """Every target carries the workload's version: the image tag of the demo pods, then the
    app.kubernetes.io/version label once the Deployment's template has one (a rollout: new pods);
    the collector keeps it as a series label."""
    def follows(want_version):
        pods = {p["metadata"]["name"]: p for p in env.pods("default", "app=pprof")}
        ready = env.ready_pods("default", "app=pprof")
        want = {n: stored_version(pods[n]) for n in ready if n in pods}
        got = {n: l.get("version") for n, l in config_labels(env).items() if n.startswith("pprof-demo-")}
        return (want, got) if ready and got == want and set(want.values()) == {want_version} else None
    before = wait_for(lambda: follows("dev"), 45)
    t.record("the config's targets carry version = their image tag (docker.io/pprof-controller/demo-target:dev: \"dev\"), "
             "as the API server stored the pods", bool(before), [config_labels(env), env.ready_pods("default", "app=pprof")])
    p = env.kubectl("patch", "deployment", "-n", "default", "pprof-demo", "--type=merge", "-p",
                    '{"spec":{"template":{"metadata":{"labels":{"app.kubernetes.io/version":"v2.0.1"}}}}}')
    after = wait_for(lambda: follows("v2.0.1"), 120)
    t.record("a rollout with app.kubernetes.io/version=v2.0.1 in the pod template: the new pods' targets carry version "
             "v2.0.1 (the label wins over the image tag)", p.returncode == 0 and bool(after),
             [p.stderr, config_labels(env), env.ready_pods("default", "app=pprof")])
    pods = set(env.ready_pods("default", "app=pprof"))

    def series():
        st, body = env.collector("/api/v1/series?type=heap&version=v2.0.1")
        got = {s["labels"].get("pod") for s in json.loads(body)["data"]} if st == 200 else set()
        return got if pods and pods <= got else None
    got = wait_for(series, 90, 2)
    t.record("the collector pod stores the new pods' profiles with the series label version=v2.0.1 (selectable by it)",
             bool(got), [pods, env.collector("/api/v1/series?type=heap&version=v2.0.1")])


def drift(t, env, op):
    """Children deleted or edited by hand are put back; a restart over a correct cluster writes nothing."""
    svc = f"/api/v1/namespaces/{NS}/services/{NAME}-collector"
    uid0 = (env.get(svc) or {}).get("metadata", {}).get("uid")
    env.kubectl("delete", "svc", "-n", NS, f"{NAME}-collector")
    back = wait_for(lambda: (lambda s: s if s and s["metadata"]["uid"] != uid0 else None)(env.get(svc)), 30)
    t.record("a deleted collector Service is recreated", bool(back) and back["spec"]["ports"][0]["port"] == 8989, back)
    good = env.config_yaml()
    env.req("PATCH", CM_PATH, {"data": {"config.yaml": "monitors: []\n"}}, "application/merge-patch+json")
    ok = wait_for(lambda: env.config_yaml() == good, 30)
    t.record("a hand-edited config.yaml is rewritten", bool(ok), env.config_yaml()[:500])
    # a hand-made image that runs: one that never becomes ready would leave the StatefulSet stuck
    # on its broken pod even after the template is put back (Kubernetes' documented "forced
    # rollback" case: OrderedReady waits for the broken pod, which must be deleted by hand),
    # whether the broken pod gets created depends on how fast the old pod stops
    env.kubectl("patch", "statefulset", "-n", NS, f"{NAME}-collector", "--type=json", "-p",
                '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"%s"}]' % kenv.testimages.COLLECTOR_HOTFIX)
    ok = wait_for(lambda: (env.get(STS) or {})["spec"]["template"]["spec"]["containers"][0]["image"] ==
                  "docker.io/pprof-controller/collector:dev", 30)
    t.record("an edited StatefulSet image is put back", bool(ok), (env.get(STS) or {}).get("spec", {}).get("template"))
    # kill -9, change while down, restart: converges; a second restart over a correct cluster writes nothing
    op.stop(signal.SIGKILL)
    env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
    d2 = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(env.ready_pods("default", "app=pprof")), 60)
    op2 = Operator(env, name="restart")
    ok = wait_for(lambda: d2 and all(n in env.targets() for n in d2) and len([n for n in env.targets() if n in d2]) == 2 and
                  op2.idle(), 60)
    # the StatefulSet was rolled twice above (image changed and put back): wait until the roll is
    # over (one revision, its pod ready, the controller caught up), and the stack says so, so
    # nothing is left to write
    def rolled():
        st = (env.get(STS) or {})
        ss, md_ = st.get("status") or {}, st.get("metadata") or {}
        return (ss.get("observedGeneration") == md_.get("generation") and ss.get("readyReplicas") == 1 and
                ss.get("updatedReplicas") == 1 and ss.get("currentRevision") == ss.get("updateRevision"))
    wait_for(lambda: rolled() and conds(env.get(STACK)).get("Ready", {}).get("status") == "True" and op2.idle(), 120)
    t.record("after kill -9 the restarted operator catches up with a change made while it was down", bool(ok),
             [d2, env.targets(), op2.tail()])
    op2.stop()
    time.sleep(2)
    def statuses():
        out = {}
        for kind in ("pprofmonitors", "pprofcollectorstacks"):
            for o in (env.get(f"{CRD_GROUP}/{kind}") or {}).get("items", []):
                out[f"{kind}/{o['metadata']['namespace']}/{o['metadata']['name']}"] = (o["metadata"]["resourceVersion"], o.get("status"))
        return out
    before = statuses()
    op3 = Operator(env, name="idempotent")
    wait_for(op3.idle, 60)
    time.sleep(3)
    m = op3.metrics()
    after = statuses()
    changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
    t.record("a restart over a correct cluster writes nothing (no config, status or apply writes)",
             m.get("operator_config_writes_total") == 0 and m.get("operator_status_writes_total") == 0 and not changed,
             [m.get("operator_config_writes_total"), m.get("operator_status_writes_total"), changed])
    return op3


def objstore(t, env, op):
    """spec.storage.objectStore on the real control plane: the API server checks it against the
    CRD's schema, the operator turns it into the collector's flags and its credentials into env
    from a Secret (resolved by the kubelet: the operator never reads Secrets), the StatefulSet
    rolls, and the collector in its pod uploads over the pod network to versitygw on the node's
    address: the segment that was active when the old pod stopped reaches the bucket byte for
    byte, under the default prefix namespace/stack."""
    if not os.access(VGW, os.X_OK):
        t.tool("objstore: bin/versitygw is built (make test-bins)", False, VGW)
        return
    p = env.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=(
        "apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\nmetadata: {name: bad, namespace: default}\n"
        "spec:\n  storage:\n    diskSpace: 1Gi\n    objectStore: {endpoint: 'http://h/x', bucket: Bad_Bucket, region: EU, "
        "credentialsSecret: {}}\n  collectorImage: {image: c}\n"))
    t.record("CRD schema: a bad objectStore (endpoint with a path, bucket and region names, a Secret without a name) is "
             "refused by the API server, each field named",
             p.returncode != 0 and all(f in p.stderr for f in ("spec.storage.objectStore.endpoint", "spec.storage.objectStore.bucket",
                                                               "spec.storage.objectStore.region",
                                                               "spec.storage.objectStore.credentialsSecret.name")), p.stderr)
    srv = S3Server("opci", "opci-secret-key", "profiles", host=env.net.gateway)  # the node's address, as pods reach it
    try:
        env.kubectl("create", "secret", "generic", "-n", NS, "s3-creds", "--from-literal=id=opci",
                    "--from-literal=secret=opci-secret-key")
        before = collector_args(env)
        patch = {"spec": {"storage": {"objectStore": {"endpoint": srv.url, "bucket": "profiles",
                                                      "credentialsSecret": {"name": "s3-creds", "accessKeyIdKey": "id",
                                                                            "secretAccessKeyKey": "secret"}}}}}
        p = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p", json.dumps(patch))
        rolled = wait_for(lambda: (lambda a: a if a and any(x.startswith("--object-store-endpoint=") for x in a[1]) else None)(
            collector_args(env, other_than=before[0] if before else None)), 120, 1)
        pid, args = rolled if rolled else (None, [])
        try:
            environ = dict(kv.split(b"=", 1) for kv in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"=" in kv)
        except (OSError, TypeError):
            environ = {}
        want = [f"--object-store-endpoint={srv.url}", "--object-store-bucket=profiles",
                f"--object-store-prefix={NS}/pprofmonitor-stack"]
        t.record("objstore: the stack's objectStore reaches the collector as flags, and its credentials as env from the Secret "
                 "(keys named in credentialsSecret)",
                 p.returncode == 0 and all(w in args for w in want) and environ.get(b"AWS_ACCESS_KEY_ID") == b"opci" and
                 environ.get(b"AWS_SECRET_ACCESS_KEY") == b"opci-secret-key", [p.stderr, args, sorted(environ)[:40]])
        objs = wait_for(lambda: srv.objects(f"{NS}/pprofmonitor-stack") or None, 90, 1) or {}
        segdir = f"/proc/{pid}/root/var/lib/pprof-collector/segments" if pid else ""
        same = [o for o, body in objs.items() if os.path.exists(os.path.join(segdir, o)) and
                open(os.path.join(segdir, o), "rb").read() == body]
        t.record("objstore: the collector pod uploads over the pod network: the segment closed by the roll is in the bucket, "
                 "byte for byte the pod's file", bool(objs) and sorted(same) == sorted(objs),
                 [sorted(objs), same, srv.log_text()[-800:]])
        volume_lost_restored(t, env, pid, srv)
        # back as it was: no objectStore, no Secret
        env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=json", "-p",
                    '[{"op":"remove","path":"/spec/storage/objectStore"}]')
        wait_for(lambda: (lambda a: a if a and not any(x.startswith("--object-store") for x in a[1]) else None)(
            collector_args(env)), 120, 1)
        env.kubectl("delete", "secret", "-n", NS, "s3-creds")
    finally:
        srv.cleanup()


def pod_records(env, pod_ip):
    """{(labels as JSON, type, endUnixNano)} of every record the collector at pod_ip lists (cpu
    and heap), or None when it does not answer."""
    out = set()
    for typ in ("cpu", "heap"):
        try:
            with urllib.request.urlopen(f"http://{pod_ip}:8989/api/v1/profiles?type={typ}&local=1&limit=20000",
                                        timeout=10) as r:
                rows = json.load(r).get("data", [])
        except (OSError, ValueError):
            return None
        out |= {(json.dumps(x["labels"], sort_keys=True), typ, x["endUnixNano"]) for x in rows}
    return out


def volume_lost_restored(t, env, pid, srv):
    """Issue 15 §4: the collector pod's process killed outright and its volume emptied (a lost
    disk); the kubelet starts the container again on the empty volume and the collector fills it
    from the bucket before it opens its store: the history of every uploaded segment is answered
    again."""
    pod = f"{NAME}-collector-0"
    rt = env.kubelet.runtime(NS, pod)
    pvc = env.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{NAME}-collector-data") or {}
    pv = env.get(f"/api/v1/persistentvolumes/{pvc.get('spec', {}).get('volumeName')}") or {}
    path = (pv.get("spec", {}).get("hostPath") or pv.get("spec", {}).get("local") or {}).get("path")
    before = pod_records(env, rt.ip) if rt and rt.ip else None
    objs = srv.objects(f"{NS}/pprofmonitor-stack")
    wiped = False
    if pid and path and os.path.isdir(path) and before:
        os.kill(pid, signal.SIGSTOP)  # nothing written while the volume is emptied
        for name in os.listdir(path):
            p = os.path.join(path, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        wiped = not os.listdir(path)
        os.kill(pid, signal.SIGKILL)
    new = wait_for(lambda: (lambda p: p if p and p != pid else None)(proc_of(env, NS, pod, "collector")), 90, 1)
    rt = env.kubelet.runtime(NS, pod)
    after = wait_for(lambda: (lambda r: r if r else None)(pod_records(env, rt.ip) if rt and rt.ip else None), 60, 1)
    try:
        logs = open(env.kubelet.log_path(NS, pod, "collector"), errors="replace").read()
    except OSError:
        logs = ""
    said = f"{len(objs)} of {len(objs)} segments restored from the bucket" in logs
    t.record("objstore: the collector killed and its volume emptied: it starts again from the bucket's copy, and the "
             "records of the uploaded segments are answered again (a subset of those before, none invented)",
             wiped and bool(new) and bool(after) and after <= (before or set()) and len(objs) >= 1 and said,
             [path, wiped, new, len(before or ()), len(after or ()), len(objs), said, logs[-600:]])


def shard_pod(k):
    """The pod of collector shard k (shard 0 is the stack's first StatefulSet)."""
    return f"{NAME}-collector-0" if k == 0 else f"{NAME}-collector-shard-{k}-0"


def shard_targets(env, k):
    """{monitor name: endpoint} that collector shard k's pod scrapes, from its /api/v1/targets;
    None when the pod does not answer."""
    rt = env.kubelet.runtime(NS, shard_pod(k))
    if not rt or not rt.ip:
        return None
    try:
        with urllib.request.urlopen(f"http://{rt.ip}:8989/api/v1/targets?local=1", timeout=5) as r:
            return {x["monitor"]: x.get("endpoint") for x in json.load(r).get("data", [])}
    except (OSError, ValueError):
        return None


QUERY_SEL = "app.kubernetes.io/name=pprof-collector-query"


def shard_get(env, k, path):
    """(status, body, headers) of GET path from collector shard k's pod, or with k "query" from
    the query Deployment's ready pod; (None, b"", {}) when it does not answer."""
    if k == "query":
        ip = next(iter(env.ready_pods(NS, QUERY_SEL).values()), None)
    else:
        rt = env.kubelet.runtime(NS, shard_pod(k))
        ip = rt.ip if rt else None
    if not ip:
        return None, b"", {}
    try:
        with urllib.request.urlopen(f"http://{ip}:8989{path}", timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
    except OSError:
        return None, b"", {}


def shard_metrics(env, k, *names):
    """The values of the unlabelled metrics names on shard k's /metrics (one fetch), each None
    when absent (or all when the fetch fails)."""
    st, body, _ = shard_get(env, k, "/metrics")
    ms = [re.search(rb"^(?:\w+_)?" + re.escape(n.encode()) + rb" (\S+)$", body, re.M) if st == 200 else None
          for n in names]
    return [float(m.group(1)) if m else None for m in ms]


def go_flats(path, indexes):
    """[{function: flat}] per sample index, as go tool pprof -top reads path."""
    out = []
    for i in indexes:
        g = go_pprof(go_top_args(i, "bytes") + [path])
        if g.returncode:
            raise RuntimeError(f"go tool pprof {path}: {g.stderr[-800:]}")
        out.append({k: v[0] for k, v in parse_go_top(g.stdout).items() if v[0]})
    return out


def fanout_across_shards(t, env, since, n):
    """Issue 15 §3 and §4 on the control plane: with n shards the config lists every collector
    pod in query.peers, and each shard's pod answers a merge over all of them: equal to go tool
    pprof's merge of every raw record the shards stored in the window (each fetched by id=,
    local=1), the demo Deployment's pods spread over more than one shard; so does the query
    Deployment's pod (spec.query), which has no targets of its own."""
    ips = sorted(rt.ip for rt in (env.kubelet.runtime(NS, shard_pod(k)) for k in range(n)) if rt and rt.ip)
    listed = wait_for(lambda: (lambda y: y if "query:\n  peers:\n" + "".join(f'  - "http://{ip}:8989"\n' for ip in ips) in y
                               else None)(env.config_yaml() or ""), 60, 1)
    t.record(f"{n} shards: the config lists every collector pod in query.peers (http://POD_IP:8989, sorted)",
             len(ips) == n and bool(listed), [ips, (env.config_yaml() or "")[:600]])
    work = tempfile.mkdtemp(prefix="fanout-")
    try:
        q = None
        scraping = [k for k in range(n) if shard_targets(env, k)]

        def all_have():
            nonlocal q
            q = f"type=heap&from={int(since)}&to={int(time.time())}"
            rows = [json.loads(shard_get(env, k, f"/api/v1/profiles?{q}&local=1&limit=20000")[1] or b"{}").get("data") or []
                    for k in range(n)]
            return rows if all(rows[k] for k in scraping) else None
        rows = wait_for(all_have, 120, 2)
        files = []
        for k, rs in enumerate(rows or []):
            for r in rs:
                st, body, _ = shard_get(env, k, f"/api/v1/profile?id={r['id']}&local=1")
                if st == 200:
                    files.append(os.path.join(work, f"raw{k}-{r['id']}.pb.gz"))
                    open(files[-1], "wb").write(body)
        merged = os.path.join(work, "oracle.pb.gz")
        g = go_pprof(["-proto", "-output", merged] + files) if files else None
        want = go_flats(merged, (1, 3)) if g and g.returncode == 0 else None
        got, heads = [], []
        for k in list(range(n)) + ["query"]:
            st, body, hd = shard_get(env, k, f"/api/v1/profile?{q}&agg=sum")
            f = os.path.join(work, f"fan{k}.pb.gz")
            open(f, "wb").write(body)
            got.append(go_flats(f, (1, 3)) if st == 200 else st)
            heads.append(hd.get("X-Pprof-Partial"))
        st, body, _ = shard_get(env, 0, f"/api/v1/render?{q}&agg=sum")
        d = json.loads(body or b"{}").get("data", {})
        t.record(f"one query over {n} shards (the demo's pods spread over {len(scraping)} of them): each shard's pod "
                 "answers /api/v1/profile (agg=sum) equal to go tool pprof's merge of every raw record of every shard, "
                 "not partial; render counts every shard's records",
                 bool(rows) and len(scraping) >= 2 and want is not None and got[:n] == [want] * n and heads[:n] == [None] * n and
                 d.get("partial") is False and d.get("shards", {}).get("asked") == n - 1 and d.get("profiles") == len(files),
                 [scraping, len(files), [len(r) for r in rows or []], heads, d.get("profiles"), d.get("shards"),
                  str(got)[:600], str(want)[:600]])
        # the query front end: the same merge, asked of every shard, with no targets of its own
        dep = env.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}-query") or {}
        pod = dep.get("spec", {}).get("template", {}).get("spec", {})
        args = (pod.get("containers") or [{}])[0].get("args", [])
        st_r, body_r, _ = shard_get(env, "query", f"/api/v1/render?{q}&agg=sum")
        dq = json.loads(body_r or b"{}").get("data", {})
        own = json.loads(shard_get(env, "query", "/api/v1/targets?local=1")[1] or b"{}").get("data")
        every = json.loads(shard_get(env, "query", "/api/v1/targets")[1] or b"{}").get("data") or []
        svc = (env.get(f"/api/v1/namespaces/{NS}/services/{NAME}-query") or {}).get("spec", {})
        checks = {"same merge": want is not None and len(got) == n + 1 and got[n] == want, "not partial": heads[n:] == [None],
                  "--query-only": "--query-only" in args, "emptyDir": {"name": "data", "emptyDir": {}} in pod.get("volumes", []),
                  "no object store": not any(a.startswith("--object-store-") for a in args),
                  f"asked {n}": dq.get("shards", {}).get("asked") == n, "profiles": dq.get("profiles") == len(files),
                  "no targets": own == [], "every target": {x.get("monitor") for x in every} == set(env.targets()),
                  "service": svc.get("selector", {}).get("app.kubernetes.io/name") == "pprof-collector-query"}
        t.record("spec.query: the Deployment's pod (--query-only, an emptyDir, no object store) answers the same merge, "
                 f"asking the {n} shards, not partial; it scrapes nothing and lists every target; the Service <name>-query "
                 "selects it", all(checks.values()),
                 [[k for k, v in checks.items() if not v], dq.get("profiles"), len(files), len(every), len(env.targets()),
                  str(got[n:])[:300], str(want)[:300], heads[n:], args, pod.get("volumes"), svc.get("selector")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def shard_volume_lost(t, env, srv, k):
    """Issue 15 §4: shard k (not 0) deleted with its volume: its PersistentVolumeClaim deleted
    (kept by the pvc-protection finalizer while the pod runs) and then its pod; the collector
    stops as a pod does (SIGTERM: its open segments closed and uploaded), the operator creates
    the claim again (a new, empty volume) and the StatefulSet controller the pod, whose collector
    fills the volume from its own prefix in the bucket: every record the shard answered before
    is answered again."""
    pod, claim = shard_pod(k), f"{NAME}-collector-shard-{k}-data"
    pvc_path = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim}"
    old_uid = ((env.get(pvc_path) or {}).get("metadata") or {}).get("uid")
    rt = env.kubelet.runtime(NS, pod)
    before = pod_records(env, rt.ip) if rt and rt.ip else None
    pid = proc_of(env, NS, pod, "collector")
    p1 = env.kubectl("delete", "pvc", "-n", NS, claim, "--wait=false")
    p2 = env.kubectl("delete", "pod", "-n", NS, pod, "--wait=false")
    fresh = wait_for(lambda: (lambda c: c if c and c["metadata"]["uid"] != old_uid and
                              (c.get("status") or {}).get("phase") == "Bound" else None)(env.get(pvc_path)), 120, 1) or {}
    new = wait_for(lambda: (lambda p: p if p and p != pid else None)(proc_of(env, NS, pod, "collector")), 120, 1)
    rt = env.kubelet.runtime(NS, pod)
    after = wait_for(lambda: (lambda r: r if r and before and before <= r else None)(
        pod_records(env, rt.ip) if rt and rt.ip else None), 60, 1)
    objs = srv.objects(f"{NS}/pprofmonitor-stack/shard-{k}")
    try:
        logs = open(env.kubelet.log_path(NS, pod, "collector"), errors="replace").read()
    except OSError:
        logs = ""
    # (the log holds the pod's first start too, which found nothing to restore)
    said = (re.findall(r"(\d+) of \1 segments restored from the bucket", logs) or ["0"])[-1]
    t.record(f"shard {k} deleted with its volume (its PVC, then its pod): a new claim and pod, and the collector fills the "
             "empty volume from its prefix in the bucket: every record the shard answered before is answered again",
             p1.returncode == 0 and p2.returncode == 0 and bool(old_uid) and bool(fresh) and bool(new) and bool(before) and
             bool(after) and int(said) >= 1 and len(objs) >= 1,
             [p1.stderr, p2.stderr, old_uid, (fresh.get("metadata") or {}).get("uid"), pid, new, len(before or ()),
              len(after or ()), len(objs), logs[-800:]])


def host_port(url):
    return url.split("://", 1)[1].split("/", 1)[0]


def handovers(env, n, since, until):
    """{target labels: [problems]} over every CPU record shards 0..n-1 stored from since to until:
    two records of one target whose times overlap (scraped twice), or more than 25 s (2.5 of
    the demo monitor's back-to-back 10 s profiles) between one's end and the next one's start
    (a profile lost); None when a shard does not answer."""
    recs = {}
    for k in range(n):
        st, body, _ = shard_get(env, k, f"/api/v1/profiles?type=cpu&from={int(since)}&to={int(until)}&local=1&limit=20000")
        if st != 200:
            return None
        for r in json.loads(body).get("data", []):
            recs.setdefault(json.dumps(r["labels"], sort_keys=True), []).append((r["startUnixNano"], r["endUnixNano"], k))
    out = {}
    for key, rs in recs.items():
        rs.sort()
        bad = [(a, b) for a, b in zip(rs, rs[1:]) if b[0] < a[1] - 10**9 or b[0] - a[1] > 25 * 10**9]
        if rs[0][0] > (since + 25) * 10**9 or rs[-1][1] < (until - 25) * 10**9:
            bad.append(("window", rs[0], rs[-1]))
        if bad:
            out[key] = bad
    return out if recs else None


def shards(t, env):
    """spec.shards on the real control plane (issue 15 §1 and §4): a change of the count is planned
    --shard-change-delay ahead (40 s here: a new pod's volume, start and first config) and written
    into the config; shard k gets its own StatefulSet, volume, --shard and bucket prefix; at the
    planned second every collector pod switches, each target then scraped by the one shard
    FNV-1a of its host:port picks (computed again here), and the status counts them; a monitor's
    spec.shard pins its targets or gives them to every shard. 1 -> 3: one query over all three
    equals go tool pprof's merge; shard 1 or 2 deleted with its volume answers its history from
    the bucket; 3 -> 5 -> 2 with no target scraped twice or lost; the bucket unreachable across
    the 5 -> 2 change: scraping and queries go on and the uploads catch up once it is back; the
    retired shards answer their history as query-only peers for the retention policy's period,
    then their StatefulSets are scaled to 0 (the operator may not delete), their volumes stay;
    2 -> 1 with whenScaled: Stop. spec.query adds a query-only Deployment answering over all."""
    bad = {v: subprocess.run([os.path.join(ROOT, "bin", "operator"), f"--shard-change-delay={v}"], capture_output=True,
                             text=True, timeout=30) for v in ("0s", "2h", "1.5s", "soon", "")}
    t.record("operator: --shard-change-delay outside 1s..1h, not whole seconds or not a duration: a clear message, exit 2",
             all(p.returncode == 2 and "--shard-change-delay wants whole seconds from 1s to 1h" in p.stderr for p in bad.values()),
             {v: (p.returncode, p.stderr[-200:]) for v, p in bad.items()})
    op = Operator(env, "--shard-change-delay=40s", name="shards")
    wait_for(op.idle, 60)
    p = env.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=(
        "apiVersion: resources.cattle.io/v1alpha1\nkind: PprofCollectorStack\nmetadata: {name: bad, namespace: default}\n"
        "spec: {shards: 0, storage: {diskSpace: 1Gi}, collectorImage: {image: c}}\n---\n"
        "apiVersion: resources.cattle.io/v1alpha1\nkind: PprofMonitor\nmetadata: {name: bad, namespace: default}\n"
        "spec: {shard: some}\n"))
    t.record("CRD schema: spec.shards 0 and a monitor's spec.shard other than a number or \"all\" are refused by the API server",
             p.returncode != 0 and "spec.shards" in p.stderr and "spec.shard:" in p.stderr,
             p.stderr)
    if not os.access(VGW, os.X_OK):
        t.tool("shards: bin/versitygw is built (make test-bins)", False, VGW)
        op.stop()
        return
    srv = S3Server("opsh", "opsh-secret-key", "profiles", host=env.net.gateway)  # the node's address, as pods reach it
    env.kubectl("create", "secret", "generic", "-n", NS, "s3-shards", "--from-literal=id=opsh",
                "--from-literal=secret=opsh-secret-key")
    env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=6")
    wait_for(lambda: len(env.targets()) == 6, 90)
    # (the collector pod reads the new file a kubelet sync later)
    wait_for(lambda: set(shard_targets(env, 0) or {}) == set(env.targets()), 60, 1)
    sts = lambda k: f"/apis/apps/v1/namespaces/{NS}/statefulsets/{NAME}-collector-shard-{k}"  # noqa: E731
    pvc = lambda k: f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{NAME}-collector-shard-{k}-data"  # noqa: E731
    replicas = lambda k: ((env.get(sts(k)) or {}).get("spec") or {}).get("replicas")  # noqa: E731

    def stack_status():
        return (env.get(STACK) or {}).get("status") or {}

    def split_ok(n):
        """{shard: its targets} once each collector scrapes exactly its FNV share of the config's targets."""
        want = env.targets()
        got = {k: shard_targets(env, k) for k in range(n)}
        exp = {k: {m for m, ep in want.items() if fnv_shard(host_port(ep), n) == k} for k in range(n)}
        return got if want and all(got[k] is not None and set(got[k]) == exp[k] for k in range(n)) else None

    def change(n, extra=None):
        """spec.shards: n (with extra in the same patch): (kubectl's result, status.shardChange, change_at)"""
        spec = dict(extra or {}, shards=n)
        p = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                        json.dumps({"spec": spec}))
        ch = wait_for(lambda: stack_status().get("shardChange"), 30, 0.5) or {}
        at = ch.get("at", "")
        return p, ch, calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) if at else 0

    def settled(n):
        """the stack's status once it shows n shards, each ready with its target count, and Ready"""
        split = split_ok(n)
        exp = [len(split[k]) for k in range(n)] if split else None
        s = stack_status()
        return s if split and not s.get("shardChange") and s.get("shards") == n and \
            [x.get("targets") for x in s.get("shardStatuses", [])] == exp and \
            all(x.get("readyReplicas") == 1 for x in s["shardStatuses"]) and \
            conds({"status": s}).get("Ready", {}).get("status") == "True" else None

    def retired_ip(k):
        """shard k's pod IP once it runs again with --query-only and is ready"""
        pd = env.get(f"/api/v1/namespaces/{NS}/pods/{shard_pod(k)}") or {}
        args = ((pd.get("spec", {}).get("containers") or [{}])[0]).get("args", [])
        ready = {c["type"]: c["status"] for c in (pd.get("status") or {}).get("conditions") or []}.get("Ready")
        return pd["status"].get("podIP") if "--query-only" in args and ready == "True" else None

    def peers_listed(ips):
        return ("query:\n  peers:\n" + "".join(f'  - "http://{ip}:8989"\n' for ip in sorted(ips))) in (env.config_yaml() or "")
    try:
        # the bucket first (shard 0's pod rolls), then 1 -> 3
        store = {"objectStore": {"endpoint": srv.url, "bucket": "profiles",
                                 "credentialsSecret": {"name": "s3-shards", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"}}}
        env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    json.dumps({"spec": {"storage": store}}))
        wait_for(lambda: (lambda a: a if a and any(x.startswith("--object-store-endpoint=") for x in a[1]) else None)(
            collector_args(env)), 120, 1)
        wait_for(lambda: set(shard_targets(env, 0) or {}) == set(env.targets()), 60, 1)
        t0 = time.time()
        p, ch, at_s = change(3)
        y = wait_for(lambda: (lambda c: c if "sharding:" in c else None)(env.config_yaml() or ""), 30) or ""
        args = {k: ((((env.get(sts(k)) or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0])
                    .get("args", [])) for k in (1, 2)}
        t.record("1 -> 3 shards: the change is planned 40 s ahead (status.shardChange), written into the config "
                 "(sharding: shards 3, previous_shards 1, change_at), and shards 1 and 2 get their StatefulSets "
                 "(--shard=k, the bucket prefix <namespace>/<stack>/shard-k) and volumes",
                 p.returncode == 0 and ch.get("from") == 1 and ch.get("to") == 3 and 35 <= at_s - t0 <= 50 and
                 f"sharding:\n  shards: 3\n  previous_shards: 1\n  change_at: {int(at_s)}\n" in y and
                 all(f"--shard={k}" in args[k] and f"--object-store-prefix={NS}/pprofmonitor-stack/shard-{k}" in args[k] and
                     env.get(pvc(k)) is not None for k in (1, 2)),
                 [p.stderr, ch, t0, y[:300], args])
        # a query front end (spec.query): its pod starts while the change waits for change_at
        p_q = env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                          '{"spec":{"query":{"replicas":1}}}')
        # (a tuple: an empty dict is what is expected, and wait_for wants a true value)
        before = [(wait_for(lambda: (lambda x: (x,) if x is not None else None)(shard_targets(env, k)), 90, 1) or (None,))[0]
                  for k in (1, 2)]
        all0 = shard_targets(env, 0)
        early = time.time() < at_s - 1
        t.record("before change_at the new shards' pods run and scrape nothing, and shard 0 still scrapes every target",
                 before == [{}, {}] and all0 is not None and set(all0) == set(env.targets()) and early,
                 [before, all0, early, at_s - time.time()])
        wait_for(lambda: time.time() > at_s + 2, 60, 0.5)
        split = wait_for(lambda: split_ok(3), 30, 1)
        t.record("after change_at each collector pod scrapes exactly the targets FNV-1a(host:port) mod 3 gives it "
                 "(each target on one shard, none left out)", bool(split),
                 [time.time() - at_s, env.targets(), {k: shard_targets(env, k) for k in range(3)}])
        st = wait_for(lambda: settled(3), 60, 1)
        t.record("stack status after the change: shards 3, each shard's StatefulSet ready with its target count; Ready",
                 bool(st), stack_status())
        wait_for(lambda: env.ready_pods(NS, QUERY_SEL), 90, 1)
        qs = wait_for(lambda: (lambda q: q if q and q.get("readyReplicas") == 1 else None)(stack_status().get("query")), 60, 1)
        t.record("spec.query.replicas 1: status.query shows the Deployment with 1 replica ready",
                 p_q.returncode == 0 and bool(qs) and qs.get("deployment") == f"{NAME}-query" and qs.get("replicas") == 1,
                 [p_q.stderr, stack_status().get("query")])
        fanout_across_shards(t, env, t0 - 120, 3)

        # a monitor's spec.shard: every shard, then one (no planned change: at once)
        env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=merge", "-p", '{"spec":{"shard":"all"}}')
        every = wait_for(lambda: (lambda a: a if all(x and set(x) == set(env.targets()) for x in a) else None)(
            [shard_targets(env, k) for k in range(3)]), 60, 1)
        t.record("spec.shard: all in a monitor: every shard scrapes each of its targets", bool(every) and
                 env.config_yaml().count("  shard: all\n") == len(env.targets()),
                 [shard_targets(env, k) for k in range(3)])
        env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=merge", "-p", '{"spec":{"shard":4}}')
        pinned = wait_for(lambda: (lambda a: a if a[0] == {} and a[2] == {} and a[1] and set(a[1]) == set(env.targets())
                                   else None)([shard_targets(env, k) for k in range(3)]), 60, 1)
        t.record("spec.shard: 4 with 3 shards: shard 1 (4 mod 3) scrapes every target of the monitor, shards 0 and 2 none",
                 bool(pinned), [shard_targets(env, k) for k in range(3)])
        env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=json", "-p",
                    '[{"op":"remove","path":"/spec/shard"}]')
        split = wait_for(lambda: split_ok(3), 30, 1) or {}

        # shard 1 or 2 (the one with more targets) deleted with its volume
        shard_volume_lost(t, env, srv, max((1, 2), key=lambda k: len(split.get(k) or {})))
        wait_for(lambda: settled(3), 60, 1)

        # 3 -> 5
        t35 = time.time()
        p, ch, at35 = change(5)
        wait_for(lambda: time.time() > at35 + 2, 90, 0.5)
        split5 = wait_for(lambda: split_ok(5), 30, 1)
        st5 = wait_for(lambda: settled(5), 60, 1)
        t.record("3 -> 5: after change_at each of the 5 collector pods scrapes exactly its FNV-1a share, and the status "
                 "shows 5 ready shards with their target counts",
                 p.returncode == 0 and ch.get("from") == 3 and ch.get("to") == 5 and bool(split5) and bool(st5),
                 [p.stderr, ch, {k: shard_targets(env, k) for k in range(5)}, stack_status()])

        # 5 -> 2 with the bucket unreachable: shards 2, 3 and 4 retire (shardRetentionPolicy
        # Retain, the default), answering their history as query-only peers
        # (a window ending 30 s ago: a delta profile's record is stored seconds after the time it carries)
        qh = f"type=heap&from={int(t0 - 120)}&to={int(time.time()) - 30}&agg=sum"

        def render0(extra=""):
            st_r, body_r, _ = shard_get(env, 0, f"/api/v1/render?{qh}{extra}")
            return json.loads(body_r).get("data", {}) if st_r == 200 else {}
        before_r = render0()
        srv.stop()
        t_out = time.time()
        p, ch, at52 = change(2)
        kept = all(replicas(k) == 1 for k in (2, 3, 4)) and time.time() < at52
        wait_for(lambda: time.time() > at52 + 1, 90, 0.5)
        ips = {k: wait_for(lambda: retired_ip(k), 90, 1) for k in (2, 3, 4)}
        ips.update({k: getattr(env.kubelet.runtime(NS, shard_pod(k)), "ip", None) for k in (0, 1)})
        listed = wait_for(lambda: peers_listed(ips.values()) if all(ips.values()) else None, 60, 1)
        split2 = wait_for(lambda: split_ok(2), 30, 1)
        after_r = wait_for(lambda: (lambda d: d if d.get("profiles") == before_r.get("profiles") else None)(render0()), 60, 1) or {}
        retired = stack_status().get("retiredShards") or []
        t.record("5 -> 2 (shardRetentionPolicy Retain, the default): after change_at shards 0 and 1 scrape exactly their "
                 "FNV-1a share; shards 2, 3 and 4 scrape nothing and run on with --query-only (their StatefulSets at 1 "
                 "replica), stay in the peer list, and shard 0 still answers their history: the same render over the "
                 "earlier window (profiles, total, not partial); status.retiredShards says until when",
                 p.returncode == 0 and ch.get("from") == 5 and ch.get("to") == 2 and kept and bool(listed) and bool(split2) and
                 before_r.get("profiles", 0) > 0 and after_r.get("total") == before_r.get("total") and
                 after_r.get("partial") is False and all(shard_targets(env, k) == {} for k in (2, 3, 4)) and
                 all(replicas(k) == 1 and (env.get(sts(k)) or {}).get("metadata", {}).get("annotations", {})
                     .get("resources.cattle.io/retired-at") for k in (2, 3, 4)) and
                 sorted(x.get("shard") for x in retired) == [2, 3, 4] and
                 all(x.get("answering") is True and x.get("until") for x in retired),
                 [ch, kept, ips, (env.config_yaml() or "")[:400], before_r.get("profiles"), before_r.get("total"),
                  after_r.get("profiles"), after_r.get("total"), after_r.get("partial"), retired,
                  {k: shard_targets(env, k) for k in range(5)}])
        # no target scraped twice or lost across 3 -> 5 -> 2 (each target's CPU profiles back to back)
        wait_for(lambda: time.time() > at52 + 40, 60, 1)
        hand = handovers(env, 5, t35 - 20, time.time() - 15)
        t.record("3 -> 5 -> 2: over both changes each target's CPU profiles, from whichever shards stored them, follow one "
                 "another: none overlapping (scraped twice), no gap over 25 s (lost)", hand == {}, hand)
        # the bucket still away: scraping and local queries go on, the failures are counted
        newest = {k: max((r["endUnixNano"] for r in json.loads(shard_get(
            env, k, f"/api/v1/profiles?type=cpu&from={int(t_out)}&local=1&limit=20000")[1] or b"{}").get("data") or []),
            default=0) for k in (0, 1)}
        # (the retired shards that scraped something: 6 targets over 5 shards may leave one empty)
        had = [k for k in (2, 3, 4) if split5 and split5[k]]

        def segment_files(k):
            """{file name: bytes} of shard k's non-empty closed segment files (its pod restarted during
            the outage, which closed those it had; a segment the compactor opened since for rollups,
            as a 10-minute window closes, is still written and is left out: the collector holds it
            open for writing)"""
            pid = proc_of(env, NS, shard_pod(k), "collector")
            d = f"/proc/{pid}/root/var/lib/pprof-collector/segments" if pid else ""
            def read(f):
                with open(os.path.join(d, f), "rb") as fh:
                    return fh.read()
            try:
                files = {f: b for f in os.listdir(d) if (b := read(f))}
            except OSError:
                return {}
            return {f: b for f, b in files.items() if f not in written_by(pid)}
        sealed = {k: segment_files(k) for k in had}
        waiting = {k: set(sealed[k]) - set(srv.objects(f"{NS}/pprofmonitor-stack/shard-{k}")) for k in had}
        upl = {k: shard_metrics(env, k, "collector_upload_failures_total", "collector_upload_queue_segments")
               for k in had}
        fails = {k: upl[k][0] for k in had}
        queued = {k: upl[k][1] for k in had}
        local = render0("&local=1")
        t.record("the bucket unreachable (its server stopped) across the change: shards 0 and 1 store profiles scraped "
                 "after it went, shard 0 answers local queries, and the retired shards (whose pods restarted meanwhile, "
                 "closing their segments) count failed uploads and segments waiting, not in the bucket",
                 all(newest[k] > (t_out + 20) * 10**9 for k in (0, 1) if split2 and split2[k]) and local.get("profiles", 0) > 0
                 and bool(had) and all((fails[k] or 0) > 0 and (queued[k] or 0) > 0 and waiting[k] for k in had),
                 [newest, t_out, local.get("profiles"), had, fails, queued, waiting, srv.url])
        srv.start()

        def not_up(k):
            """shard k's closed segments (sealed) not byte for byte in its prefix: {file: why}"""
            objs = srv.objects(f"{NS}/pprofmonitor-stack/shard-{k}")
            return {f: "absent" if f not in objs else f"{len(objs[f])} bytes there, {len(b)} here"
                    for f, b in sealed[k].items() if objs.get(f) != b}

        def caught_up():
            """every segment the retired shards closed, byte for byte in their prefixes, and nothing queued"""
            for k in had:
                if not_up(k) or shard_metrics(env, k, "collector_upload_queue_segments")[0] != 0:
                    return None
            return {k: len(sealed[k]) for k in had}
        t_back = time.time()
        caught = wait_for(caught_up, 150, 2)
        t.record("the bucket back: the retired shards' uploads catch up (every segment each had closed is byte for byte "
                 "under its prefix; nothing queued)", bool(caught) and all(sealed[k] for k in had),
                 [caught, {k: sorted(sealed[k]) for k in had}, {k: not_up(k) for k in had},
                  {k: shard_metrics(env, k, "collector_upload_queue_segments")[0] for k in had},
                  f"back {time.strftime('%H:%M:%S', time.gmtime(t_back))}, now {time.strftime('%H:%M:%S', time.gmtime())}",
                  srv.log_text()[-600:]])

        # their period over: at 0 replicas, they and their volumes kept
        env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    '{"spec":{"shardRetentionPolicy":{"retain":{"retentionPeriod":"1s"}}}}')
        parked = wait_for(lambda: all(replicas(k) == 0 for k in (2, 3, 4)), 60, 0.5)
        t.record("retain.retentionPeriod passed: the retired shards' StatefulSets are scaled to 0; they and their volumes "
                 "stay, and the status says they no longer answer",
                 bool(parked) and all(env.get(pvc(k)) is not None for k in (2, 3, 4)) and
                 wait_for(lambda: [x.get("answering") for x in stack_status().get("retiredShards") or []] == [False] * 3, 30, 1),
                 [[replicas(k) for k in (2, 3, 4)], stack_status().get("retiredShards")])

        # 2 -> 1 with whenScaled: Stop: shard 1 scaled to 0 at change_at, not kept answering
        p, ch, at21 = change(1, {"shardRetentionPolicy": {"whenScaled": "Stop"}})
        kept = replicas(1) == 1 and time.time() < at21
        wait_for(lambda: time.time() > at21 + 1, 90, 0.5)
        stopped = wait_for(lambda: replicas(1) == 0, 30, 0.5)
        one = wait_for(lambda: (lambda a: a if a and set(a) == set(env.targets()) else None)(shard_targets(env, 0)), 30, 1)
        st1 = wait_for(lambda: settled(1), 60, 1)
        t.record("2 -> 1 with shardRetentionPolicy.whenScaled Stop: shard 1 runs until change_at, then its StatefulSet "
                 "is scaled to 0 at once (volume kept, status: not answering); shard 0 scrapes every target",
                 p.returncode == 0 and ch.get("to") == 1 and kept and bool(stopped) and bool(one) and bool(st1) and
                 env.get(pvc(1)) is not None and
                 {x.get("shard"): x.get("answering") for x in st1.get("retiredShards") or []}.get(1) is False,
                 [ch, kept, replicas(1), shard_targets(env, 0), stack_status()])
        # one shard and the query front end: the config lists shard 0 alone, then nothing once it goes
        rt0 = env.kubelet.runtime(NS, shard_pod(0))
        solo = f'query:\n  peers:\n  - "http://{rt0.ip if rt0 else "?"}:8989"\n'
        solo_ok = wait_for(lambda: (solo + "monitors:") in (env.config_yaml() or ""), 60, 1)

        def asks_shard0():
            """the query pod's render once it reloaded that config: shard 0 asked, all answered"""
            st_q, body_q, _ = shard_get(env, "query", "/api/v1/render?type=heap")
            sh = json.loads(body_q).get("data", {}).get("shards", {}) if st_q == 200 else {}
            return sh if sh.get("asked") == 1 and sh.get("missing") == 0 else None
        solo_answer = wait_for(asks_shard0, 30, 1)
        t.record("one shard with spec.query: the config lists shard 0's pod alone, and the query pod asks it",
                 bool(solo_ok) and bool(solo_answer),
                 [(env.config_yaml() or "")[:300], shard_get(env, "query", "/api/v1/render?type=heap")[1][-300:]])
        env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=json", "-p",
                    '[{"op":"remove","path":"/spec/query"}]')
        dep_path = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}-query"
        q_parked = wait_for(lambda: ((env.get(dep_path) or {}).get("spec") or {}).get("replicas") == 0, 60, 0.5)
        t.record("spec.query removed: its Deployment is scaled to 0 (kept), and the config lists no peers",
                 bool(q_parked) and wait_for(lambda: all(env.kubelet.runtime(NS, shard_pod(k)) is None for k in range(1, 5)), 60)
                 and wait_for(lambda: "query:" not in (env.config_yaml() or "query:"), 60, 1),
                 [(env.config_yaml() or "")[:300], q_parked])
    finally:
        env.kubectl("patch", "pm", "-n", "default", "pprofmonitor-sample", "--type=json", "-p",
                    '[{"op":"remove","path":"/spec/shard"}]')
        env.kubectl("patch", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--type=merge", "-p",
                    '{"spec":{"query":null,"shardRetentionPolicy":null,"storage":{"objectStore":null}}}')
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
        wait_for(lambda: (lambda a: a if a and not any(x.startswith("--object-store") for x in a[1]) else None)(
            collector_args(env)), 120, 1)
        env.kubectl("delete", "secret", "-n", NS, "s3-shards")
        srv.cleanup()
        op.stop()


def gc(t, env, op):
    """Deleting the stack: the real garbage collector removes everything it owned."""
    p = env.kubectl("delete", "pprofcollectorstack", "-n", NS, "pprofmonitor-stack", "--wait=false")
    paths = (STS, f"/api/v1/namespaces/{NS}/services/{NAME}-collector",
             f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{NAME}-collector-data", CM_PATH)
    ok = wait_for(lambda: all(env.get(x) is None for x in paths), 90, 0.5)
    time.sleep(2)
    t.record("deleting the stack: the garbage collector removes its StatefulSet, Service, PVC and ConfigMap; the "
             "collector pod stops; nothing is recreated", p.returncode == 0 and bool(ok) and all(env.get(x) is None for x in paths) and
             wait_for(lambda: env.kubelet.runtime(NS, f"{NAME}-collector-0") is None, 60),
             [x for x in paths if env.get(x) is not None])
    rc = op.stop()
    t.record("operator: SIGTERM stops it with status 0", rc == 0, op.tail())


# ---- the operator inside the cluster, as its service account --------------------------------

def in_cluster(t, env):
    """deploy/operator applied as is: two operator pods from the operator image, as the
    ServiceAccount pprof-operator with a projected TokenRequest token, RBAC enforced by the real
    authorizer, one leader by a real Lease."""
    p = env.kubectl("apply", "--server-side", "-f", os.path.join(ROOT, "deploy", "operator"))
    t.record("kubectl apply --server-side -f deploy/operator", p.returncode == 0, p.stdout + p.stderr)
    pods = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(env.ready_pods(NS, "app.kubernetes.io/name=pprof-operator")), 90)
    t.record("the operator Deployment's 2 pods run from the operator image and pass /readyz", bool(pods),
             [env.kubectl("get", "pods", "-n", NS, "-o", "wide").stdout, env.logs[-5:]])
    lease = wait_for(lambda: (lambda l: l if l and l["spec"].get("holderIdentity") else None)(
        env.get(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{NAME}-leader")), 30)
    t.record("leader election: one pod holds the Lease (15 s), named by its pod",
             bool(lease) and lease["spec"].get("leaseDurationSeconds") == 15 and
             any(n in lease["spec"]["holderIdentity"] for n in (pods or {})), lease)
    p = env.kubectl("apply", "-f", EXAMPLES)
    d = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(env.ready_pods("default", "app=pprof")), 90)
    ok = wait_for(lambda: d and set(env.targets()) == set(d), 60)
    logs = "".join(open(env.kubelet.log_path(NS, n, "operator"), errors="replace").read() for n in (pods or {}))
    t.record("in the cluster, as its service account: CRDs, config, children and statuses written; nothing forbidden",
             p.returncode == 0 and bool(ok) and env.get(STS) is not None and "forbidden" not in logs.lower(),
             [env.targets(), logs[-2000:]])
    tok = env.cp.token(NS, "pprof-operator", 600)
    denied = []
    # pods: read for the targets' version label (list, watch), nothing more: no logs, no deletes
    pod = f"/api/v1/namespaces/default/pods/{sorted(d)[0] if d else 'none'}"
    for method, path in (("GET", "/api/v1/namespaces/default/secrets"), ("GET", pod + "/log"), ("DELETE", pod),
                         ("DELETE", STS), ("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}-query"),
                         ("DELETE", MONITOR), ("PATCH", MONITOR)):
        st, _ = env.cp.api(method, path, {} if method == "PATCH" else None, "application/merge-patch+json", token=tok)
        denied.append((method, path, st))
    st, _ = env.cp.api("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets", token=tok)
    st_pods, _ = env.cp.api("GET", "/api/v1/pods?limit=1", token=tok)
    t.record("RBAC (real authorizer): the account cannot read secrets or pod logs, delete pods, its children or monitors, or "
             "edit monitors' specs; it can list what it needs (pods too)", all(c == 403 for _, _, c in denied) and st == 200 and
             st_pods == 200, [denied, st, st_pods])
    env.kubectl("scale", "-n", NS, "deployment/pprof-operator", "--replicas=0")
    wait_for(lambda: not env.pods(NS, "app.kubernetes.io/name=pprof-operator"), 60)


def leader_election(t, env):
    a = Operator(env, "--leader-elect", name="a")
    time.sleep(1.0)
    b = Operator(env, "--leader-elect", name="b")
    try:
        ok = wait_for(lambda: a.ready() and b.ready(), 30)
        lead = wait_for(lambda: [x for x in (a, b) if x.metrics().get("operator_leader") == 1], 30)
        t.record("leader election (real Lease): two operators, exactly one leads", bool(ok) and lead and len(lead) == 1,
                 [a.metrics().get("operator_leader"), b.metrics().get("operator_leader"), a.tail(), b.tail()])
        if not lead or len(lead) != 1:
            return
        leader, other = lead[0], (b if lead[0] is a else a)
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
        ok = wait_for(lambda: len(env.targets()) == 3, 60)
        t.record("leader election: only the leader reconciles", bool(ok) and
                 other.metrics().get('operator_reconciles_total{controller="monitors"}', 0) == 0, [env.targets(), other.metrics()])
        leader.stop()
        ok = wait_for(lambda: other.metrics().get("operator_leader") == 1, 15)
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
        ok2 = wait_for(lambda: len(env.targets()) == 2, 60)
        t.record("leader election: a stopped leader releases the Lease; the other takes over at once and reconciles",
                 bool(ok) and bool(ok2), other.tail())
        c = Operator(env, "--leader-elect", name="c")
        try:
            wait_for(c.ready, 30)
            time.sleep(2.5)
            t0 = time.time()
            other.stop(signal.SIGKILL)
            ok = wait_for(lambda: c.metrics().get("operator_leader") == 1, 40, 0.2)
            took = time.time() - t0
            t.record(f"leader election: a leader killed with -9 is replaced once its lease expires ({took:.1f} s; lease 15 s)",
                     bool(ok) and 14.0 <= took <= 25.0, [took, c.tail()])
        finally:
            c.stop()
    finally:
        a.stop()
        b.stop()


# ---- faults through the proxy in front of the real API server --------------------------------

def faults(t, env):
    proxy = env.proxy
    tok = env.cp.token(NS, "pprof-operator", 3600)
    kc = env.token_kubeconfig(os.path.join(env.dir, "kubeconfig-proxy"), tok, server=proxy.url)
    op = Operator(env, name="faults", kubeconfig=kc)
    try:
        ready = wait_for(op.idle, 60)
        t.record("operator through the fault proxy as its service account: ready", bool(ready), op.tail())
        # dropped watches
        env.log(f"proxy before the drop: {len(proxy.watches)} watches, counts {proxy.counts}")
        n = proxy.drop_watches()
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
        ok = wait_for(lambda: len(env.targets()) == 3, 60)
        restarts = sum(v for k, v in op.metrics().items() if k.startswith("operator_watch_restarts_total"))
        t.record(f"{n} watches cut mid-stream: the operator watches again and applies a later change",
                 n >= 5 and bool(ok) and restarts >= n, [n, restarts, env.targets(), env.logs[-1]])
        # 500s on config writes: retried
        proxy.fail(3, 500, "PATCH", r"/configmaps/")
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
        ok = wait_for(lambda: len(env.targets()) == 2, 60)
        t.record("three injected 500s on the config write: retried until written", bool(ok) and proxy.faults[-1][0] == 0,
                 [env.targets(), op.tail()[-800:]])
        # 429 on every endpointslice request for a while: backoff, not a storm
        proxy.clear()
        proxy.reset_counts()
        proxy.fail(1000, 429, None, r"/endpointslices")
        proxy.drop_watches()
        time.sleep(8)
        hits = sum(v for (m, p), v in proxy.counts.items() if "endpointslices" in p)
        proxy.clear()
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
        ok = wait_for(lambda: len(env.targets()) == 3, 90)
        # client-go's backoff (0.8 s doubling, jitter) allows 2 to 4 tries in 8 s; no backoff would be dozens
        t.record(f"429 Too Many Requests for 8 s: the operator backs off ({hits} endpointslice requests) and recovers",
                 2 <= hits <= 6 and bool(ok), [hits, op.tail()[-800:]])
        # 410 Gone from etcd: the watch is held off, the data changes, etcd compacts
        gone_key = 'operator_watch_errors_total{resource="endpointslices",reason="gone"}'
        before = op.metrics().get(gone_key, 0)
        proxy.fail(100000, 500, "GET", r"/endpointslices\?.*watch=")
        proxy.drop_watches()
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
        wait_for(lambda: len(env.ready_pods("default", "app=pprof")) == 2, 60)
        time.sleep(1)
        rev = env.cp.etcd_compact()
        proxy.clear()
        ok = wait_for(lambda: op.metrics().get(gone_key, 0) > before, 60)
        ok2 = wait_for(lambda: len(env.targets()) == 2, 60)
        t.record(f"a watch from before an etcd compaction (revision {rev}) gets a real 410 Gone: the operator lists again and "
                 "converges", bool(ok) and bool(ok2), [before, op.metrics().get(gone_key),
                                                       env.targets(), op.tail()[-1000:]])
    finally:
        proxy.clear()
        op.stop()


LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{NAME}-leader"
RETRY_S = 2.0  # the operator's leader-election retry period (docs/operator.md)


def rfc3339(ts):
    """A Lease time (RFC 3339 with microseconds) as seconds since the epoch."""
    import datetime
    return datetime.datetime.strptime(ts.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class LeaseWatcher:
    """Samples the Lease every 50 ms in a thread: each renewTime the holder writes, and whether
    the operator stayed the leader (its metric) the whole time."""

    def __init__(self, env, op):
        import threading
        self.env, self.op, self.renewals, self.not_leader, self.stopped = env, op, [], 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopped:
            lease = self.env.get(LEASE_PATH) or {}
            rt = (lease.get("spec") or {}).get("renewTime")
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


def proxied_operator(env, name, *extra):
    tok = env.cp.token(NS, "pprof-operator", 3600)
    kc = env.token_kubeconfig(os.path.join(env.dir, f"kubeconfig-proxy-{name}"), tok, server=env.proxy.url)
    return Operator(env, *extra, name=name, kubeconfig=kc)


def slow_api_server(t, env):
    """A slow API server (the proxy holds answers): a relist and a config write each in flight
    for 12 s, longer than the 10 s renew deadline, while the leader's loop goes on, so its
    Lease is renewed every retry period; three failed lease requests are logged once (and the
    recovery once); --log-level=error silences info lines."""
    proxy = env.proxy
    op = proxied_operator(env, "slow", "--leader-elect")
    try:
        ok = wait_for(lambda: op.idle() and op.metrics().get("operator_leader") == 1, 60)
        t.record("slow API: the operator leads through the proxy and has converged", bool(ok), op.tail())
        n0 = len(env.targets())
        watcher = LeaseWatcher(env, op)
        # a relist of EndpointSlices that takes 12 s (a watch refused with 410 forces it)
        proxy.delay(12, "GET", r"/endpointslices\?limit", count=1, watch=False)
        proxy.fail(1, 410, "GET", r"/endpointslices\?", watch=True)
        t0 = time.time()
        proxy.drop_watches()
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", f"--replicas={n0 + 1}")
        listed = wait_for(lambda: len(env.targets()) == n0 + 1, 60)
        took_list = time.time() - t0
        # then a config write that takes 12 s
        proxy.delay(12, "PATCH", r"/configmaps/pprof-operator-config\?fieldManager=pprof-operator-config", count=1)
        t1 = time.time()
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", f"--replicas={n0}")
        written = wait_for(lambda: len(env.targets()) == n0, 60)
        took_write = time.time() - t1
        gap, n = watcher.stop()
        text = op.text()
        t.record(f"slow API: a 12 s relist ({took_list:.1f} s to land) and a 12 s config write ({took_write:.1f} s) in flight, the "
                 f"Lease is renewed every retry period (largest gap {gap if gap is None else round(gap, 3)} s over {n} renewals)",
                 bool(listed) and bool(written) and took_list >= 12 and took_write >= 12 and gap is not None and
                 gap <= RETRY_S + 0.5 and n >= (took_list + took_write) / RETRY_S - 2 and watcher.not_leader == 0 and
                 "leader election lost" not in text,
                 [took_list, took_write, gap, n, watcher.not_leader, watcher.renewals[-20:], op.tail()])
        before = op.metrics().get("operator_lease_failures_total", 0)
        proxy.fail(3, 500, "GET", r"/leases/pprof-operator-leader")
        failed = wait_for(lambda: op.metrics().get("operator_lease_failures_total", 0) - before >= 3, 30)
        wait_for(lambda: "lease requests work again" in op.text(), 15)
        text = op.text()
        lines = [ln for ln in text.splitlines() if "lease request failed" in ln]
        t.record("slow API: three failed lease requests are logged once (and the recovery once); still the leader",
                 bool(failed) and len(lines) == 1 and "level=warn" in lines[0] and "500" in lines[0] and
                 text.count("lease requests work again") == 1 and op.metrics().get("operator_leader") == 1, [lines, op.tail()])
        proxy.clear()
        q = Operator(env, "--leader-elect", "--log-level=error", name="quiet")
        try:
            ready = wait_for(q.ready, 30)
            q.stop()
            quiet = q.text()
        finally:
            q.stop()
        t.record("operator: --log-level=error silences info and warn lines (the default level prints them)",
                 bool(ready) and "level=info" not in quiet and "level=warn" not in quiet and "level=info" in op.text(), quiet[-2000:])
    finally:
        proxy.clear()
        op.stop()


def bad_watch_events(t, env):
    """A watch that ends on an event it cannot read (not JSON; over 16 MiB) is an error: logged
    once, counted, followed by the backoff and a relist (the event is lost), not re-watched at
    once as if the server had closed it."""
    proxy = env.proxy
    op = proxied_operator(env, "badevents")
    try:
        ok = wait_for(op.idle, 60)
        n0 = len(env.targets())
        for case, fault, says, want in (("not JSON", {"line": "this is not json"}, "not {type, object}", n0 + 1),
                                        ("over 16 MiB", {"pad_bytes": 17 << 20}, "over 16777216 bytes", n0)):
            before = op.metrics()
            proxy.inject(r"/endpointslices\?.*watch=1", count=1, **fault)
            t0 = time.time()
            env.kubectl("scale", "-n", "default", "deployment/pprof-demo", f"--replicas={want}")
            landed = wait_for(lambda: len(env.targets()) == want, 60, 0.05)
            took = time.time() - t0
            after = op.metrics()
            key = 'operator_watch_errors_total{resource="endpointslices",reason="bad_event"}'
            errors = after.get(key, 0) - before.get(key, 0)
            rkey = 'operator_relists_total{resource="endpointslices"}'
            relists = after.get(rkey, 0) - before.get(rkey, 0)
            lines = [ln for ln in op.text().splitlines() if says in ln]
            t.record(f"operator: a watch event {case} is an error: logged once, counted, backoff, relist, and the change "
                     "it carried lands", bool(ok) and bool(landed) and errors == 1 and relists == 1 and len(lines) == 1 and
                     "endpointslices" in lines[0] and "level=warn" in lines[0], [errors, relists, took, lines, op.tail()])
    finally:
        proxy.clear()
        op.stop()


# ---- credentials ------------------------------------------------------------------------------

def credentials(t, env):
    d = env.dir
    base = env.cp.kubeconfig
    files = os.path.join(d, "kubeconfig-cert-files")
    cert, key = env.cp.admin_cert
    env.cp.write_kubeconfig(files, {"client-certificate": cert, "client-key": key}, ca_file=env.cp.ca_path)
    for what, path in (("as data", base), ("as files (CA too)", files)):
        p = env.kubectl("get", "ns", "default", "-o", "name", kubeconfig=path)
        op = Operator(env, "--install-crds=false", name="cert", kubeconfig=path)
        ok = wait_for(op.ready, 30)
        op.stop()
        t.record(f"client certificate and key {what}: kubectl and the operator authenticate", p.returncode == 0 and bool(ok),
                 p.stderr + op.tail())
    # exec plugin: prints a token from a file the test controls; run once, re-run after a 401
    plugin = os.path.join(d, "cred-plugin.sh")
    runs = os.path.join(d, "plugin-runs")
    tokfile = os.path.join(d, "plugin-token")
    open(plugin, "w").write('#!/bin/sh\necho "$KUBERNETES_EXEC_INFO" >> "$RUNS_FILE"\n'
                            '[ -n "$FAIL" ] && { echo "no credentials for you" >&2; exit 1; }\n'
                            '# SLOW: runs after the first take that many seconds; EXP_IN: the token lives that long\n'
                            '[ -n "$SLOW" ] && [ "$(wc -l < "$RUNS_FILE")" -gt 1 ] && sleep "$SLOW"\n'
                            'exp=2099-01-01T00:00:00Z\n[ -n "$EXP_IN" ] && exp=$(date -u -d "+$EXP_IN seconds" +%Y-%m-%dT%H:%M:%SZ)\n'
                            'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
                            '"status":{"token":"%s","expirationTimestamp":"%s"}}\' "$(cat "$TOKEN_FILE")" "$exp"\n')
    os.chmod(plugin, 0o755)

    def bound_token(secret):
        env.req("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": secret}, "type": "Opaque"})
        sec = env.get(f"/api/v1/namespaces/{NS}/secrets/{secret}")
        st, obj = env.req("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/pprof-operator/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": 3600, "boundObjectRef": {"apiVersion": "v1", "kind": "Secret",
                                                                                  "name": secret, "uid": sec["metadata"]["uid"]}}})
        return obj["status"]["token"]
    open(tokfile, "w").write(bound_token("cred-1"))

    def exec_kc(name, fail=False, slow=None, exp_in=None, runs_file=None):
        path = os.path.join(d, f"kubeconfig-exec-{name}")
        envs = [{"name": "RUNS_FILE", "value": runs_file or runs}, {"name": "TOKEN_FILE", "value": tokfile}]
        if fail:
            envs.append({"name": "FAIL", "value": "1"})
        if slow:
            envs += [{"name": "SLOW", "value": str(slow)}, {"name": "EXP_IN", "value": str(exp_in)}]
        env.cp.write_kubeconfig(path, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": plugin,
                                                "args": ["--cluster", "test"], "interactiveMode": "Never", "env": envs}})
        return path
    kc = exec_kc("ok")
    p = env.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kc)
    t.tool("kubectl accepts the exec-plugin kubeconfig (the fixture is real) and is the service account",
             p.returncode == 0 and p.stdout == f"system:serviceaccount:{NS}:pprof-operator", p.stdout + p.stderr)
    os.unlink(runs)
    op = Operator(env, "--install-crds=false", name="exec", kubeconfig=kc)
    try:
        ok = wait_for(op.idle, 30)
        lines = open(runs).read().splitlines() if os.path.exists(runs) else []
        t.record("operator: exec credential plugin run once, with KUBERNETES_EXEC_INFO; the token is kept",
                 bool(ok) and len(lines) == 1 and '"kind":"ExecCredential"' in lines[0], [lines, op.tail()])
        # the token dies with its Secret; the plugin now hands out a new one
        open(tokfile, "w").write(bound_token("cred-2"))
        env.kubectl("delete", "secret", "-n", NS, "cred-1")
        time.sleep(12)  # the API server caches a token it accepted for 10 s
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
        ok = wait_for(lambda: len(env.targets()) == 3 and len(open(runs).read().splitlines()) == 2, 90)
        t.record("operator: after a 401 (the token's Secret deleted) the exec plugin is asked again and work goes on",
                 bool(ok), [open(runs).read().splitlines(), env.targets(), op.tail()[-1500:]])
    finally:
        op.stop()
    # renewed in the background: a token that lives 24 s is renewed from a quarter of its life on;
    # each renewal takes the plugin 6 s, while the operator leads and renews its Lease
    slow_runs = os.path.join(d, "plugin-runs-slow")
    op = Operator(env, "--install-crds=false", "--leader-elect", name="exec-slow",
                  kubeconfig=exec_kc("slow", slow=6, exp_in=24, runs_file=slow_runs))
    try:
        ok = wait_for(lambda: op.ready() and op.metrics().get("operator_leader") == 1, 60)
        watcher = LeaseWatcher(env, op)
        time.sleep(22)
        gap, n = watcher.stop()
        lines = open(slow_runs).read().splitlines() if os.path.exists(slow_runs) else []
        t.record(f"operator: a 6 s exec plugin renews the token in the background ({len(lines)} runs); the Lease keeps its "
                 f"rhythm (largest gap {gap if gap is None else round(gap, 3)} s over {n} renewals)",
                 bool(ok) and len(lines) >= 2 and gap is not None and gap <= RETRY_S + 0.5 and watcher.not_leader == 0 and
                 "no credentials" not in op.text() and "leader election lost" not in op.text(),
                 [len(lines), gap, n, watcher.not_leader, watcher.renewals[-15:], op.tail()])
    finally:
        op.stop()
    op = Operator(env, name="exec-fail", kubeconfig=exec_kc("fail", fail=True))
    try:
        rc = op.p.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    t.record("operator: a failing exec plugin stops start-up with exit 1 and names the plugin",
             rc == 1 and "cred-plugin.sh" in op.text() and "no credentials for you" in op.text(), op.tail())
    op.stop()
    ap = os.path.join(d, "kubeconfig-auth-provider")
    env.cp.write_kubeconfig(ap, {"auth-provider": {"name": "gcp", "config": {"access-token": "x"}}})
    op = Operator(env, name="auth-provider", kubeconfig=ap)
    try:
        rc = op.p.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    t.record("operator: an auth-provider kubeconfig (removed from Kubernetes) is refused at start with a message",
             rc == 1 and "auth-provider" in op.text(), op.tail())
    op.stop()


# ---- sanitizers -------------------------------------------------------------------------------

def sanitizer_reports(d, prefix):
    found, scanned = [], 0
    for f in os.listdir(d):
        if f.startswith(prefix) and f.endswith(".log"):
            scanned += 1
            text = open(os.path.join(d, f), errors="replace").read()
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                found.append(f + ":\n" + text[-2500:])
    return found, scanned


class Prefixed:
    def __init__(self, t, prefix):
        self.t, self.prefix = t, prefix

    def record(self, name, ok, detail=""):
        self.t.record(self.prefix + name, ok, detail)

    def tool(self, name, ok, detail=""):
        self.t.tool(self.prefix + name, ok, detail)


def reset(env):
    """Back to the state before the seed's steps: examples, stack children and demo pods gone."""
    env.kubectl("delete", "-f", EXAMPLES, "--ignore-not-found", "--wait=true", timeout=180)
    wait_for(lambda: not env.pods("default", "app=pprof") and env.get(STS) is None and
             env.kubelet.runtime(NS, f"{NAME}-collector-0") is None, 120, 0.5)
    env.req("DELETE", CM_PATH)


def under_asan(t, env):
    if not os.access(kenv.OPERATOR_ASAN, os.X_OK):
        t.record("operator[asan]: binary built", False, kenv.OPERATOR_ASAN)
        return
    reset(env)
    Operator.binary = kenv.OPERATOR_ASAN
    os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    os.environ["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    inner = Prefixed(t, "[asan] ")
    try:
        op = seed_e2e(inner, env)
        rc = op.stop()
        slow_api_server(inner, env)  # jobs, lease attempts and lists cancelled at shutdown
        bad_watch_events(inner, env)
    finally:
        Operator.binary = kenv.OPERATOR
    reports, scanned = sanitizer_reports(env.dir, "operator-asan-")
    t.record(f"[asan] operator: SIGTERM exits 0; no AddressSanitizer, LeakSanitizer or UBSan report in the {scanned} logs",
             rc == 0 and scanned >= 4 and not reports, "\n".join(reports) or f"{scanned} logs, rc={rc}")


def under_valgrind(t, env):
    if not shutil.which("valgrind"):
        t.record("operator[valgrind]: valgrind installed", False, "missing")
        return
    vlog = os.path.join(env.dir, "valgrind.log")
    Operator.wrapper = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                        "-q", f"--log-file={vlog}"]
    try:
        op = Operator(env, name="valgrind")
    finally:
        Operator.wrapper = []
    try:
        ok = wait_for(op.idle, 120)
        n = env.proxy.drop_watches()  # nothing goes through the proxy here; the operator's own restarts come from scaling
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=3")
        ok = ok and wait_for(lambda: len(env.targets()) == 3, 90)
        env.kubectl("scale", "-n", "default", "deployment/pprof-demo", "--replicas=2")
        ok = ok and wait_for(lambda: len(env.targets()) == 2, 90)
        rc = op.stop()
        text = open(vlog).read()
        t.record("operator[valgrind]: start, reconcile, scale up and down, stop: exit 0, no errors or leaks",
                 bool(ok) and rc == 0 and text.strip() == "", f"rc={rc} n={n}\n{text[-3000:]}\n{op.tail()}")
    finally:
        op.stop()


def make_cluster(t):
    """`make cluster` as the README shows it (scripts/cluster.py; the Makefile only builds
    first): within a minute of the control plane being up, the UI port answers with profiles of
    services in all three namespaces; SIGINT (Ctrl-C) removes every process, namespace and file."""
    from harness import free_port
    port = free_port()
    log = os.path.join(OUT, "make-cluster.log")
    p = subprocess.Popen(["python3", os.path.join(ROOT, "scripts", "cluster.py")], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         env=dict(os.environ, CLUSTER_PORT=str(port), CLUSTER_SCALE_SECONDS="15"))
    try:
        up = wait_for(lambda: "applied examples/manifests" in open(log).read(), 180, 1)
        t0 = time.time()

        def services():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/series?type=cpu", timeout=5) as r:
                got = {(s["labels"].get("__k8s_namespace"), s["labels"].get("__k8s_name")) for s in json.load(r)["data"]}
            return got if {("default", "pprof-demo"), ("shop", "cart"), ("shop", "checkout"), ("search", "prometheus")} <= got else None
        got = wait_for(services, 90, 2)
        took = time.time() - t0
        text = open(log).read()
        t.record(f"make cluster: CPU profiles of pprof-demo, shop/cart, shop/checkout and search/prometheus on the UI port "
                 f"{took:.0f} s after the manifests; status printed; checkout scaled",
                 bool(up) and bool(got) and took <= 60 and "profiles flowing" in text and "pprofmonitor-sample" in text and
                 wait_for(lambda: "scaled shop/checkout to 4" in open(log).read(), 30), text[-3000:])
        work = re.search(r"logs: operator (\S+)/operator.log", text)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = None
    text = open(log).read()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    bridge = re.search(r"bridge (ppk[0-9a-f]+)br", text)
    # its control plane's processes name files in its work directory; its containers ran in
    # its namespaces (ppk*), whose absence is checked too
    pids = subprocess.run(["pgrep", "-f", work.group(1)], capture_output=True, text=True).stdout if work else "no work dir"
    t.record("make cluster: Ctrl-C stops it (exit 0) and removes its processes, network namespaces and files",
             rc == 0 and "removed everything" in text and work is not None and not os.path.exists(work.group(1)) and
             bridge is not None and bridge.group(1) not in left and pids.strip() == "" and
             subprocess.run(["ip", "link", "show", bridge.group(0).split()[1]], capture_output=True).returncode != 0,
             [rc, left, pids, text[-1500:]])


# the sections `tests/run.py operator:A,B` selects (PPROF_OPERATOR_SECTIONS=A,B), in the order they
# run; the seed's steps run always (the sections start from what they leave)
SECTIONS = ("crds", "changes", "gzip", "drift", "version", "leader", "in_cluster", "faults", "slow", "badevents", "credentials",
            "objstore", "shards", "gc", "asan", "valgrind", "cluster")


def run_suite(t):
    only = set(filter(None, os.environ.get("PPROF_OPERATOR_SECTIONS", "").split(",")))
    if only - set(SECTIONS):
        t.tool(f"operator suite: sections {sorted(only - set(SECTIONS))} exist", False, f"sections: {', '.join(SECTIONS)}")
        return
    d = tempfile.mkdtemp(prefix="operator-suite-", dir=OUT if os.path.isdir(OUT) else None)
    try:
        env = Env(d)
    except Exception as e:  # noqa: BLE001
        t.tool("operator suite: the control plane, pod network and node start", False, repr(e))
        return
    try:
        p = env.kubectl("version", "-o", "json")
        v = json.loads(p.stdout) if p.returncode == 0 else {}
        t.tool("cluster: kubectl and the API server are the built v1.37 (the seed's steps run against them)",
                 v.get("serverVersion", {}).get("gitVersion", "").startswith("v1.37") and
                 v.get("clientVersion", {}).get("gitVersion") == v.get("serverVersion", {}).get("gitVersion"), p.stdout + p.stderr)
        p = env.kubectl("create", "ns", NS)
        t.record("kubectl create ns pprof-controller (the seed's first step)", p.returncode == 0, p.stderr)
        env.kubectl("label", "ns", NS, "pod-security.kubernetes.io/enforce=restricted")
        def want(name):
            return not only or name in only
        if want("crds"):
            crds(t, env)
        op = seed_e2e(t, env)
        if want("changes"):
            changes(t, env, op)
        if want("gzip"):
            op = gzipped_config(t, env, op)
        if want("drift"):
            op = drift(t, env, op)
        if want("version"):
            version_label(t, env, op)
        op.stop()
        needs_sa = {"faults", "slow", "badevents", "credentials"}
        for name, fn in (("leader", leader_election), ("in_cluster", in_cluster), ("faults", faults),
                         ("slow", slow_api_server), ("badevents", bad_watch_events), ("credentials", credentials)):
            if want(name) or (name == "in_cluster" and any(want(x) for x in needs_sa)):
                fn(t, env)
        if want("objstore"):
            op = Operator(env, name="objstore")
            wait_for(op.idle, 60)
            objstore(t, env, op)
            op.stop()
        if want("shards"):
            shards(t, env)
        if want("gc"):
            op = Operator(env, name="gc")
            wait_for(op.idle, 60)
            gc(t, env, op)
        if want("asan"):
            under_asan(t, env)
        if want("valgrind"):
            under_valgrind(t, env)
    finally:
        env.stop()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        t.tool("operator suite: every pod namespace, process and file of the cluster removed",
                 env.net.prefix not in left and not os.path.exists(env.cp.dir), left)
        shutil.rmtree(d, ignore_errors=True)
    # (a set, not the variable's text: "in_cluster" holds "cluster" too)
    if not only or "cluster" in only:
        make_cluster(t)
