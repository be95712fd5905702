"""A test kubelet: runs the pods that the real scheduler binds to its node as real processes,
each pod in its own network namespace (podnet.PodNetwork), each container chrooted into the
root file system of its image, unpacked from an OCI layout on disk (`make image` writes them).

Why not kwok: kwok only writes pod status (Running, Ready, an IP) and runs nothing, while these
tests need real Go programs serving /debug/pprof at the pod's address, readiness that follows a
real probe (a killed process makes its endpoint unready), and the collector running from its
image with the command, args, env, ports, probes and volumes the API server returned.

What it does, as the kubelet does it:
  - registers its Node (capacity, Ready condition, addresses, node info) and renews its Lease in
    kube-node-lease every 10 s, so the node lifecycle controller keeps it Ready;
  - watches the pods bound to its node; for each: a namespace + address, volumes (configMap,
    secret, emptyDir, persistentVolumeClaim, projected service-account token + CA + namespace,
    downwardAPI), /etc/hosts, /etc/hostname and /etc/resolv.conf; containers started in order
    with env (value, fieldRef, configMapKeyRef, secretKeyRef, envFrom) and $(VAR) expansion,
    the image's entrypoint/cmd combined with command/args by Kubernetes' rules, the user from
    securityContext or the image (runAsNonRoot enforced), fsGroup as a supplementary group,
    readOnlyRootFilesystem and readOnly mounts;
  - readiness, liveness and startup probes (httpGet, tcpSocket) from the host, as the kubelet
    probes from the node; restarts exited containers (restartPolicy) with a 1 s..30 s backoff;
  - writes pod status (phase, podIP(s), hostIP, conditions, containerStatuses) through the
    status subresource with a strategic merge patch, only when it changes;
  - configMap, secret and projected volumes are written the kubelet's way (a timestamped
    directory, a `..data` symlink swapped atomically, per-key symlinks into it) and refreshed
    every 2 s, so a changed ConfigMap reaches running containers as it would on a node;
  - graceful deletion: SIGTERM, terminationGracePeriodSeconds (capped at 30 s), SIGKILL, then
    the final delete with gracePeriodSeconds=0;
  - a tiny volume provisioner: every unbound PersistentVolumeClaim gets a hostPath
    PersistentVolume under the work directory with a claimRef, which the real PV controller
    binds.
Not done: image pulls from registries (an unknown image is ErrImagePull), workingDir, exec
probes, init containers, resource limits, kubectl logs/exec/port-forward (container output
goes to files under workdir/logs; see `log_path`)."""
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time

from kapi import ApiError

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


def now_rfc3339(micro=False):
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _pod_key(pod):
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


# ---- images ------------------------------------------------------------------------------

class Image:
    def __init__(self, ref, rootfs, config, digest):
        self.ref, self.rootfs, self.digest = ref, rootfs, digest
        c = config.get("config") or {}
        self.entrypoint = c.get("Entrypoint") or []
        self.cmd = c.get("Cmd") or []
        self.env = c.get("Env") or []
        self.user = c.get("User") or ""
        self.lock = threading.Lock()  # mount points are created in the shared root


class ImageStore:
    """Image references -> OCI layouts on disk ("dir:tag"), unpacked once per digest with umoci."""

    def __init__(self, cache_dir, layouts):
        self.cache_dir = cache_dir
        self.layouts = dict(layouts)
        self.images = {}
        self.lock = threading.Lock()

    def pull(self, ref):
        with self.lock:
            if ref in self.images:
                return self.images[ref]
            src = self.layouts.get(ref)
            if not src:
                raise LookupError(f"image {ref} is not in this node's image store")
            layout, tag = src.rsplit(":", 1)
            index = json.load(open(os.path.join(layout, "index.json")))
            man = next((m for m in index["manifests"]
                        if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag), None)
            if not man:
                raise LookupError(f"{layout} has no tag {tag}")
            digest = man["digest"]

            def blob(d):
                return json.load(open(os.path.join(layout, "blobs", *d.split(":", 1))))
            config = blob(blob(digest)["config"]["digest"])
            bundle = os.path.join(self.cache_dir, digest.replace(":", "-"))
            if not os.path.isdir(os.path.join(bundle, "rootfs")):
                shutil.rmtree(bundle, ignore_errors=True)
                p = subprocess.run(["umoci", "unpack", "--image", src, bundle], capture_output=True, text=True)
                if p.returncode != 0:
                    raise RuntimeError(f"umoci unpack {src}: {p.stderr.strip()}")
            img = Image(ref, os.path.join(bundle, "rootfs"), config, digest)
            self.images[ref] = img
            return img


# ---- containers ---------------------------------------------------------------------------

