"""The real control plane (issue 10): what scripts/k8s-build.sh built and tests/lib/cluster.py
runs. The binaries report the version tools/k8s pins; go.mod's replaces are the ones derived
from that tag; a TokenRequest token authenticates as its ServiceAccount and RBAC holds it to what
it was granted; server-side apply of a Deployment drives the real deployment controller and the
garbage collector; an etcd compaction makes a watch from before it end in 410 Gone (and the watch
cache hides that for cached resources); stop() leaves nothing behind, also when start fails."""
import functools
import json
import os
import re
import subprocess
import time

import harness
from cluster import BIN, COMPONENTS, ControlPlane, StartError, check_replaces, go_mod_require, k8s_version

NS = "k8s-suite"
# served from etcd, not the watch cache: the 410 check needs the server to reach etcd
UNCACHED = "configmaps"


# every case here checks the test cluster (a tool), not the product
check = functools.partial(harness.check, tool=True)


def wait_for(fn, timeout, interval=0.5):
    """fn() until it returns something true or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def listening_ports():
    """Loopback/any TCP ports in LISTEN state on this machine (IPv4 and IPv6)."""
    ports = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def versions(t, cp):
    want = k8s_version()

    def kubectl_version():
        p = cp.kubectl("version", "-o", "json")
        v = json.loads(p.stdout or "{}")
        got = (v.get("clientVersion", {}).get("gitVersion"), v.get("serverVersion", {}).get("gitVersion"))
        return got == (want, want), f"want {want} for client and server, got {got}\n{p.stderr}"
    check(t, f"k8s: kubectl version reports {want} for client and server", kubectl_version)

    def component_versions():
        out = {}
        for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            p = subprocess.run([os.path.join(BIN, b), "--version"], capture_output=True, text=True, timeout=60)
            out[b] = p.stdout.strip()
        ok = all(v == f"Kubernetes {want}" for v in out.values())
        return ok, json.dumps(out, indent=1)
    check(t, f"k8s: kube-apiserver, kube-controller-manager, kube-scheduler --version say {want}", component_versions)

    etcd_want = go_mod_require("go.etcd.io/etcd/server/v3")

    def etcd_version():
        p = subprocess.run([os.path.join(BIN, "etcd"), "--version"], capture_output=True, text=True, timeout=60)
        m = re.search(r"etcd Version: (\S+)", p.stdout)
        ok = m is not None and etcd_want is not None and "v" + m.group(1) == etcd_want
        return ok, f"go.mod: {etcd_want}; etcd --version: {p.stdout.strip()}"
    check(t, f"k8s: etcd --version is go.mod's {etcd_want} (3.6+)", etcd_version)


def service_account(t, cp, d):
    sa_kc = os.path.join(d, "reader.kubeconfig")

    def whoami():
        cp.kubectl("create", "serviceaccount", "reader", "-n", NS)
        tok = cp.token(NS, "reader", 600)
        cp.kubeconfig_for_token(tok, sa_kc)
        p = cp.kubectl("auth", "whoami", "-o", "json", kubeconfig=sa_kc)
        user = json.loads(p.stdout or "{}").get("status", {}).get("userInfo", {})
        groups = user.get("groups", [])
        ok = (user.get("username") == f"system:serviceaccount:{NS}:reader" and
              f"system:serviceaccounts:{NS}" in groups)
        return ok, p.stdout + p.stderr
    check(t, "k8s: a TokenRequest token authenticates as system:serviceaccount:NS:SA (kubectl auth whoami)", whoami)

    def forged():
        # the same token with its signature changed must not authenticate; the genuine one
        # through the same path (a SelfSubjectReview) does
        tok = cp.token(NS, "reader", 600)
        head, payload, sig = tok.split(".")
        bad = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
        good_st, good = cp.api("POST", path, review, token=tok)
        bad_st, badr = cp.api("POST", path, review, token=bad)
        return good_st == 201 and bad_st == 401, f"genuine: {good_st} {good}\nforged: {bad_st} {badr}"
    check(t, "k8s: a token with a forged signature is refused (401)", forged)

    def rbac():
        # granted: get/list configmaps in NS; nothing else
        r = cp.kubectl("create", "role", "cm-reader", "-n", NS, "--verb=get,list", "--resource=configmaps")
        b = cp.kubectl("create", "rolebinding", "cm-reader", "-n", NS, "--role=cm-reader",
                       f"--serviceaccount={NS}:reader")
        if r.returncode or b.returncode:
            return False, r.stderr + b.stderr
        # the authorizer's cache of RBAC objects follows the watch: wait until the grant is seen
        allowed = wait_for(lambda: cp.kubectl("get", "configmaps", "-n", NS, kubeconfig=sa_kc).returncode == 0, 20)
        denied = {
            "secrets in NS": cp.kubectl("get", "secrets", "-n", NS, kubeconfig=sa_kc),
            "configmaps in default": cp.kubectl("get", "configmaps", "-n", "default", kubeconfig=sa_kc),
            "create configmap in NS": cp.kubectl("create", "configmap", "x", "-n", NS, kubeconfig=sa_kc),
            "list namespaces": cp.kubectl("get", "namespaces", kubeconfig=sa_kc),
        }
        bad = {k: p.returncode == 0 or "forbidden" not in p.stderr for k, p in denied.items()}
        detail = f"granted read allowed: {bool(allowed)}\n" + "\n".join(
            f"{k}: rc={p.returncode} {p.stderr.strip()[:200]}" for k, p in denied.items())
        return allowed and not any(bad.values()), detail
    check(t, "k8s: RBAC gives the ServiceAccount what a Role grants and denies the rest (403)", rbac)


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
        ports:
        - containerPort: 8080
""" % NS


