"""Processes the collector tests run: the collector itself, the repo's Go demo target, Debian's
prometheus, and a fault server that misbehaves in every way a scrape target can."""
import gzip
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import ROOT, TESTDATA, free_port, make_profile, wait_for


def wait_http(url, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False


def http_req(method, url, data=None, timeout=30, headers=None):
    """(status, body bytes, headers) without raising on HTTP errors."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def parse_metrics(body):
    """{name or name{labels}: value} of a Prometheus text answer (bytes)."""
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


# Every peer and collector started here, so that what a failed part leaves running is stopped:
# a part starts its peers and its collector before its try block, and a collector that does not
# get ready raises there, past the finally that would stop them.
_started = []


def stop_leftovers():
    """Stops every peer still running and every collector not yet cleaned up (each stop() is
    harmless on what already stopped). The runner calls it after each suite and the collector
    suite after each part, before it reads the collectors' logs."""
    while _started:
        x = _started.pop()
        try:
            if not isinstance(x, Collector):
                x.stop()
            elif not getattr(x, "cleaned", False):
                x.stop()
                x.cleanup()
        except Exception:  # noqa: BLE001 - one that cannot be stopped (never started) must not keep the rest running
            pass


class DemoTarget:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([os.path.join(ROOT, "bin", "demo-target"), "-addr", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _started.append(self)
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_http(self.url + "/debug/pprof/"):
            raise RuntimeError("demo-target did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Prometheus:
    """Debian's prometheus on loopback: a real third-party Go program serving /debug/pprof."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{self.port}']\n")
        self.proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _started.append(self)
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_http(self.url + "/debug/pprof/", 30):
            raise RuntimeError("prometheus did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """The base of every peer's handler: HTTP/1.1 keep-alive (as Go's servers answer), no
    request log on stderr, and send_body for an answer with its Content-Length."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_body(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FaultHandler(QuietHandler):
    """Misbehaves by the first path segment. Every request is logged in the server's `hits`
    under its first two segments ("ok/steady"), with the monotonic time it arrived, so tests
    measure a target's schedule where it is seen: at the peer."""

    def do_GET(self):
        parts = self.path.split("?")[0].split("/")
        kind = parts[1]
        self.server.log(parts[1] + ("/" + parts[2] if len(parts) > 2 and parts[2] != "debug" else ""), self)
        try:
            if kind == "ok":
                self.send_body(200, FaultHandler.good)
            elif kind == "gz-ok":
                # a valid profile that a proxy compressed once more for the transport
                self.send_body(200, gzip.compress(FaultHandler.good), [("Content-Encoding", "gzip")])
            elif kind == "br":
                self.send_body(200, FaultHandler.good, [("Content-Encoding", "br")])
            elif kind == "fail":
                self.send_body(500, b"boom: failing on purpose\n")
            elif kind == "redirect":
                # a redirect to a path that would answer with a valid profile
                self.send_body(302, b"", [("Location", f"/ok/redirected-{parts[2]}/debug/pprof/heap")])
            elif kind == "slow":
                # a good profile after 2 s: a scrape that is in flight for a while
                time.sleep(2)
                self.send_body(200, FaultHandler.good)
            elif kind == "hang-headers":
                time.sleep(30)
            elif kind == "hang-body":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b" + b"x" * 100)
                self.wfile.flush()
                time.sleep(30)
            elif kind in ("500", "404"):
                self.send_body(int(kind), b"boom: internal failure\n" if kind == "500" else b"404 page not found\n")
            elif kind == "busy":
                time.sleep(0.05)
                self.send_body(500, b"Could not enable CPU profiling: cpu profiling already in use\n")
            elif kind == "garbage":
                self.send_body(200, os.urandom(5000))
            elif kind in ("bomb", "bomb-encoding"):
                self.send_body(200, FaultHandler.bomb, [("Content-Encoding", "gzip")] if kind == "bomb-encoding" else ())
            elif kind == "big":
                self.send_body(200, b"\0" * (200 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass


# 200 MiB of zeros, about 200 KiB compressed: inflating it would pass every cap
FaultHandler.bomb = gzip.compress(b"\0" * (200 << 20), compresslevel=9)
FaultHandler.good = open(os.path.join(TESTDATA, "gotarget", "heap.pb.gz"), "rb").read()


class QuietServer(http.server.ThreadingHTTPServer):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.hits = {}
        self.hits_lock = threading.Lock()

    def handle_error(self, request, client_address):
        pass  # the collector hangs up on hanging peers on purpose

    def log(self, key, handler):
        with self.hits_lock:
            self.hits.setdefault(key, []).append((time.monotonic(), dict(handler.headers)))

    def times(self, key):
        """Arrival times (monotonic seconds) of the requests logged under key."""
        with self.hits_lock:
            return [h[0] for h in self.hits.get(key, [])]


class PeerServer:
    """A QuietServer on 127.0.0.1 (a port of its own) answering with `handler` from a daemon
    thread, one thread per connection. With `ssl_context` it speaks TLS. The one way the tests
    run an HTTP peer of their own: FaultServer, SeriesServer, StaticServer and AuthTLSServer
    are this with their handlers."""

    def __init__(self, handler, ssl_context=None, name=None):
        self.srv = QuietServer(("127.0.0.1", 0), handler)
        self.srv.daemon_threads = True
        self.srv.name = name
        if ssl_context:
            self.srv.socket = ssl_context.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        _started.append(self)

    def times(self, key):
        return self.srv.times(key)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class FaultServer(PeerServer):
    def __init__(self):
        super().__init__(FaultHandler)


class StaticServer(PeerServer):
    """Serves one body for every GET."""

    def __init__(self, body):
        class H(QuietHandler):
            def do_GET(self):
                self.send_body(200, body)
        super().__init__(H)


class SeriesServer(PeerServer):
    """Serves heap-type profiles with values we choose, so aggregations can be checked with
    arithmetic: a request for /<series>/debug/pprof/<type> gets a profile with one sample of
    function main.<series>, value value_fn(series, n) for the series' n-th request (n from 1),
    and time_nanos = the wall time it was served, which the collector keeps as the record's
    end. Every answer is logged: served[series] = [(time_nanos, value)]."""

    def __init__(self, value_fn):
        outer = self
        self.served = {}
        self.lock = threading.Lock()

        class H(QuietHandler):
            def do_GET(self):
                series = self.path.split("/")[1]
                with outer.lock:
                    n = len(outer.served.get(series, [])) + 1
                    now = time.time_ns()
                    v = value_fn(series, n)
                    outer.served.setdefault(series, []).append((now, v))
                body = make_profile([("inuse_space", "bytes")], [([v], [f"main.{series}", "main.main"], None)],
                                    time_nanos=now, period_type=("space", "bytes"), period=524288)
                self.send_body(200, body)

        super().__init__(H)

    def log(self, series):
        with self.lock:
            return list(self.served.get(series, []))


class Collector:
    """bin/collector on loopback with a config we write. `Collector.binary` picks the build
    (the ASan+UBSan one for collector-asan); every instance is kept in `Collector.instances` so
    its log can be checked for sanitizer reports after it stopped."""
    binary = os.path.join(ROOT, "bin", "collector")
    env = None
    instances = []

    def __init__(self, config_text, data_dir=None, extra_args=(), name="collector", env=None):
        self.name = name
        self.env_extra = dict(env or {})
        self.returncodes = []
        Collector.instances.append(self)
        _started.append(self)
        self.dir = tempfile.mkdtemp(prefix=f"{name}-")
        self.config = os.path.join(self.dir, "config.yaml")
        self.data = data_dir or os.path.join(self.dir, "data")
        self.port = free_port()
        self.log = os.path.join(self.dir, "collector.log")
        self.write_config(config_text)
        self.extra = list(extra_args)
        self.start()

    def write_config(self, text, atomic=False):
        if atomic:  # as a ConfigMap update: write aside, rename over
            tmp = self.config + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, self.config)
        else:
            with open(self.config, "w") as f:
                f.write(text)

    def start(self):
        self.logf = open(self.log, "a")
        env = dict(os.environ, **(Collector.env or {}), **self.env_extra)
        self.proc = subprocess.Popen([Collector.binary, "-c", self.config, "-d", self.data,
                                      "-p", str(self.port), "--web-listen-address", "127.0.0.1", "-l", "debug", *self.extra],
                                     stdout=self.logf, stderr=self.logf, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        # ready: /readyz answers 200 (not just any answer)
        end = time.time() + 30
        while time.time() < end:
            try:
                if http_req("GET", self.url + "/readyz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("collector did not get ready: " + open(self.log).read()[-2000:])

    def get_json(self, path):
        st, body, _ = http_req("GET", self.url + path)
        return st, json.loads(body) if body.startswith(b"{") else body

    def targets(self):
        return self.get_json("/api/v1/targets")[1]["data"]

    def targets_by_key(self):
        """{(monitor, type): target} from one /api/v1/targets answer."""
        return {(t["monitor"], t["type"]): t for t in self.targets()}

    def target(self, monitor, type_):
        return self.targets_by_key().get((monitor, type_))

    def metrics(self):
        """{name or name{labels}: value} of one /metrics answer."""
        return parse_metrics(http_req("GET", self.url + "/metrics")[1])

    def metric(self, name):
        """The first sample of metric `name` (any labels), or None."""
        return next((v for k, v in self.metrics().items() if k == name or k.startswith(name + "{")), None)

    def wait_for(self, pred, timeout=30, step=0.25):
        """True once pred() is (harness.wait_for), False after timeout."""
        return wait_for(pred, timeout, step) is not None

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.returncodes.append(self.proc.returncode)
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode

    def log_text(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def cleanup(self):
        # the log outlives the data: the sanitizer check reads it after the part ends
        self.final_log = self.log_text()
        self.cleaned = True
        shutil.rmtree(self.dir, ignore_errors=True)


class AuthTLSServer:
    """Servers that answer with a real profile only when the request carries the expected
    credentials and header: HTTPS (own CA; certificate for pprof.test only, not for the address
    it listens on), HTTPS that also requires a client certificate from that CA (mtls), and
    plain HTTP. Each request is logged in `requests`: (server, SNI, Host, X-Case, Authorization,
    client certificate CN). `tokens` (the bearer tokens accepted) may change while it runs."""

    def __init__(self, profile_path, token, user, password):
        import base64
        import ssl
        self.dir = tempfile.mkdtemp(prefix="tls-")
        self.servers = []
        _started.append(self)
        d = self.dir
        run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=test-ca")
        for name, subj, ext in (("srv", "/CN=pprof.test", "subjectAltName=DNS:pprof.test\n"),
                                ("client", "/CN=pprof-collector", "extendedKeyUsage=clientAuth\n"),
                                ("other", "/CN=other.test", "subjectAltName=DNS:other.test\n")):
            run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
            open(os.path.join(d, f"{name}.ext"), "w").write(ext)
            run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        self.ca = os.path.join(d, "ca.pem")
        self.client_cert, self.client_key = os.path.join(d, "client.pem"), os.path.join(d, "client.key")
        body = open(profile_path, "rb").read()
        self.tokens = {token}
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        outer = self
        self.requests = []
        self.lock = threading.Lock()

        class H(QuietHandler):
            def do_GET(self):
                auth = self.headers.get("Authorization", "")
                ok = self.headers.get("X-Team") == "core" and (auth in {f"Bearer {x}" for x in outer.tokens} or auth == basic)
                conn = self.connection
                cn = None
                if hasattr(conn, "getpeercert"):
                    cert = conn.getpeercert()
                    cn = dict(x[0] for x in cert["subject"]).get("commonName") if cert else None
                with outer.lock:
                    outer.requests.append({"server": self.server.name, "sni": getattr(conn, "sni", None),
                                           "host": self.headers.get("Host", ""), "case": self.headers.get("X-Case", ""),
                                           "auth": auth, "client_cn": cn, "ok": ok})
                self.send_body(200 if ok else 401, body if ok else b"unauthorized\n")

        def sni_seen(sslsock, server_name, ctx):
            sslsock.sni = server_name  # read back by the handler for the request on this connection

        def tls_context(require_client_cert):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
            ctx.sni_callback = sni_seen
            if require_client_cert:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(self.ca)
            return ctx

        self.servers += [PeerServer(H, tls_context(False), "https"), PeerServer(H, tls_context(True), "mtls"),
                         PeerServer(H, None, "plain")]
        self.tls_port, self.mtls_port, self.plain_port = (p.port for p in self.servers)

    def seen(self, case):
        """The requests that carried X-Case: case."""
        with self.lock:
            return [r for r in self.requests if r["case"] == case]

    def stop(self):
        for p in self.servers:
            p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
