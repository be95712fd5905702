"""Pushed profiles (issue 16 §2). Pyroscope's push API (push.v1.PusherService/Push) from its own Go
Connect client (github.com/grafana/pyroscope/api, Apache-2.0), protobuf and JSON: each profile
read back equal. And the real pyroscope-go SDK (v1.5.0, Apache-2.0; tools/push-client)
pushes CPU, heap, goroutine, mutex and block profiles of a running Go program to the collector's
POST /ingest, through a recording proxy that keeps every upload as the SDK sent it. Each upload
is then read back (/api/v1/profiles, /api/v1/profile?id=) and compared with `go tool pprof -raw`
of what was sent: equal, a heap upload as its inuse_* columns (type heap) and its alloc_*
columns (type allocs). The type each upload must have is worked out here from the SDK's own
sample_type_config part, not from the collector. Then the push's limits and refusals: without
credentials 401, a bad name, a body that is no profile, an unknown type, a time far ahead, a
body over 16 MiB: each a clear 4xx and nothing stored.

Part (tests/run.py collector:push): push."""
import email.parser
import email.policy
import http.client
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import base64
import gzip
from urllib.parse import parse_qs, urlsplit, quote

from harness import OUT, ROOT, TESTDATA, check, compare_raw, go_raw, RawProfile
from peers import Collector, free_port, http_req
from web_load import raw_exchange

CLIENT = os.path.join(ROOT, "bin", "push-client")
APP = "push-demo"


