"""A fault-injecting HTTPS proxy in front of the real API server, for the operator's tests.

The operator talks to the proxy (TLS with a serving certificate from the cluster's CA) with a
bearer token, which the proxy passes on unchanged; the proxy talks to the API server over TLS,
verifying it with the same CA, and presents no client certificate, so the API server sees the
operator's own identity and enforces its RBAC. Responses, watch streams included, are streamed
back as they arrive.

Faults, set from the test while the proxy runs (a request matches by method and a regex on
its path with the query; `watch` True/False limits a fault to watch requests or to the rest):
  - fail(n, status, ...): the next n matching requests get `status` (429 with Retry-After: 1,
    410, 500, ...) with a Kubernetes Status body, not forwarded;
  - delay(seconds, ..., count=None): matching requests (the next `count` of them, or all) are
    held that long before being forwarded;
  - inject(path, line=... | pad_bytes=..., count=1): on matching watch streams, the next event
    is replaced by `line` (say, not JSON) or by itself padded with pad_bytes of filler (past a
    client's event limit); the event is lost, as a corrupt stream would lose it;
  - drop_watches(): every open watch stream is cut (the TCP connection is closed mid-stream);
  - counts: requests forwarded per (method, path without query), for benchmarks.
The proxy knows nothing about Kubernetes beyond that Status body."""
import http.client
import http.server
import json
import re
import select
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultProxy:
    def __init__(self, upstream, ca_file, cert_file, key_file):
        u = urllib.parse.urlparse(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.up_ctx = ssl.create_default_context(cafile=ca_file)
        self.lock = threading.Lock()
        self.faults = []  # [remaining, status, method, regex, watch]
        self.delays = []  # [seconds, method, regex, remaining or None, watch]
        self.injects = []  # [remaining, regex, line or None, pad bytes]
        self.watches = set()
        self.counts = {}
        self.injected = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # ---- controls ----

    def fail(self, n, status, method=None, path=r".*", watch=None):
        with self.lock:
            self.faults.append([n, status, method, re.compile(path), watch])

    def delay(self, seconds, method=None, path=r".*", count=None, watch=None):
        with self.lock:
            self.delays.append([seconds, method, re.compile(path), count, watch])

    def inject(self, path, line=None, pad_bytes=0, count=1):
        with self.lock:
            self.injects.append([count, re.compile(path), line, pad_bytes])

    def clear(self):
        with self.lock:
            self.faults.clear()
            self.delays.clear()
            self.injects.clear()

    def drop_watches(self):
        with self.lock:
            socks = list(self.watches)
        for pair in socks:  # (client connection, upstream socket): both ends, so neither thread waits
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(socks)

    def reset_counts(self):
        with self.lock:
            self.counts = {}

    def stop(self):
        self.drop_watches()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- the proxy ----

    @staticmethod
    def _matches(method, regex, watch, h, is_watch):
        return (method is None or method == h.command) and regex.search(h.path) and (watch is None or watch == is_watch)

    def _take_inject(self, path):
        with self.lock:
            for f in self.injects:
                if f[0] > 0 and f[1].search(path):
                    f[0] -= 1
                    return f
        return None

    def _handle(self, h):
        path_only = h.path.split("?", 1)[0]
        is_watch = bool(re.search(r"[?&]watch=(1|true)(&|$)", h.path))
        with self.lock:
            fault = None
            for f in self.faults:
                if f[0] > 0 and self._matches(f[2], f[3], f[4], h, is_watch):
                    f[0] -= 1
                    fault = f[1]
                    self.injected += 1
                    break
            wait = 0
            for d in self.delays:
                if (d[3] is None or d[3] > 0) and self._matches(d[1], d[2], d[4], h, is_watch):
                    wait += d[0]
                    if d[3] is not None:
                        d[3] -= 1
            key = (h.command, path_only)
            self.counts[key] = self.counts.get(key, 0) + 1
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if fault:
            msg = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": fault,
                              "reason": {429: "TooManyRequests", 410: "Expired"}.get(fault, "InternalError"),
                              "message": f"injected by the test's fault proxy ({fault})"}).encode()
            h.send_response(fault)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(msg)))
            if fault == 429:
                h.send_header("Retry-After", "1")
            h.end_headers()
            h.wfile.write(msg)
            return
        if wait:
            time.sleep(wait)
        up = http.client.HTTPSConnection(self.up_host, self.up_port, context=self.up_ctx, timeout=600)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection", "content-length")}
            up.request(h.command, h.path, body=body, headers=headers)
            r = up.getresponse()
            h.send_response(r.status)
            chunked = r.getheader("Content-Length") is None
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    h.send_header(k, v)
            if chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", r.getheader("Content-Length"))
            h.end_headers()
            pair = (h.connection, up.sock)
            done = threading.Event()
            if is_watch:
                with self.lock:
                    self.watches.add(pair)

                def client_gone():
                    # a watching client sends nothing after its request: the socket turning
                    # readable means it closed, so the upstream stream is closed too (as the API
                    # server ends a watch whose client left); otherwise this thread would serve a
                    # dead watch until the next event and take faults meant for live ones
                    # either socket may be closed under us once the stream ends (fileno -1,
                    # sock None): that is the end of this watcher, not an error
                    while not done.is_set():
                        try:
                            if not select.select([h.connection], [], [], 0.2)[0]:
                                continue
                            up.sock.shutdown(socket.SHUT_RDWR)
                        except (OSError, ValueError, AttributeError):
                            pass
                        return
                threading.Thread(target=client_gone, daemon=True).start()

            def send(data):
                if chunked:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    h.wfile.write(data)
                h.wfile.flush()
            pending = b""  # a watch stream goes out event by event (a line each), so one can be replaced
            try:
                while True:
                    data = r.read1(65536) if chunked else r.read(65536)
                    if not data:
                        break
                    if not is_watch or not chunked:
                        send(data)
                        continue
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        f = self._take_inject(h.path)
                        if f and f[2] is not None:
                            line = f[2].encode() if isinstance(f[2], str) else f[2]
                        elif f:
                            ev = json.loads(line)
                            ev["object"]["padding"] = "x" * f[3]
                            line = json.dumps(ev).encode()
                        send(line + b"\n")
                if pending:
                    send(pending)
                if chunked:
                    h.wfile.write(b"0\r\n\r\n")
            finally:
                done.set()
                if is_watch:
                    with self.lock:
                        self.watches.discard(pair)
        except (OSError, http.client.HTTPException):
            # a stream cut by drop_watches (either end) or by the API server ending it
            h.close_connection = True
        finally:
            up.close()