def deployment(t, cp):
    state = {}

    def apply():
        p = cp.kubectl("apply", "--server-side", "--field-manager=k8s-suite", "-f", "-", input=DEPLOYMENT)
        st, dep = cp.api("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web")
        if p.returncode or st != 200:
            return False, p.stdout + p.stderr + f"\nGET: {st} {dep}"
        state["uid"] = dep["metadata"]["uid"]
        mf = [(m.get("manager"), m.get("operation")) for m in dep["metadata"].get("managedFields", [])]
        # defaulting by the real server: strategy and the container's protocol were not sent
        ok = (("k8s-suite", "Apply") in mf and dep["spec"]["strategy"]["type"] == "RollingUpdate" and
              dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP")
        return ok, f"{p.stdout}\nmanagedFields: {mf}\nspec: {json.dumps(dep['spec'])[:800]}"
    check(t, "k8s: kubectl apply --server-side of a Deployment (fields managed by Apply, defaults set)", apply)

    def owned_rs():
        st, lst = cp.api("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3Dweb")
        return [rs for rs in (lst or {}).get("items", [])
                if any(o.get("uid") == state.get("uid") and o.get("controller") for o in rs["metadata"].get("ownerReferences", []))]

    def owned_pods(rs_uid):
        st, lst = cp.api("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dweb")
        return [p for p in (lst or {}).get("items", [])
                if any(o.get("uid") == rs_uid for o in p["metadata"].get("ownerReferences", []))]

    def replicaset():
        rs = wait_for(owned_rs, 60)
        if not rs:
            return False, "no ReplicaSet owned by the Deployment within 60s\n" + cp.log_tail("kube-controller-manager")
        state["rs"] = rs[0]["metadata"]["name"]
        state["rs_uid"] = rs[0]["metadata"]["uid"]
        pods = wait_for(lambda: len(owned_pods(state["rs_uid"])) == 2 and owned_pods(state["rs_uid"]), 60)
        return rs[0]["spec"]["replicas"] == 2 and pods, f"ReplicaSet {state['rs']}, pods: {len(pods or [])}"
    check(t, "k8s: the deployment controller creates a ReplicaSet owned by it, the ReplicaSet 2 pods", replicaset)

    def gc():
        if "rs" not in state:
            return False, "no ReplicaSet to collect"
        st, r = cp.api("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/web",
                       {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        if st != 200:
            return False, f"DELETE: {st} {r}"
        # Background: the server deletes the Deployment at once; the dependents are the garbage
        # collector's job
        gone = wait_for(lambda: cp.api("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets/{state['rs']}")[0] == 404 and
                        not owned_pods(state["rs_uid"]), 60)
        return gone, "" if gone else "ReplicaSet or pods still there after 60s\n" + cp.log_tail("kube-controller-manager")
    check(t, "k8s: deleting the Deployment (propagation Background): the garbage collector removes ReplicaSet and pods", gc)


def compaction(t, cp):
    def object_rv(kind, name):
        st, obj = cp.api("GET", f"/api/v1/namespaces/{NS}/{kind}/{name}")
        return obj["metadata"]["resourceVersion"]

    def make(kind, name):
        body = {"apiVersion": "v1", "kind": "ConfigMap" if kind == "configmaps" else "Secret",
                "metadata": {"name": name, "namespace": NS}, "data": {"n": "MA=="}}
        st, obj = cp.api("POST", f"/api/v1/namespaces/{NS}/{kind}", body)
        rv0 = obj["metadata"]["resourceVersion"]
        for i in range(1, 4):
            cp.api("PATCH", f"/api/v1/namespaces/{NS}/{kind}/{name}", {"data": {"n": "MQ==" if i % 2 else "Mg=="}},
                   ctype="application/merge-patch+json")
        return rv0

    def watch(kind, name, rv):
        return cp.watch(f"/api/v1/namespaces/{NS}/{kind}?fieldSelector=metadata.name%3D{name}&resourceVersion={rv}", 2)

    def summary(events):
        return [(e["type"], e["object"].get("code") if e["type"] == "ERROR" else e["object"]["metadata"]["resourceVersion"])
                for e in events]

    rv = {"configmaps": make("configmaps", "w"), "secrets": make("secrets", "w")}
    before = {k: watch(k, "w", v) for k, v in rv.items()}
    compacted = cp.etcd_compact()
    after = {k: watch(k, "w", v) for k, v in rv.items()}

    def uncached():
        b, a = summary(before[UNCACHED]), summary(after[UNCACHED])
        ok = (b == [("MODIFIED", x) for _, x in b] and len(b) == 3 and compacted > int(rv[UNCACHED]) and
              len(a) == 1 and a[0] == ("ERROR", 410) and after[UNCACHED][0]["object"].get("reason") == "Expired")
        return ok, (f"watch from {rv[UNCACHED]} before compaction: {b}\ncompacted at {compacted}\n"
                    f"after: {json.dumps(after[UNCACHED])[:600]}")
    check(t, f"k8s: after etcd_compact() a watch on {UNCACHED} (served from etcd) from an old resourceVersion ends in 410 Expired",
          uncached)

    def cached():
        # the watch cache keeps its own event history: the compaction is invisible to it
        b, a = summary(before["secrets"]), summary(after["secrets"])
        ok = len(b) == 3 and a == b and all(ty == "MODIFIED" for ty, _ in a)
        return ok, f"before: {b}\nafter compaction at {compacted}: {a}"
    check(t, "k8s: the watch cache hides the compaction: a watch on secrets (cached) from the same point still replays",
          cached)


def cleanup_after(t, cp, name):
    pids = list(cp.pids)
    ports = set(cp.ports.values())
    d = cp.dir
    cp.stop()

    def nothing_left():
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        listening = ports & listening_ports()
        return (not alive and not listening and not os.path.exists(d) and len(pids) >= len(COMPONENTS),
                f"pids {pids} alive {alive}; ports {sorted(ports)} still listening {sorted(listening)}; dir exists {os.path.exists(d)}")
    check(t, name, nothing_left)


def failed_start(t):
    """A start that fails (a flag the API server refuses) raises, names the cause, and leaves
    nothing behind."""
    cp = ControlPlane(extra_args={"kube-apiserver": ["--no-such-flag"]})
    err = None
    try:
        cp.start()
    except StartError as e:
        err = str(e)
    pids = list(cp.pids)
    ports = set(cp.ports.values())
    d = cp.dir
    # start() itself stopped what it started and removed the directory
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    left = os.path.exists(d)
    cp.stop()
    ok = (err is not None and "no-such-flag" in err and pids and not alive and
          not (ports & listening_ports()) and not left)
    t.tool("k8s: a failed start() raises with the component's error and leaves no process, listener or directory",
             ok, f"error: {(err or 'none')[-600:]}\nalive: {alive}; directory left: {left}")


def run_suite(t):
    missing = [b for b in COMPONENTS + ("kubectl",) if not os.access(os.path.join(BIN, b), os.X_OK)]
    if missing:
        t.tool("k8s: control-plane binaries built (make k8s)", False, f"missing in {BIN}: {missing}")
        return
    check(t, "k8s: tools/k8s/go.mod replaces are the ones derived from the k8s.io/kubernetes tag (sync.sh --check)",
          check_replaces)
    cp = ControlPlane(no_watch_cache=(UNCACHED,))
    try:
        cp.start()
    except Exception as e:
        t.tool("k8s: control plane starts and becomes ready", False, str(e)[-3000:])
        cp.stop()
        return
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in cp.timings.items())
    print(f"# k8s: control plane ready in {cp.startup_seconds:.1f}s ({stages})", flush=True)
    t.tool(f"k8s: control plane starts and becomes ready ({cp.startup_seconds:.1f}s)", True)
    try:
        st, r = cp.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        if st != 201:
            raise RuntimeError(f"namespace: {st} {r}")
        versions(t, cp)
        service_account(t, cp, cp.dir)
        deployment(t, cp)
        compaction(t, cp)
    except Exception:
        import traceback
        t.tool("k8s: suite ran to the end", False, traceback.format_exc()[-2000:])
    finally:
        cleanup_after(t, cp, "k8s: stop() leaves no process, listener or work directory")
    failed_start(t)
