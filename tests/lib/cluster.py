"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler as built by scripts/k8s-build.sh (`make k8s`, build/k8s/bin), on loopback, with
certificates, data and logs in one work directory.

    with ControlPlane() as cp:            # or cp = ControlPlane(workdir); cp.start(); ...; cp.stop()
        cp.kubectl("get", "ns")            # CompletedProcess; the built kubectl, admin kubeconfig
        status, obj = cp.api("GET", "/api/v1/namespaces/default")
        tok = cp.token("ns", "sa", 600)    # TokenRequest
        cp.kubeconfig_for_token(tok, path)
        cp.etcd_compact()                  # compact etcd at its current revision

What start() does, in order: a CA, the API server's serving certificate, client certificates
for the admin (O=system:masters), controller-manager and scheduler (their own system users, so the
bootstrap RBAC policy applies to them as in a real cluster) and the service-account key pair,
all with the openssl CLI; etcd; kube-apiserver; then the controller-manager and the scheduler;
it returns once /readyz answers 200, both components answer /healthz and the controllers work
(the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap exist in `default`).
`startup_seconds` is the time that took. Ports are free loopback ports picked at start (a
port taken in between makes start() retry with new ones).

Nodes: nothing here runs a kubelet. The node lifecycle controller runs as in a real cluster, so
whoever adds pods must act as the kubelet: create the Node, set its Ready condition (once is
enough) and renew its Lease in kube-node-lease (the heartbeat) within --node-monitor-grace-period
(50 s); otherwise the node turns Ready=Unknown, gets the `node.kubernetes.io/unreachable`
NoSchedule and NoExecute taints, and its pods are evicted when their default toleration (300 s,
DefaultTolerationSeconds admission) runs out. Pods bound to a node that does not exist are
deleted by the pod GC controller (after 40 s). Pods need `nodeName` or a schedulable Node (the
scheduler runs).

Cleanup: stop() (also when start() fails, on leaving the `with` block, at interpreter exit, and
on SIGTERM when the test process had no handler of its own) kills every process group it started and removes the
work directory. Each component also runs under `setpriv --pdeathsig KILL`, so it dies with the
thread that started it even after a SIGKILL of the test process: start() from the thread that
outlives the cluster (the main thread in our suites).

The watch cache: the API server answers watches from its in-memory cache, which keeps recent
events itself, so compacting etcd does not make a watch from an old resourceVersion fail for a
cached resource (the k8s suite shows it). Resources named in `no_watch_cache` (built-in
resources only, `resource[.group]`, e.g. "configmaps"; the flag cannot name custom resources)
are served from etcd, where a watch below the compacted revision ends in ERROR 410 Expired."""
import atexit
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import ROOT, free_port

BIN = os.path.join(ROOT, "build", "k8s", "bin")
TOOLS = os.path.join(ROOT, "tools", "k8s")
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the `kubernetes` Service
# The address the API server publishes for itself (the `kubernetes` Service's endpoints). Left
# unset it is taken from the interface of the default route, so start fails on a machine without
# one. Loopback is what the server binds; with it the endpoint reconciler must be "none" (the
# server refuses to start otherwise: Endpoints reject loopback addresses), so the `kubernetes`
# Service has no endpoints: clients use the kubeconfig, nothing reaches the server through the
# Service IP (no kube-proxy). A non-loopback address (e.g. a bridge of the test's own that pods
# can reach) gets the lease reconciler and a SAN in the serving certificate.
ADVERTISE_ADDRESS = "127.0.0.1"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
CERT_DAYS = 7


def go_mod_require(module):
    """The version of `module` that tools/k8s/go.mod requires, e.g. 'v1.37.2' for
    k8s.io/kubernetes (what the binaries built from it must report)."""
    with open(os.path.join(TOOLS, "go.mod")) as f:
        for line in f:
            tok = line.split()
            if tok[:1] == ["require"]:
                tok = tok[1:]
            if len(tok) >= 2 and tok[0] == module:
                return tok[1]
    raise RuntimeError(f"tools/k8s/go.mod requires no {module}")


def k8s_version():
    return go_mod_require("k8s.io/kubernetes")


def check_replaces():
    """(ok, output) of `tools/k8s/sync.sh --check`: go.mod's replace block equals the list
    derived from the required k8s.io/kubernetes tag's own go.mod."""
    p = subprocess.run([os.path.join(TOOLS, "sync.sh"), "--check"], capture_output=True, text=True, timeout=300)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {p.stderr.strip()[:2000]}")


class StartError(RuntimeError):
    pass