class RecordingProxy:
    """Forwards every request to the collector and keeps (path, headers, body) of each POST."""

    def __init__(self, target_port):
        self.uploads = []
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "x-scope-orgid")}
                c = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                c.request("POST", self.path, body=body, headers=hdrs)
                r = c.getresponse()
                answer = r.read()
                proxy.uploads.append((self.path, hdrs, body, r.status, answer))
                self.send_response(r.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                c.close()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def multipart_parts(ctype, body):
    """{part name: bytes} of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    return {p.get_param("name", header="content-disposition"): p.get_payload(decode=True) for p in msg.iter_parts()}


def expected_types(config):
    """What an upload must become, from the SDK's sample_type_config (none: its CPU profile):
    [(type, the sample types that record keeps)]."""
    if not config:
        return [("cpu", None)]
    keys = set(config)
    names = " ".join(v.get("display-name", "") for v in config.values())
    if keys & {"inuse_objects", "inuse_space", "alloc_objects", "alloc_space"}:
        return [("heap", ("inuse_objects", "inuse_space")), ("allocs", ("alloc_objects", "alloc_space"))]
    if "goroutine" in keys:
        return [("goroutine", None)]
    if "mutex_" in names:
        return [("mutex", None)]
    if "block_" in names:
        return [("block", None)]
    return [("unknown", None)]


def project(raw, keep):
    """raw (RawProfile) with only the sample types named in keep, as the stored record holds."""
    if keep is None:
        return raw
    idx = [i for i, t in enumerate(raw.types) if t.split("/")[0] in keep]
    out = RawProfile.__new__(RawProfile)
    out.__dict__.update(raw.__dict__)
    out.types = [raw.types[i] for i in idx]
    out.default = raw.default if raw.default.split("/")[0] in keep else ""
    out.samples = {}
    for (vals, stack, labels), n in raw.samples.items():
        k = (tuple(vals[i] for i in idx), stack, labels)
        out.samples[k] = out.samples.get(k, 0) + n
    return out


def push(t):
    d = os.path.join(OUT, "push")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if not os.access(CLIENT, os.X_OK):
        t.tool("push: bin/push-client is built (make test-bins)", False, CLIENT)
        return
    users = os.path.join(d, "users")
    bc = subprocess.run(["htpasswd", "-nbB", "pusher", "s3cret"], capture_output=True, text=True)
    open(users, "w").write(bc.stdout.strip() + "\n")
    auth = {"Authorization": "Basic " + base64.b64encode(b"pusher:s3cret").decode()}
    c = Collector("monitors: []\n", extra_args=["--web-basic-auth-file", users], name="push")
    proxy = RecordingProxy(c.port)
    try:
        p = subprocess.run([CLIENT, "-server", f"http://127.0.0.1:{proxy.port}", "-app", APP, "-run", "4s",
                            "-upload-rate", "1s", "-user", "pusher", "-password", "s3cret"],
                           capture_output=True, text=True, timeout=120)
        t.tool("push: the pyroscope-go client ran and uploaded", p.returncode == 0 and len(proxy.uploads) >= 5,
               f"exit {p.returncode}, {len(proxy.uploads)} uploads; {p.stderr[-1500:]}")

        def get(path):
            st, body, _ = http_req("GET", c.url + path, headers=auth)
            return st, body

        def sdk_pushes_read_back_equal():
            out, seen, compared = [], {}, 0
            for i, (path, hdrs, body, status, answer) in enumerate(proxy.uploads):
                q = parse_qs(urlsplit(path).query)
                parts = multipart_parts(hdrs.get("Content-Type", ""), body)
                config = json.loads(parts["sample_type_config"]) if "sample_type_config" in parts else None
                sent = os.path.join(d, f"sent-{i}.pb.gz")
                open(sent, "wb").write(parts.get("profile", b""))
                frm, until = int(q["from"][0]), int(q["until"][0])
                end = max(frm, until)
                if status != 200:
                    out.append(f"upload {i} ({path[:120]}): {status} {answer[:200]!r}")
                    continue
                raw = go_raw(sent)
                for typ, keep in expected_types(config):
                    st, lst = get(f"/api/v1/profiles?type={typ}&service_name={APP}&limit=1000")
                    recs = [r for r in json.loads(lst)["data"] if r["endUnixNano"] == end] if st == 200 else []
                    want = project(raw, keep)
                    diffs = []
                    for r in recs:
                        if (typ, r["id"]) in seen:
                            continue
                        stp, prof = get(f"/api/v1/profile?id={r['id']}")
                        got_path = os.path.join(d, f"got-{typ}-{r['id']}.pb.gz")
                        open(got_path, "wb").write(prof)
                        diff = compare_raw(go_raw(got_path), want) if stp == 200 else f"download {stp}"
                        if not diff:
                            seen[(typ, r["id"])] = i
                            compared += 1
                            break
                        diffs.append(diff)
                    else:
                        out.append(f"upload {i} as {typ} (end {end}): no stored record equal among {len(recs)}: {diffs[:1]}")
                    # labels: the app, the SDK's tags; the session id and anything "__" dropped
                    st2, series = get(f"/api/v1/series?type={typ}&service_name={APP}")
                    labels = [e["labels"] for e in json.loads(series)["data"]] if st2 == 200 else []
                    if not labels or any(l.get("monitor") != APP or l.get("env") != "test" or l.get("region") != "eu-1"
                                         or l.get("endpoint") != "push" or any(k.startswith("__") for k in l) for l in labels):
                        out.append(f"{typ}: series labels {labels}")
            types = {typ for typ, _ in seen}
            for need in ("cpu", "heap", "allocs", "goroutine", "mutex", "block"):
                if need not in types:
                    out.append(f"no {need} upload read back")
            return not out and compared >= 6, f"{len(proxy.uploads)} uploads, {compared} records equal; " + "\n".join(out[:8])
        check(t, "collector push: what the pyroscope-go SDK pushed (cpu, heap, goroutine, mutex, block) reads back equal "
                 "under go tool pprof -raw, a heap upload as its inuse_* (heap) and alloc_* (allocs) columns", sdk_pushes_read_back_equal)

        def connect_pushes_read_back_equal():
            # Pyroscope's push API through its own Connect client (github.com/grafana/pyroscope/api),
            # protobuf gzip-compressed and protojson; what each must become is the API's
            # convention: process_cpu cpu, memory heap (cumulative: one record, all four columns;
            # marked __delta__="false": inuse_* as heap, alloc_* as allocs), goroutine, mutex.
            # sent_as (a label the client adds) -> [(type, the sample types kept)]
            want = {"process_cpu": [("cpu", None)], "memory": [("heap", None)], "goroutine": [("goroutine", None)],
                    "mutex": [("mutex", None)],
                    "memory-delta": [("heap", ("inuse_objects", "inuse_space")), ("allocs", ("alloc_objects", "alloc_space"))]}
            out, equal = [], 0
            for app, flags in (("connect-proto", ["-gzip"]), ("connect-json", ["-json"])):
                od = os.path.join(d, app)
                os.makedirs(od, exist_ok=True)
                r = subprocess.run([CLIENT, "-connect", "-server", c.url, "-app", app, "-out", od, "-user", "pusher",
                                    "-password", "s3cret", *flags], capture_output=True, text=True, timeout=120)
                if r.returncode != 0:
                    out.append(f"{app}: push-client exit {r.returncode}: {r.stderr[-500:]}")
                    continue
                for name, kinds in want.items():
                    for typ, keep in kinds:
                        st, lst = get(f"/api/v1/profiles?type={typ}&service_name={app}&sent_as={name}")
                        recs = json.loads(lst)["data"] if st == 200 else []
                        if len(recs) != 1:
                            out.append(f"{app} {name}: {len(recs)} {typ} records")
                            continue
                        stp, prof = get(f"/api/v1/profile?id={recs[0]['id']}")
                        got = os.path.join(od, f"got-{name}-{typ}.pb.gz")
                        open(got, "wb").write(prof)
                        diff = compare_raw(go_raw(got), project(go_raw(os.path.join(od, f"{name}.pb.gz")), keep)) if stp == 200 else f"download {stp}"
                        if diff:
                            out.append(f"{app} {name}: {diff}")
                        else:
                            equal += 1
                        if recs[0]["labels"].get("env") != "test" or any(k.startswith("__") for k in recs[0]["labels"]):
                            out.append(f"{app} {name}: labels {recs[0]['labels']}")
            # Connect's error envelope for what it cannot take
            bad = http_req("POST", c.url + "/push.v1.PusherService/Push", data=b"\x0a\xff\xff",
                           headers={**auth, "Content-Type": "application/proto"})
            j = json.loads(bad[1]) if bad[1].startswith(b"{") else {}
            if bad[0] != 400 or j.get("code") != "invalid_argument" or not j.get("message"):
                out.append(f"a malformed PushRequest: {bad[0]} {bad[1][:200]!r}")
            noauth = http_req("POST", c.url + "/push.v1.PusherService/Push", data=b"", headers={"Content-Type": "application/proto"})
            if noauth[0] != 401:
                out.append(f"without credentials: {noauth[0]}")
            # what Connect's unary protocol does not allow here: another content type, another
            # encoding, a gzip body that is not gzip
            for what, hdrs, body in (("text/plain", {"Content-Type": "text/plain"}, b"{}"),
                                     ("Content-Encoding: br", {"Content-Type": "application/proto", "Content-Encoding": "br"}, b""),
                                     ("a gzip body that is not gzip", {"Content-Type": "application/proto", "Content-Encoding": "gzip"},
                                      b"\x1f\x8b\x08\x00garbage")):
                st, b, _ = http_req("POST", c.url + "/push.v1.PusherService/Push", data=body, headers={**auth, **hdrs})
                jj = json.loads(b) if b.startswith(b"{") else {}
                if st != 400 or jj.get("code") != "invalid_argument":
                    out.append(f"{what}: {st} {b[:200]!r}")
            # a label name /ingest would refuse (a space in it)
            prof = open(os.path.join(TESTDATA, "prometheus", "cpu-1.pb.gz"), "rb").read()
            body = json.dumps({"series": [{"labels": [{"name": "service_name", "value": "connect-bad"}, {"name": "a b", "value": "1"}],
                                           "samples": [{"rawProfile": base64.b64encode(prof).decode()}]}]}).encode()
            badlabel = http_req("POST", c.url + "/push.v1.PusherService/Push", data=body, headers={**auth, "Content-Type": "application/json"})
            jb = json.loads(badlabel[1]) if badlabel[1].startswith(b"{") else {}
            stored = json.loads(get("/api/v1/series?service_name=connect-bad")[1])["data"]
            if badlabel[0] != 400 or jb.get("code") != "invalid_argument" or "label" not in jb.get("message", "") or stored:
                out.append(f"a label name with a space: {badlabel[0]} {badlabel[1][:200]!r}, {len(stored)} series stored")
            return not out and equal == 12, f"{equal} of 12 equal; " + "\n".join(out[:8])
        check(t, "collector push: Pyroscope's push API (push.v1.PusherService/Push) from its own Connect client, protobuf+gzip "
                 "and JSON: cpu, heap (cumulative: whole; marked delta: heap + allocs), goroutine and mutex read back equal under "
                 "go tool pprof -raw; a malformed "
                 "request, a bad label name, content type or encoding gets Connect's invalid_argument, none without credentials", connect_pushes_read_back_equal)

        def refusals():
            now = int(time.time())
            prof = open(os.path.join(TESTDATA, "prometheus", "cpu-1.pb.gz"), "rb").read()
            before = get(f"/api/v1/series?service_name=bad-app")[1]

            def post(query, body, headers=auth, ctype="application/octet-stream"):
                h = dict(headers)
                h["Content-Type"] = ctype
                st, b, _ = http_req("POST", c.url + "/ingest?" + query, data=body, headers=h, timeout=60)
                j = json.loads(b) if b.startswith(b"{") else {}
                return st, j.get("error", b[:200])
            ok_q = f"name=bad-app&from={now - 10}&until={now}"
            cases = [
                ("no credentials", post(ok_q, prof, headers={}), 401, ""),
                ("a name with an unclosed brace", post(f"name={quote('bad-app{env=x')}&from={now}", prof), 400, "closing"),
                ("a label key with a space inside", post(f"name={quote('bad-app{a b=1}')}", prof), 400, "label key"),
                ("no name", post(f"from={now}", prof), 400, "name: required"),
                ("a body that is no profile", post(ok_q, b"this is not a profile"), 400, "profile:"),
                ("a gzip of garbage", post(ok_q, gzip.compress(b"\xff" * 1000)), 400, "profile:"),
                ("a mutex profile without its kind", post(ok_q, open(os.path.join(TESTDATA, "prometheus", "mutex.pb.gz"), "rb").read()), 400, "mutex or a block"),
                ("an hour in the future", post(f"name=bad-app&from={now + 3600}&until={now + 3610}", prof), 400, "ahead"),
                ("format=trie", post(ok_q + "&format=trie", prof), 400, "only pprof"),
                ("from= in seconds past 2262", post(f"name=bad-app&from=9999999999", prof), 400, "2262"),
                ("from= before 2000", post(f"name=bad-app&from=100", prof), 400, "before the year 2000"),
                ("multipart without a boundary", post(ok_q, prof, ctype="multipart/form-data"), 400, "boundary"),
                # a part whose name is not quoted, and one with no Content-Disposition: no profile part
                ("a part name not quoted", post(ok_q, b"--XyZ123boundary\r\nContent-Disposition: form-data; name=profile\r\n\r\n" + prof +
                                                b"\r\n--XyZ123boundary--\r\n", ctype="multipart/form-data; boundary=XyZ123boundary"), 400, "no profile"),
                ("33 labels in the name", post("name=" + quote("bad-app{" + ",".join(f"k{i}=v" for i in range(33)) + "}"), prof),
                 400, "more than 32 labels"),
                ("a sample_type_config part over 64 KiB",
                 post(ok_q, b"--XyZ123boundary\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\n" + prof +
                      b"\r\n--XyZ123boundary\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n" +
                      b"{" + b" " * (65 << 10) + b"}\r\n--XyZ123boundary--\r\n", ctype="multipart/form-data; boundary=XyZ123boundary"),
                 413, "sample_type_config"),
                ("a part without Content-Disposition", post(ok_q, b"--XyZ123boundary\r\n\r\n" + prof + b"\r\n--XyZ123boundary--\r\n",
                                                            ctype="multipart/form-data; boundary=XyZ123boundary"), 400, "no profile"),
            ]
            # 17 MiB by Content-Length: 413 before the body is read (the client is still sending)
            line, _, _, sent = raw_exchange(c.port, f"POST /ingest?{ok_q} HTTP/1.1\r\nHost: c\r\nAuthorization: {auth['Authorization']}\r\n"
                                                    f"Content-Length: {17 << 20}\r\n\r\n".encode(), lambda: (b"\0" * 65536 for _ in range(272)))
            cases.append(("17 MiB", (int(line.split()[1]) if len(line.split()) > 1 else line, f"{sent} bytes sent"), 413, ""))
            # without credentials, 10 MiB announced: 401 before the body is read
            line, _, _, sent = raw_exchange(c.port, f"POST /ingest?{ok_q} HTTP/1.1\r\nHost: c\r\nContent-Length: {10 << 20}\r\n\r\n".encode(),
                                            lambda: (b"\0" * 65536 for _ in range(160)))
            st10 = int(line.split()[1]) if len(line.split()) > 1 else line
            cases.append(("no credentials, 10 MiB", (st10 if sent < (10 << 20) else f"{st10} only after the whole body", f"{sent} bytes sent"), 401, ""))
            # eight pushes of 16 MiB announced and stalled hold the 128 MiB all pushes may: a ninth gets 503
            import socket
            held = []
            for _ in range(8):
                sk = socket.create_connection(("127.0.0.1", c.port), timeout=5)
                sk.sendall(f"POST /ingest?{ok_q} HTTP/1.1\r\nHost: c\r\nAuthorization: {auth['Authorization']}\r\n"
                           f"Content-Length: {16 << 20}\r\n\r\n".encode() + b"\0" * 1000)
                held.append(sk)
            time.sleep(0.5)
            ninth = post(ok_q, prof)
            for sk in held:
                sk.close()
            time.sleep(0.5)
            cases.append(("a ninth 16 MiB push while eight are held", ninth, 503, "in flight"))
            after = get(f"/api/v1/series?service_name=bad-app")[1]
            good = post(ok_q, prof)
            wrong = [f"{n}: {got} (want {st} with {frag!r})" for n, got, st, frag in cases if got[0] != st or frag not in str(got[1])]
            stored = json.loads(get("/api/v1/series?service_name=bad-app")[1])["data"]
            ok = not wrong and json.loads(before)["data"] == [] and json.loads(after)["data"] == [] and good[0] == 200 and len(stored) == 1
            return ok, "; ".join(wrong) + f" | series before {before[:80]!r}, after refusals {after[:80]!r}, a good push {good}, then {len(stored)} series"
        check(t, "collector push: refused with a clear 4xx and nothing stored: no credentials (401, before a 10 MiB body is "
                 "read), bad names, a body that is no profile, an ambiguous type, times out of range, another format, bad "
                 "multipart, 17 MiB (413), a ninth 16 MiB push while eight are held (503); a good push then stores",
              refusals)
    finally:
        proxy.stop()
        c.stop()
        c.cleanup()
        shutil.rmtree(d, ignore_errors=True)


PARTS = {"push": push}
