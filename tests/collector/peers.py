"""Processes the collector tests run: the collector itself, the repo's Go demo target, Debian's
prometheus, and a fault server that misbehaves in every way a scrape target can."""
import gzip
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import ROOT, free_port


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


def http_req(method, url, data=None, timeout=30):
    """(status, body bytes, headers) without raising on HTTP errors."""
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


class DemoTarget:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([os.path.join(ROOT, "bin", "demo-target"), "-addr", f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_http(self.url + "/debug/pprof/", 30):
            raise RuntimeError("prometheus did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        kind = self.path.split("/")[1]
        try:
            if kind == "hang-headers":
                time.sleep(30)
            elif kind == "hang-body":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b" + b"x" * 100)
                self.wfile.flush()
                time.sleep(30)
            elif kind in ("500", "404"):
                body = b"boom: internal failure\n" if kind == "500" else b"404 page not found\n"
                self.send_response(int(kind))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind == "busy":
                body = b"Could not enable CPU profiling: cpu profiling already in use\n"
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind == "garbage":
                body = os.urandom(5000)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind in ("bomb", "bomb-encoding"):
                body = FaultHandler.bomb
                self.send_response(200)
                if kind == "bomb-encoding":
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind == "big":
                body = b"\0" * (200 * 1024)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# 200 MiB of zeros, about 200 KiB compressed: inflating it would pass every cap
FaultHandler.bomb = gzip.compress(b"\0" * (200 << 20), compresslevel=9)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the collector hangs up on hanging peers on purpose


class FaultServer:
    def __init__(self):
        self.srv = QuietServer(("127.0.0.1", 0), FaultHandler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()


class Collector:
    def __init__(self, config_text, data_dir=None, extra_args=(), name="collector"):
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
        self.proc = subprocess.Popen([os.path.join(ROOT, "bin", "collector"), "-c", self.config, "-d", self.data,
                                      "-p", str(self.port), "--web-listen-address", "127.0.0.1", "-l", "debug", *self.extra],
                                     stdout=self.logf, stderr=self.logf)
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_http(self.url + "/readyz"):
            raise RuntimeError("collector did not start: " + open(self.log).read()[-2000:])

    def get_json(self, path):
        st, body, _ = http_req("GET", self.url + path)
        return st, json.loads(body) if body.startswith(b"{") else body

    def targets(self):
        return self.get_json("/api/v1/targets")[1]["data"]

    def target(self, monitor, type_):
        for t in self.targets():
            if t["monitor"] == monitor and t["type"] == type_:
                return t
        return None

    def metric(self, name):
        st, body, _ = http_req("GET", self.url + "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_for(self, pred, timeout=30, step=0.25):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if pred():
                    return True
            except Exception:
                pass
            time.sleep(step)
        return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class AuthTLSServer:
    """HTTPS (own CA, certificate for pprof.test) and plain HTTP servers that serve a real profile
    only when the request carries the expected credentials and header."""

    def __init__(self, profile_path, token, user, password):
        import base64
        import ssl
        self.dir = tempfile.mkdtemp(prefix="tls-")
        d = self.dir
        run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=test-ca")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=pprof.test")
        open(os.path.join(d, "ext"), "w").write("subjectAltName=DNS:pprof.test\n")
        run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "srv.pem", "-days", "2", "-extfile", "ext")
        self.ca = os.path.join(d, "ca.pem")
        body = open(profile_path, "rb").read()
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                auth = self.headers.get("Authorization", "")
                ok = self.headers.get("X-Team") == "core" and (auth == f"Bearer {token}" or auth == basic)
                outer.hosts.append(self.headers.get("Host", ""))
                data = body if ok else b"unauthorized\n"
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.hosts = []
        self.https = QuietServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
        self.https.socket = ctx.wrap_socket(self.https.socket, server_side=True)
        self.tls_port = self.https.server_address[1]
        self.plain = QuietServer(("127.0.0.1", 0), H)
        self.plain_port = self.plain.server_address[1]
        for srv in (self.https, self.plain):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop(self):
        self.https.shutdown()
        self.plain.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)