class ControlPlane:
    """One control plane in `workdir` (made if missing, a fresh temp dir if None; removed by
    stop()). extra_args: {component: [flags]} appended to that component's command line (later
    flags win). no_watch_cache: built-in resources the API server serves from etcd directly.
    bind_address: where the API server listens; the default is loopback, and an address of the
    test's own pod network (the bridge's gateway) lets pods reach it as in-cluster clients do (it
    is then also the advertised address, unless advertise_address says otherwise)."""

    def __init__(self, workdir=None, extra_args=None, no_watch_cache=(), advertise_address=None, bind_address="127.0.0.1"):
        self.bind_address = bind_address
        self.advertise_address = advertise_address or (ADVERTISE_ADDRESS if bind_address == "127.0.0.1" else bind_address)
        self.version = k8s_version()
        self.dir = os.path.abspath(workdir) if workdir else tempfile.mkdtemp(prefix="k8s-cp-")
        self.extra_args = dict(extra_args or {})
        self.no_watch_cache = tuple(no_watch_cache)
        self.procs = {}
        self.pids = []  # every process ever started, for tests that check cleanup
        self.ports = {}
        self.server = None
        self.etcd_url = None
        self.startup_seconds = None
        self.timings = {}  # seconds per start-up stage: pki, etcd, kube-apiserver, controllers
        self.pki = os.path.join(self.dir, "pki")
        self.ca_path = os.path.join(self.pki, "ca.crt")
        self.kubeconfig = os.path.join(self.dir, "admin.kubeconfig")
        self._ctx = None
        self._stopped = False
        self._lock = threading.Lock()

    # --- lifecycle ---

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        for b in COMPONENTS + ("kubectl",):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise StartError(f"{BIN}/{b} missing: run `make k8s`")
        t0 = time.monotonic()
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        _register(self)
        try:
            self._make_pki()
            self.timings["pki"] = time.monotonic() - t0
            for attempt in range(3):
                try:
                    self._start_once()
                    break
                except StartError as e:
                    # a port picked as free was taken before the component bound it: new ports
                    if attempt == 2 or "address already in use" not in str(e):
                        raise
                    self._kill_all()
        except BaseException:
            # nothing of a failed start stays; the error carries the failing component's log tail
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self):
        """Kills every process group this control plane started (TERM, then KILL after 10 s) and
        removes the work directory. Safe to call twice and from the atexit/signal path."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._kill_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        _unregister(self)

    def _kill_all(self):
        order = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
        procs = [(n, self.procs[n]) for n in order if n in self.procs]
        for _, p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # the group too: a component's children (none today) must not outlive it
            _signal_group(p, signal.SIGKILL)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            if p.stdout:
                p.stdout.close()
        self.procs = {}

    # --- certificates and kubeconfigs ---

    def _make_pki(self):
        os.makedirs(self.pki, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", str(CERT_DAYS),
                 "-subj", "/CN=pprof-controller-test-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=self.pki)
        sans = ["IP:127.0.0.1", f"IP:{SERVICE_IP}", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
        for extra in {self.advertise_address, self.bind_address} - {"127.0.0.1", SERVICE_IP}:
            sans.append(f"IP:{extra}")
        self._leaf("apiserver", "/CN=kube-apiserver", "serverAuth", sans)
        self._leaf("admin", "/O=system:masters/CN=kubernetes-admin", "clientAuth")
        self._leaf("controller-manager", "/CN=system:kube-controller-manager", "clientAuth")
        self._leaf("scheduler", "/CN=system:kube-scheduler", "clientAuth")
        # service-account tokens: the API server signs with the private key (TokenRequest) and
        # verifies with the public one; the controller-manager signs legacy token Secrets
        # (ES256: an EC key is made in a fraction of the time of an RSA one on a loaded machine)
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key", cwd=self.pki)
        _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=self.pki)

    def _leaf(self, name, subj, usage, sans=None):
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", str(CERT_DAYS), "-subj", subj,
                "-CA", "ca.crt", "-CAkey", "ca.key",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
                "-addext", f"extendedKeyUsage={usage}"]
        if sans:
            args += ["-addext", "subjectAltName=" + ",".join(sans)]
        _openssl(*args, cwd=self.pki)

    def _b64(self, name):
        with open(os.path.join(self.pki, name), "rb") as f:
            return base64.b64encode(f.read()).decode()

    def write_kubeconfig(self, path, user, ca_file=None, server=None):
        """A kubeconfig for this server (or `server`, e.g. a proxy in front of it); user is the
        user stanza ({"client-certificate-data": ...}, {"token": ...}, {"exec": {...}}, ...); the
        CA inline, or by path with ca_file."""
        ca = f"    certificate-authority: {ca_file}" if ca_file else f"    certificate-authority-data: {self._b64('ca.crt')}"
        lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: test", "  cluster:",
                 f"    server: {server or self.server}", ca, "users:", "- name: user", "  user:"]
        lines += [f"    {k}: {json.dumps(v)}" for k, v in user.items()]
        lines += ["contexts:", "- name: test", "  context:", "    cluster: test", "    user: user",
                  "current-context: test", ""]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines))
        return path

    def _cert_kubeconfig(self, name):
        return self.write_kubeconfig(os.path.join(self.dir, f"{name}.kubeconfig"), {
            "client-certificate-data": self._b64(f"{name}.crt"), "client-key-data": self._b64(f"{name}.key")})

    def kubeconfig_for_token(self, token, path, server=None):
        """Writes a kubeconfig for this server (or `server`) that authenticates with a bearer token."""
        return self.write_kubeconfig(path, {"token": token}, server=server)

    @property
    def admin_cert(self):
        """(certificate, key) paths of the admin client (O=system:masters)."""
        return os.path.join(self.pki, "admin.crt"), os.path.join(self.pki, "admin.key")

    @property
    def port(self):
        return self.ports["apiserver"]

    def issue_cert(self, name, sans, usage="serverAuth"):
        """A certificate from this cluster's CA, e.g. for a proxy in front of the API server:
        (certificate, key) paths."""
        self._leaf(name, f"/CN={name}", usage, sans)
        return os.path.join(self.pki, f"{name}.crt"), os.path.join(self.pki, f"{name}.key")

    # --- processes ---

    def _spawn(self, name, args):
        log = open(os.path.join(self.dir, "logs", f"{name}.log"), "ab")
        cmd = ["setpriv", "--pdeathsig", "KILL", "--", os.path.join(BIN, name), *args,
               *self.extra_args.get(name, [])]
        with open(os.path.join(self.dir, "logs", f"{name}.cmdline"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        try:
            # own process group, so stop() reaches it and a Ctrl-C on the terminal does not
            # kill it before the harness stops it in order
            self.procs[name] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                cwd=self.dir, start_new_session=True)
            self.pids.append(self.procs[name].pid)
        finally:
            log.close()

    def _start_once(self):
        for k in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[k] = free_port()
        p = self.pki
        self.etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        data = os.path.join(self.dir, "etcd")
        shutil.rmtree(data, ignore_errors=True)
        self._spawn("etcd", [
            "--name=default", f"--data-dir={data}", f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}", f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync", "--log-level=warn"])
        t = time.monotonic()
        self._wait("etcd", lambda: _http_json("GET", self.etcd_url + "/health")[1].get("health") == "true", 60)
        self.timings["etcd"] = time.monotonic() - t
        t = time.monotonic()

        self.server = f"https://{self.bind_address}:{self.ports['apiserver']}"
        apiserver_args = [
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={self.bind_address}", f"--secure-port={self.ports['apiserver']}",
            f"--advertise-address={self.advertise_address}",
            "--endpoint-reconciler-type=" + ("none" if self.advertise_address.startswith("127.") else "lease"),
            f"--tls-cert-file={p}/apiserver.crt", f"--tls-private-key-file={p}/apiserver.key",
            f"--client-ca-file={p}/ca.crt",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p}/sa.pub", f"--service-account-signing-key-file={p}/sa.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
        ]
        if self.no_watch_cache:
            apiserver_args.append("--watch-cache-sizes=" + ",".join(f"{r}#0" for r in self.no_watch_cache))
        self._spawn("kube-apiserver", apiserver_args)
        self.kubeconfig = self._cert_kubeconfig("admin")
        self._ctx = ssl.create_default_context(cafile=self.ca_path)
        self._ctx.load_cert_chain(os.path.join(p, "admin.crt"), os.path.join(p, "admin.key"))
        self._wait("kube-apiserver", lambda: self.api("GET", "/readyz", timeout=5)[0] == 200, 120)
        self.timings["kube-apiserver"] = time.monotonic() - t
        t = time.monotonic()

        kcm = self._cert_kubeconfig("controller-manager")
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={kcm}", f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['controller-manager']}",
            f"--cert-dir={self.dir}/controller-manager-certs",
            f"--service-account-private-key-file={p}/sa.key", f"--root-ca-file={p}/ca.crt",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={p}/ca.crt", f"--cluster-signing-key-file={p}/ca.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false", "--controllers=*"])
        sched = self._cert_kubeconfig("scheduler")
        self._spawn("kube-scheduler", [
            f"--kubeconfig={sched}", f"--authentication-kubeconfig={sched}", f"--authorization-kubeconfig={sched}",
            "--bind-address=127.0.0.1", f"--secure-port={self.ports['scheduler']}",
            f"--cert-dir={self.dir}/scheduler-certs", "--leader-elect=false"])
        self._wait("kube-controller-manager", lambda: self._healthz(self.ports["controller-manager"]), 60)
        self._wait("kube-scheduler", lambda: self._healthz(self.ports["scheduler"]), 60)
        # the controllers work: the serviceaccount and root-ca-cert-publisher controllers filled
        # the default namespace (pods cannot be created there before its ServiceAccount exists)
        self._wait("kube-controller-manager", lambda: (
            self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200 and
            self.api("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0] == 200), 60)
        self.timings["controllers"] = time.monotonic() - t

    def _healthz(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # self-signed serving certs generated by the component
        return _http_json("GET", f"https://127.0.0.1:{port}/healthz", ctx=ctx, timeout=5)[0] == 200

    def _wait(self, name, ready, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for n, p in self.procs.items():
                if p.poll() is not None:
                    raise StartError(f"{n} exited with {p.returncode} while waiting for {name}:\n{self.log_tail(n)}")
            try:
                if ready():
                    return
            except (OSError, ValueError, AttributeError, TypeError):
                pass  # not up yet: refused, reset, TLS not ready, an empty or partial answer
            if time.monotonic() > deadline:
                raise StartError(f"{name} not ready after {timeout}s:\n{self.log_tail(name)}")
            time.sleep(0.2)

    # --- what tests use ---

    def logs(self, name):
        """The log file's text of a component (etcd, kube-apiserver, kube-controller-manager,
        kube-scheduler); '' when it has none."""
        try:
            with open(os.path.join(self.dir, "logs", f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, name, n=30):
        return "\n".join(self.logs(name).splitlines()[-n:]) if n > 0 else ""

    def kubectl(self, *args, input=None, timeout=120, kubeconfig=None, env=None):
        """Runs the built kubectl against this server (the admin kubeconfig unless another is
        given); returns the CompletedProcess (text), never raises on exit status."""
        e = dict(os.environ, HOME=self.dir, KUBECONFIG=kubeconfig or self.kubeconfig)
        e.update(env or {})
        return subprocess.run([os.path.join(BIN, "kubectl"), "--cache-dir", os.path.join(self.dir, "kubectl-cache"), *args],
                              input=input, capture_output=True, text=True, timeout=timeout, env=e)

    def api(self, method, path, body=None, ctype="application/json", timeout=30, token=None):
        """One request as the admin (or with a bearer token, still over the verified TLS):
        (status, decoded JSON body, or text when it is not JSON, or None when empty)."""
        ctx = self._ctx
        headers = {"Accept": "application/json"}
        if token:
            ctx = ssl.create_default_context(cafile=self.ca_path)
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = ctype
        return _http_json(method, self.server + path, body, headers=headers, ctx=ctx, timeout=timeout)

    def watch(self, path, seconds=2, timeout=30):
        """The events of one watch request (`path` without the watch parameters), read until the
        server ends it after `seconds`; an ERROR event (e.g. 410 Expired) ends it early."""
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.server}{path}{sep}watch=1&timeoutSeconds={seconds}",
                                     headers={"Accept": "application/json"})
        events = []
        with urllib.request.urlopen(req, context=self._ctx, timeout=timeout) as r:
            for line in r:
                if line.strip():
                    events.append(json.loads(line))
        return events

    def token(self, namespace, serviceaccount, seconds=3600):
        """A token for the ServiceAccount from the TokenRequest API (seconds >= 600, the API's
        minimum)."""
        st, obj = self.api("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{serviceaccount}/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"expirationSeconds": int(seconds)}})
        if st != 201 or not isinstance(obj, dict) or "token" not in obj.get("status", {}):
            raise RuntimeError(f"TokenRequest for {namespace}/{serviceaccount}: {st} {obj}")
        return obj["status"]["token"]

    def etcd_compact(self):
        """Compacts etcd at its current revision through its HTTP gateway (/v3/kv/range for the
        revision, /v3/kv/compaction with physical=true, so it has completed on return). Returns
        the revision."""
        st, r = _http_json("POST", self.etcd_url + "/v3/kv/range", {"key": base64.b64encode(b"/").decode(), "limit": 1})
        if st != 200:
            raise RuntimeError(f"etcd range: {st} {r}")
        rev = int(r["header"]["revision"])
        st, r = _http_json("POST", self.etcd_url + "/v3/kv/compaction", {"revision": str(rev), "physical": True}, timeout=60)
        if st != 200:
            raise RuntimeError(f"etcd compaction at {rev}: {st} {r}")
        return rev


def _http_json(method, url, body=None, headers=None, ctx=None, timeout=30):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _signal_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# Every started control plane until stopped: the exit paths stop them all.
_live = set()
_live_lock = threading.Lock()
_hooked = False


def _register(cp):
    global _hooked
    with _live_lock:
        _live.add(cp)
        if _hooked:
            return
        _hooked = True
    atexit.register(_stop_all)
    # SIGTERM ends Python without atexit; turn it into SystemExit when nobody else handles it
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(cp):
    with _live_lock:
        _live.discard(cp)


def _stop_all():
    with _live_lock:
        live = list(_live)
    for cp in live:
        cp.stop()


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