class Container:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec["name"]
        self.proc = None
        self.image = None
        self.restarts = 0
        self.started_at = None
        self.ready = False
        self.started = False  # startup probe passed (or none)
        self.waiting = ("ContainerCreating", "")
        self.last_term = None  # {"exitCode":..,"reason":..,"startedAt":..,"finishedAt":..}
        self.backoff = 0.0
        self.next_start = 0.0
        self.probe_stop = None
        self.log = None


def _expand(s, env):
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ is a literal $."""
    def rep(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", rep, s)


class PodRuntime:
    def __init__(self, pod):
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.key = _pod_key(pod)
        self.netns = None
        self.ip = None
        self.dir = None
        self.volumes = {}  # name -> host path
        self.volume_errors = {}  # name -> why it is not there yet (logged once per message)
        self.rendered = {}  # name -> digest of the files last written (atomic-writer volumes)
        self.tokens = {}  # volume name -> time the token was fetched
        self.containers = [Container(c) for c in pod["spec"].get("containers", [])]
        self.failed = None  # (reason, message) that keeps the pod from starting
        self.started_time = now_rfc3339()
        self.terminating = False
        self.last_status = None


class Kubelet:
    def __init__(self, api, node, net, workdir, images, log=None, server_version="v0.0.0",
                 capacity=None, virtual=False, api_endpoint=None):
        """virtual: run nothing; every pod gets an address and is Running and Ready at once (as
        kwok does), for benchmarks that need thousands of endpoints. api_endpoint: (address,
        port) of the API server as pods reach it; containers get KUBERNETES_SERVICE_HOST/PORT
        pointing there. A real kubelet gives them the `kubernetes` Service's cluster IP, which
        kube-proxy translates; there is no kube-proxy here, so pods get the endpoint itself, as
        kube-proxy-free clusters configure it."""
        self.virtual = virtual
        self.api_endpoint = api_endpoint
        self.api = api
        self.node = node
        self.net = net
        self.workdir = workdir
        self.images = images
        self.logf = log or (lambda msg: None)
        self.server_version = server_version
        self.capacity = capacity or {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        self.pods = {}  # uid -> latest pod object from the API
        self.rt = {}  # uid -> PodRuntime
        self.lock = threading.RLock()
        self.stop_ev = threading.Event()
        self.wake = threading.Event()
        self.threads = []
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "pods"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "pv"), exist_ok=True)

    # ---- lifecycle ----

    def start(self):
        self._register_node()
        for fn in (self._node_loop, self._watch_pods, self._sync_loop, self._provision_loop):
            th = threading.Thread(target=self._guard, args=(fn,), daemon=True, name=f"kubelet-{fn.__name__}")
            th.start()
            self.threads.append(th)

    def _guard(self, fn):
        while not self.stop_ev.is_set():
            try:
                fn()
            except Exception as e:  # keep going: a test kubelet that dies silently hides failures
                self.logf(f"kubelet {fn.__name__}: {type(e).__name__}: {e}")
                self.stop_ev.wait(1)

    def stop(self):
        """Stops every container (SIGTERM, then SIGKILL after 5 s) and removes pod namespaces."""
        self.stop_ev.set()
        self.wake.set()
        with self.lock:
            rts = list(self.rt.values())
        for rt in rts:
            self._kill_pod(rt, 5)
            self._teardown(rt)
        for th in self.threads:
            th.join(10)

    def log_path(self, namespace, pod, container):
        return os.path.join(self.workdir, "logs", f"{namespace}_{pod}_{container}.log")

    def runtime(self, namespace, name):
        with self.lock:
            for rt in self.rt.values():
                if rt.key == f"{namespace}/{name}":
                    return rt
        return None

    def kill_container(self, namespace, name, container, sig=signal.SIGKILL):
        """Fault injection for tests: signal a running container's process."""
        rt = self.runtime(namespace, name)
        for c in rt.containers if rt else []:
            if c.name == container and c.proc and c.proc.poll() is None:
                os.killpg(c.proc.pid, sig)
                return True
        return False

    # ---- node ----

    def _register_node(self):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                                                           "kubernetes.io/arch": "amd64"}},
                "spec": {"podCIDR": str(self.net.net), "podCIDRs": [str(self.net.net)]}}
        st, obj = self.api.request("POST", "/api/v1/nodes", node)
        if st not in (201, 409):
            raise ApiError(st, obj)
        self._post_node_status()
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": now_rfc3339(True)}}
        st, obj = self.api.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
        if st not in (201, 409):
            raise ApiError(st, obj)

    def _post_node_status(self):
        t = now_rfc3339()
        conds = [{"type": ty, "status": "False", "reason": f"KubeletHasNo{ty}", "message": "", "lastHeartbeatTime": t,
                  "lastTransitionTime": t} for ty in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test kubelet is posting ready status",
                      "lastHeartbeatTime": t, "lastTransitionTime": t})
        status = {"capacity": self.capacity, "allocatable": self.capacity, "conditions": conds,
                  "addresses": [{"type": "InternalIP", "address": self.net.gateway}, {"type": "Hostname", "address": self.node}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                  "nodeInfo": {"kubeletVersion": self.server_version, "kubeProxyVersion": "", "operatingSystem": "linux",
                               "architecture": "amd64", "containerRuntimeVersion": "pprof-test://1", "kernelVersion": os.uname().release,
                               "osImage": "Debian GNU/Linux 12 (bookworm)", "machineID": "", "systemUUID": "", "bootID": ""}}
        self.api.must("PATCH", f"/api/v1/nodes/{self.node}/status", {"status": status}, SMP)

    def _node_loop(self):
        last_status = time.monotonic()
        while not self.stop_ev.wait(10):
            self.api.must("PATCH", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}",
                          {"spec": {"renewTime": now_rfc3339(True)}}, MERGE)
            if time.monotonic() - last_status > 60:
                self._post_node_status()
                last_status = time.monotonic()

    # ---- pods from the API ----

    def _watch_pods(self):
        path = f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node}"
        lst = self.api.must("GET", path)
        with self.lock:
            self.pods = {p["metadata"]["uid"]: p for p in lst.get("items", [])}
        rv = lst["metadata"]["resourceVersion"]
        self.wake.set()
        while not self.stop_ev.is_set():
            try:
                for typ, obj in self.api.watch(f"{path}&resourceVersion={rv}", self.stop_ev):
                    if typ == "ERROR":
                        return  # 410 and friends: relist
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if typ == "BOOKMARK":
                        continue
                    with self.lock:
                        if typ == "DELETED":
                            self.pods.pop(obj["metadata"]["uid"], None)
                        else:
                            self.pods[obj["metadata"]["uid"]] = obj
                    self.wake.set()
            except ApiError:
                return  # relist
            except OSError:
                self.stop_ev.wait(0.5)

    # ---- the sync loop ----

    def _sync_loop(self):
        last_volume_sync = 0.0
        while not self.stop_ev.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            if self.stop_ev.is_set():
                return
            with self.lock:
                pods = dict(self.pods)
            for uid, pod in pods.items():
                rt = self.rt.get(uid)
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not rt:
                    continue
                if rt is None:
                    rt = PodRuntime(pod)
                    with self.lock:
                        self.rt[uid] = rt
                    self._setup(rt)
                rt.pod = pod
                if pod["metadata"].get("deletionTimestamp"):
                    if not rt.terminating:
                        rt.terminating = True
                        threading.Thread(target=self._finish_delete, args=(rt,), daemon=True).start()
                    continue
                self._run_containers(rt)
                self._write_status(rt)
            # pods gone from the API (force-deleted, or deleted by _finish_delete): tear down
            for uid in [u for u in self.rt if u not in pods]:
                rt = self.rt[uid]
                if not rt.terminating:
                    self._kill_pod(rt, 2)
                    self._teardown(rt)
                with self.lock:
                    self.rt.pop(uid, None)
            if time.monotonic() - last_volume_sync > 2:
                last_volume_sync = time.monotonic()
                for rt in list(self.rt.values()):
                    if not rt.terminating and rt.dir and not rt.failed:
                        try:
                            self._sync_volumes(rt)
                        except Exception as e:
                            self.logf(f"kubelet: volumes of {rt.key}: {e}")

    def _setup(self, rt):
        """Sandbox: namespace, address, pod directory, volumes and /etc files."""
        pod = rt.pod
        rt.dir = os.path.join(self.workdir, "pods", rt.uid)
        os.makedirs(rt.dir, exist_ok=True)
        try:
            rt.netns, rt.ip = self.net.reserve() if self.virtual else self.net.add()
        except Exception as e:
            rt.failed = ("SandboxFailed", str(e))
            return
        if self.virtual:
            for c in rt.containers:
                c.waiting, c.ready, c.started, c.started_at = None, True, True, now_rfc3339()
            return
        name = pod["metadata"]["name"]
        with open(os.path.join(rt.dir, "hosts"), "w") as f:
            f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{rt.ip}\t{name}\n")
        with open(os.path.join(rt.dir, "hostname"), "w") as f:
            f.write(name + "\n")
        with open(os.path.join(rt.dir, "resolv.conf"), "w") as f:
            # no DNS server exists here; loopback fails at once instead of reaching out
            f.write("nameserver 127.0.0.1\noptions ndots:1 attempts:1 timeout:1\n")
        self._sync_volumes(rt)

    # ---- volumes ----

    def _sync_volumes(self, rt):
        """Volumes that cannot be made yet (an unbound claim, a missing ConfigMap) are tried
        again on the next sync; containers that mount them wait (CreateContainerConfigError)."""
        for v in rt.pod["spec"].get("volumes") or []:
            try:
                self._sync_volume(rt, v)
            except Exception as e:
                msg = f"volume {v['name']}: {e}"
                if rt.volume_errors.get(v["name"]) != msg:
                    self.logf(f"kubelet: {rt.key}: {msg}")
                rt.volume_errors[v["name"]] = msg
            else:
                rt.volume_errors.pop(v["name"], None)

    def _sync_volume(self, rt, v):
        pod = rt.pod
        ns = pod["metadata"]["namespace"]
        fsgroup = ((pod["spec"].get("securityContext") or {}).get("fsGroup"))
        name = v["name"]
        path = rt.volumes.get(name) or os.path.join(rt.dir, "volumes", name)
        if "emptyDir" in v:
            if name not in rt.volumes:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
        elif "persistentVolumeClaim" in v:
            if name not in rt.volumes:
                path = self._pvc_path(ns, v["persistentVolumeClaim"]["claimName"])
                if fsgroup is not None:
                    os.chown(path, -1, fsgroup)
                    os.chmod(path, 0o2775)
        elif "hostPath" in v:
            path = v["hostPath"]["path"]
        else:
            files = self._volume_files(rt, v)
            if files is None:
                return
            digest = hashlib.sha256(json.dumps(sorted((k, base64.b64encode(b).decode(), m) for k, (b, m) in files.items())).encode()).hexdigest()
            if rt.rendered.get(name) != digest:
                self._atomic_write(path, files, fsgroup)
                rt.rendered[name] = digest
        rt.volumes[name] = path

    def _pvc_path(self, ns, claim):
        pvc = self.api.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
        if not pvc:
            raise RuntimeError(f'persistentvolumeclaim "{claim}" not found')
        pvname = pvc["spec"].get("volumeName")
        if not pvname or (pvc.get("status") or {}).get("phase") != "Bound":
            raise RuntimeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = self.api.get(f"/api/v1/persistentvolumes/{pvname}")
        spec = (pv or {}).get("spec") or {}
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        if not path:
            raise RuntimeError(f"persistentvolume {pvname} has no hostPath or local path")
        os.makedirs(path, exist_ok=True)
        return path

    def _items(self, data, items, default_mode):
        """{relative path: (bytes, mode)} from a key->bytes map and an optional items list."""
        out = {}
        if items:
            for it in items:
                if it["key"] not in data:
                    raise RuntimeError(f'key "{it["key"]}" not found')
                out[it["path"]] = (data[it["key"]], it.get("mode", default_mode))
        else:
            for k, b in data.items():
                out[k] = (b, default_mode)
        return out

    def _cm_data(self, ns, name, secret=False):
        obj = self.api.get(f"/api/v1/namespaces/{ns}/{'secrets' if secret else 'configmaps'}/{name}")
        if obj is None:
            return None
        if secret:
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def _field(self, rt, path):
        pod = rt.pod
        md = pod["metadata"]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return (md.get(m.group(1)) or {}).get(m.group(2), "")
        return {"metadata.name": md["name"], "metadata.namespace": md["namespace"], "metadata.uid": md["uid"],
                "spec.nodeName": self.node, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                "status.podIP": rt.ip or "", "status.hostIP": self.net.gateway,
                "status.podIPs": rt.ip or ""}.get(path, "")

    def _volume_files(self, rt, v):
        ns = rt.pod["metadata"]["namespace"]
        if "configMap" in v or "secret" in v:
            secret = "secret" in v
            src = v["secret" if secret else "configMap"]
            data = self._cm_data(ns, src.get("secretName" if secret else "name"), secret)
            if data is None:
                if src.get("optional"):
                    return {}
                raise RuntimeError(f'{"secret" if secret else "configmap"} "{src.get("secretName" if secret else "name")}" not found')
            return self._items(data, src.get("items"), src.get("defaultMode", 0o644))
        if "downwardAPI" in v:
            src = v["downwardAPI"]
            return {it["path"]: (self._field(rt, it["fieldRef"]["fieldPath"]).encode(), it.get("mode", src.get("defaultMode", 0o644)))
                    for it in src.get("items") or [] if "fieldRef" in it}
        if "projected" in v:
            src = v["projected"]
            mode = src.get("defaultMode", 0o644)
            out = {}
            for s in src.get("sources") or []:
                if "serviceAccountToken" in s:
                    out[s["serviceAccountToken"]["path"]] = (self._token(rt, v["name"], s["serviceAccountToken"]), mode)
                elif "configMap" in s:
                    data = self._cm_data(ns, s["configMap"]["name"])
                    if data is None and not s["configMap"].get("optional"):
                        raise RuntimeError(f'configmap "{s["configMap"]["name"]}" not found')
                    out.update(self._items(data or {}, s["configMap"].get("items"), mode))
                elif "secret" in s:
                    data = self._cm_data(ns, s["secret"]["name"], True)
                    if data is None and not s["secret"].get("optional"):
                        raise RuntimeError(f'secret "{s["secret"]["name"]}" not found')
                    out.update(self._items(data or {}, s["secret"].get("items"), mode))
                elif "downwardAPI" in s:
                    for it in s["downwardAPI"].get("items") or []:
                        if "fieldRef" in it:
                            out[it["path"]] = (self._field(rt, it["fieldRef"]["fieldPath"]).encode(), mode)
            return out
        return None

    def _token(self, rt, vol, src):
        """A bound service-account token from the TokenRequest API, fetched again at 80% of
        its life, as the kubelet does."""
        exp = int(src.get("expirationSeconds", 3607))
        cached = rt.tokens.get(vol)
        if cached and time.monotonic() - cached[0] < 0.8 * exp:
            return cached[1]
        pod = rt.pod
        md = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"expirationSeconds": exp, "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]}}}
        if src.get("audience"):
            req["spec"]["audiences"] = [src["audience"]]
        obj = self.api.must("POST", f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{sa}/token", req)
        tok = obj["status"]["token"].encode()
        rt.tokens[vol] = (time.monotonic(), tok)
        return tok

    @staticmethod
    def _atomic_write(path, files, fsgroup):
        """The kubelet's atomic writer: files go to a new timestamped directory, `..data` is
        swapped to it by rename, and each top-level name is a symlink through `..data`."""
        os.makedirs(path, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.%f")
        new = os.path.join(path, stamp)
        os.makedirs(new)
        for rel, (data, mode) in files.items():
            if rel.startswith("/") or ".." in rel.split("/"):
                raise RuntimeError(f"volume item path {rel!r} is not relative")
            fp = os.path.join(new, rel)
            os.makedirs(os.path.dirname(fp), exist_ok=True)
            with open(fp, "wb") as f:
                f.write(data)
            os.chmod(fp, mode)
            if fsgroup is not None:
                os.chown(fp, -1, fsgroup)
        os.chmod(new, 0o755)
        old = os.readlink(os.path.join(path, "..data")) if os.path.islink(os.path.join(path, "..data")) else None
        tmp = os.path.join(path, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(stamp, tmp)
        os.rename(tmp, os.path.join(path, "..data"))
        tops = {rel.split("/")[0] for rel in files}
        for top in tops:
            link = os.path.join(path, top)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", top), link)
        for name in os.listdir(path):
            if not name.startswith("..") and name not in tops:
                os.unlink(os.path.join(path, name))
        if old:
            shutil.rmtree(os.path.join(path, old), ignore_errors=True)

    # ---- containers ----

    def _user(self, rt, c, img):
        psc = rt.pod["spec"].get("securityContext") or {}
        csc = c.spec.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        if uid is None and img.user:
            u, _, g = img.user.partition(":")
            if not u.isdigit() or (g and not g.isdigit()):
                raise RuntimeError(f"image user {img.user!r} is not numeric")
            uid = int(u)
            if gid is None and g:
                gid = int(g)
        uid = uid or 0
        gid = uid if gid is None else gid
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) and uid == 0:
            raise RuntimeError("container has runAsNonRoot and image will run as root")
        groups = [gid] + ([psc["fsGroup"]] if psc.get("fsGroup") is not None else []) + list(psc.get("supplementalGroups") or [])
        return uid, gid, sorted(set(groups))

    def _env(self, rt, c, img):
        env = {}
        for kv in img.env:
            k, _, v = kv.partition("=")
            env[k] = v
        env["HOSTNAME"] = rt.pod["metadata"]["name"]
        if self.api_endpoint:
            host, port = self.api_endpoint
            env.update({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
                        "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": f"tcp://{host}:{port}"})
        ns = rt.pod["metadata"]["namespace"]
        for ef in c.spec.get("envFrom") or []:
            ref = ef.get("configMapRef") or ef.get("secretRef")
            data = self._cm_data(ns, ref["name"], "secretRef" in ef)
            if data is None and not ref.get("optional"):
                raise RuntimeError(f'{"secret" if "secretRef" in ef else "configmap"} "{ref["name"]}" not found')
            for k, b in (data or {}).items():
                env[ef.get("prefix", "") + k] = b.decode(errors="replace")
        for e in c.spec.get("env") or []:
            if "valueFrom" in e:
                vf = e["valueFrom"]
                if "fieldRef" in vf:
                    env[e["name"]] = self._field(rt, vf["fieldRef"]["fieldPath"])
                elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                    ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
                    data = self._cm_data(ns, ref["name"], "secretKeyRef" in vf)
                    if (data is None or ref["key"] not in data) and not ref.get("optional"):
                        raise RuntimeError(f'couldn\'t find key {ref["key"]} in {ref["name"]}')
                    if data and ref["key"] in data:
                        env[e["name"]] = data[ref["key"]].decode(errors="replace")
                else:
                    env[e["name"]] = ""
            else:
                env[e["name"]] = _expand(e.get("value", ""), env)
        return env

    def _argv(self, c, img, env):
        if c.spec.get("command"):
            argv = list(c.spec["command"]) + list(c.spec.get("args") or [])
        elif c.spec.get("args") is not None:
            argv = list(img.entrypoint) + list(c.spec["args"])
        else:
            argv = list(img.entrypoint) + list(img.cmd)
        if not argv:
            raise RuntimeError("no command specified")
        return [_expand(a, env) for a in argv]

    def _start(self, rt, c):
        img = self.images.pull(c.spec["image"])
        c.image = img
        env = self._env(rt, c, img)
        argv = self._argv(c, img, env)
        uid, gid, groups = self._user(rt, c, img)
        csc = c.spec.get("securityContext") or {}
        mounts = []
        for m in c.spec.get("volumeMounts") or []:
            src = rt.volumes.get(m["name"])
            if src is None:
                raise RuntimeError(rt.volume_errors.get(m["name"]) or f'volume "{m["name"]}" is not ready')
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
            mounts.append((src, m["mountPath"], bool(m.get("readOnly"))))
        root = os.path.join(rt.dir, "root-" + c.name)
        os.makedirs(root, exist_ok=True)
        with img.lock:  # mount points in the shared image root (harmless: same image, same paths)
            for d in ["dev", "proc"] + [mp.lstrip("/") for _, mp, _ in mounts]:
                os.makedirs(os.path.join(img.rootfs, d), exist_ok=True)
            for f in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
                fp = os.path.join(img.rootfs, f)
                if not os.path.exists(fp):
                    os.makedirs(os.path.dirname(fp), exist_ok=True)
                    open(fp, "a").close()
        q = shlex.quote
        script = ["set -e", f"mount --bind {q(img.rootfs)} {q(root)}",
                  f"mount -t tmpfs -o mode=755,size=1m tmpfs {q(root)}/dev"]
        for d in ("null", "zero", "random", "urandom"):
            script.append(f"touch {q(root)}/dev/{d} && mount --bind /dev/{d} {q(root)}/dev/{d}")
        script.append(f"mount -t proc proc {q(root)}/proc")
        for src, mp, ro in mounts:
            dst = q(root + "/" + mp.lstrip("/"))
            script.append(f"mount --bind {q(src)} {dst}")
            if ro:
                script.append(f"mount -o remount,bind,ro {dst}")
        for f in ("hosts", "hostname", "resolv.conf"):
            script.append(f"mount --bind {q(os.path.join(rt.dir, f))} {q(root)}/etc/{f}")
        script.append(f"hostname {q(rt.pod['metadata']['name'][:63])}")
        if csc.get("readOnlyRootFilesystem"):
            script.append(f"mount -o remount,bind,ro {q(root)}")
        envs = " ".join(q(f"{k}={v}") for k, v in env.items())
        script.append(f"exec /usr/bin/env -i {envs} /usr/sbin/chroot --userspec={uid}:{gid} "
                      f"--groups={','.join(map(str, groups))} {q(root)} " + " ".join(q(a) for a in argv))
        logp = self.log_path(rt.pod["metadata"]["namespace"], rt.pod["metadata"]["name"], c.name)
        c.log = open(logp, "ab")
        c.log.write(f"--- {now_rfc3339()} start #{c.restarts}: {argv}\n".encode())
        c.log.flush()
        c.proc = subprocess.Popen(["ip", "netns", "exec", rt.netns, "unshare", "--mount", "--uts", "--propagation", "private",
                                   "sh", "-c", "\n".join(script)], stdin=subprocess.DEVNULL, stdout=c.log, stderr=c.log,
                                  start_new_session=True)
        c.started_at = now_rfc3339()
        c.waiting = None
        c.ready = False
        c.started = not c.spec.get("startupProbe")
        c.probe_stop = threading.Event()
        threading.Thread(target=self._probe_loop, args=(rt, c, c.proc, c.probe_stop), daemon=True).start()

    def _run_containers(self, rt):
        if rt.failed or self.virtual:
            return
        policy = rt.pod["spec"].get("restartPolicy", "Always")
        for c in rt.containers:
            if c.proc is not None and c.proc.poll() is not None:  # exited
                code = c.proc.returncode
                c.probe_stop.set()
                c.last_term = {"exitCode": code if code >= 0 else 128 - code,
                               "reason": "Completed" if code == 0 else "Error", "startedAt": c.started_at,
                               "finishedAt": now_rfc3339()}
                if code < 0:
                    c.last_term["signal"] = -code
                c.log.write(f"--- {now_rfc3339()} exited {code}\n".encode())
                c.log.close()
                c.proc = None
                c.ready = False
                if policy == "Never" or (policy == "OnFailure" and code == 0):
                    c.waiting = None
                    continue
                c.restarts += 1
                c.backoff = min(30.0, c.backoff * 2 if c.backoff else 1.0)
                c.next_start = time.monotonic() + c.backoff
                c.waiting = ("CrashLoopBackOff", f"back-off {c.backoff:.0f}s restarting failed container={c.name} pod={rt.key}")
            if c.proc is None and c.waiting and time.monotonic() >= c.next_start:
                try:
                    self._start(rt, c)
                except LookupError as e:
                    c.waiting = ("ErrImagePull", str(e))
                    c.next_start = time.monotonic() + 5
                except Exception as e:
                    c.waiting = ("CreateContainerConfigError", str(e))
                    c.next_start = time.monotonic() + 2
            if c.proc is not None and c.started_at and c.backoff and c.ready:
                c.backoff = 0.0  # healthy again: the next crash starts the backoff over

    # ---- probes ----

    def _probe(self, rt, c, probe):
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            h = probe["httpGet"]
            port = self._port(c, h["port"])
            conn_cls = http.client.HTTPSConnection if h.get("scheme") == "HTTPS" else http.client.HTTPConnection
            kw = {}
            if h.get("scheme") == "HTTPS":
                import ssl
                kw["context"] = ssl._create_unverified_context()  # the kubelet does not verify probe certificates
            conn = conn_cls(h.get("host") or rt.ip, port, timeout=timeout, **kw)
            try:
                conn.request("GET", h.get("path", "/"), headers={"User-Agent": "kube-probe/1.37"})
                return 200 <= conn.getresponse().status < 400
            except OSError:
                return False
            finally:
                conn.close()
        if "tcpSocket" in probe:
            try:
                socket.create_connection((rt.ip, self._port(c, probe["tcpSocket"]["port"])), timeout).close()
                return True
            except OSError:
                return False
        return False  # exec and grpc probes are not supported here

    @staticmethod
    def _port(c, p):
        if isinstance(p, int) or str(p).isdigit():
            return int(p)
        for cp in c.spec.get("ports") or []:
            if cp.get("name") == p:
                return cp["containerPort"]
        raise ValueError(f"port {p!r} not found")

    def _probe_loop(self, rt, c, proc, stop):
        spec = c.spec
        t0 = time.monotonic()
        state = {}  # kind -> [successes, failures, next time]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if spec.get(kind):
                state[kind] = [0, 0, t0 + spec[kind].get("initialDelaySeconds", 0)]
        if "readinessProbe" not in state:
            c.ready = True
            self.wake.set()
        while not stop.is_set() and proc.poll() is None:
            now = time.monotonic()
            for kind, st in state.items():
                if now < st[2] or (kind != "startupProbe" and not c.started) or (kind == "startupProbe" and c.started):
                    continue
                p = spec[kind]
                st[2] = now + p.get("periodSeconds", 10)
                try:
                    ok = self._probe(rt, c, p)
                except ValueError:
                    ok = False
                st[0], st[1] = (st[0] + 1, 0) if ok else (0, st[1] + 1)
                if kind == "startupProbe":
                    if st[0] >= 1:
                        c.started = True
                        self.wake.set()
                    elif st[1] >= p.get("failureThreshold", 3):
                        self._term(proc, rt)
                elif kind == "readinessProbe":
                    ready = c.ready
                    if st[0] >= p.get("successThreshold", 1):
                        ready = True
                    elif st[1] >= p.get("failureThreshold", 3):
                        ready = False
                    if ready != c.ready:
                        c.ready = ready
                        self.wake.set()
                elif kind == "livenessProbe" and st[1] >= p.get("failureThreshold", 3):
                    self._term(proc, rt)
            stop.wait(0.2)
        if "readinessProbe" not in state and c.proc is proc:
            c.ready = False

    def _term(self, proc, rt):
        grace = min(30, rt.pod["spec"].get("terminationGracePeriodSeconds", 30))
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ---- status ----

    def _write_status(self, rt):
        pod = rt.pod
        statuses = []
        for c in rt.containers:
            up = bool(c.proc) or (self.virtual and rt.ip is not None)
            s = {"name": c.name, "image": c.spec["image"], "imageID": c.image.digest if c.image else "",
                 "restartCount": c.restarts, "ready": up and c.ready, "started": up and c.started}
            if up and self.virtual:
                s["state"] = {"running": {"startedAt": c.started_at}}
            elif c.proc:
                s["state"] = {"running": {"startedAt": c.started_at}}
                s["containerID"] = f"pprof-test://{c.proc.pid}"
            elif c.waiting:
                s["state"] = {"waiting": {"reason": c.waiting[0], "message": c.waiting[1]}}
            elif c.last_term:
                s["state"] = {"terminated": c.last_term}
            if c.last_term:
                s["lastState"] = {"terminated": c.last_term}
            statuses.append(s)
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        running = any(c.proc for c in rt.containers) or (self.virtual and rt.ip is not None)
        phase = "Running" if running else "Pending"
        conds = [("PodReadyToStartContainers", rt.netns is not None, None), ("Initialized", True, None),
                 ("ContainersReady", all_ready, "ContainersNotReady"), ("Ready", all_ready, "ContainersNotReady")]
        old = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
        cond_list = []
        for typ, ok, reason in conds:
            st = "True" if ok else "False"
            prev = old.get(typ)
            c = {"type": typ, "status": st, "lastProbeTime": None,
                 "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == st else now_rfc3339()}
            if not ok and reason:
                c["reason"] = reason
            cond_list.append(c)
        status = {"phase": phase, "hostIP": self.net.gateway, "hostIPs": [{"ip": self.net.gateway}],
                  "startTime": rt.started_time, "containerStatuses": statuses, "conditions": cond_list}
        if rt.ip:
            status["podIP"] = rt.ip
            status["podIPs"] = [{"ip": rt.ip}]
        if rt.failed:
            status["message"] = rt.failed[1]
            status["reason"] = rt.failed[0]
        # compare without transition times: they only change along with a status
        key = json.dumps([phase, statuses, [(c["type"], c["status"]) for c in cond_list], rt.failed], sort_keys=True)
        if key == rt.last_status:
            return
        st, obj = self.api.request("PATCH", f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/status",
                                   {"metadata": {"uid": rt.uid}, "status": status}, SMP)
        if st == 200:
            rt.last_status = key
        elif st not in (404, 409):
            self.logf(f"kubelet: status of {rt.key}: HTTP {st}: {str(obj)[:300]}")

    # ---- deletion ----

    def _kill_pod(self, rt, grace):
        procs = []
        for c in rt.containers:
            if c.probe_stop:
                c.probe_stop.set()
            if c.proc and c.proc.poll() is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                procs.append(c.proc)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()

    def _finish_delete(self, rt):
        pod = rt.pod
        grace = pod["metadata"].get("deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30))
        self._kill_pod(rt, min(30, grace or 0))
        self._teardown(rt)
        md = pod["metadata"]
        self.api.request("DELETE", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}",
                         {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                          "preconditions": {"uid": rt.uid}})

    def _teardown(self, rt):
        for c in rt.containers:
            if c.log and not c.log.closed:
                c.log.close()
        if rt.netns:
            self.net.remove(rt.netns)
            rt.netns = None

    # ---- volumes for claims ----

    def _provision_loop(self):
        while not self.stop_ev.wait(1):
            lst = self.api.must("GET", "/api/v1/persistentvolumeclaims")
            for pvc in lst.get("items", []):
                md, spec = pvc["metadata"], pvc["spec"]
                if spec.get("volumeName") or (pvc.get("status") or {}).get("phase") != "Pending" or md.get("deletionTimestamp"):
                    continue
                path = os.path.join(self.workdir, "pv", md["uid"])
                os.makedirs(path, exist_ok=True)
                pv = {"apiVersion": "v1", "kind": "PersistentVolume",
                      "metadata": {"name": "pvc-" + md["uid"], "labels": {"pprof-controller.test/provisioner": "kubelet"}},
                      "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                               "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                               "persistentVolumeReclaimPolicy": "Retain", "storageClassName": spec.get("storageClassName") or "",
                               "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                               "claimRef": {"namespace": md["namespace"], "name": md["name"], "uid": md["uid"]}}}
                st, obj = self.api.request("POST", "/api/v1/persistentvolumes", pv)
                if st not in (201, 409):
                    self.logf(f"kubelet: provisioning {md['namespace']}/{md['name']}: HTTP {st}: {str(obj)[:300]}")
