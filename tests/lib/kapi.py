"""A minimal Kubernetes API client for the test tools (stdlib only): JSON requests and watch
streams over TLS with a client certificate or a bearer token. Thread-safe: every request opens
its own connection (everything runs on loopback, so that costs little and no connection state
is shared between threads)."""
import http.client
import json
import ssl
import urllib.parse


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {str(body)[:500]}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, server, ca_file, cert_file=None, key_file=None, token=None):
        u = urllib.parse.urlparse(server)
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            self.ctx.load_cert_chain(cert_file, key_file)
        self.token = token

    def _conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def _headers(self, ctype):
        h = {"Accept": "application/json", "User-Agent": "pprof-controller-tests"}
        if ctype:
            h["Content-Type"] = ctype
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def request(self, method, path, body=None, ctype="application/json", timeout=30):
        """(status, parsed JSON or text). Never raises on HTTP status; raises on I/O errors."""
        c = self._conn(timeout)
        try:
            data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
            c.request(method, path, body=data, headers=self._headers(ctype if body is not None else None))
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, raw.decode(errors="replace")
        finally:
            c.close()

    def must(self, method, path, body=None, ctype="application/json", ok=(200, 201, 202)):
        st, obj = self.request(method, path, body, ctype)
        if st not in ok:
            raise ApiError(st, obj)
        return obj

    def get(self, path):
        """The object, or None on 404."""
        st, obj = self.request("GET", path)
        if st == 404:
            return None
        if st != 200:
            raise ApiError(st, obj)
        return obj

    def watch(self, path, stop, idle_s=3):
        """Yields (type, object) from a watch stream until it ends, `stop` (a threading.Event) is
        set, or nothing arrives for idle_s seconds (a socket that timed out cannot be read again,
        so the stream just ends: the caller watches again from the last resourceVersion it saw,
        which BOOKMARK events keep fresh). path must not carry watch=1 yet; raises ApiError for an
        HTTP error (410 Gone included) and OSError for I/O errors."""
        sep = "&" if "?" in path else "?"
        c = self._conn(timeout=idle_s)
        try:
            c.request("GET", f"{path}{sep}watch=1&allowWatchBookmarks=true", headers=self._headers(None))
            r = c.getresponse()
            if r.status != 200:
                raise ApiError(r.status, r.read().decode(errors="replace"))
            while not stop.is_set():
                try:
                    line = r.readline()
                except TimeoutError:
                    return
                if not line:
                    return
                ev = json.loads(line)
                yield ev.get("type"), ev.get("object") or {}
        finally:
            c.close()
