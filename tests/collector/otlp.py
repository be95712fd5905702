"""OTLP profiles (issue 16 §3): POST /v1development/profiles. Real Go profiles (prometheus' CPU,
heap, goroutine, mutex and block) are turned into OTLP profiles by tools/otlp-client with
OpenTelemetry's own data model library (go.opentelemetry.io/collector/pdata, Apache-2.0) and sent
as protobuf, protobuf+gzip and JSON, directly and through a real OpenTelemetry Collector built
with its builder (tools/otelcol: the OTLP receiver, the otlphttp exporter). Each stored record is
read back and compared with `go tool pprof -raw` of the original file: the same samples (values,
stacks of resolved locations, labels), locations, sample types and header, and the mappings its
locations use in the original's order (OTLP carries no unused mapping and no has_* flag beyond
what its frames show). Labels come from the resource's attributes. Then what OTLP/HTTP must
refuse: without credentials, another content type, bodies that are not the message, indexes out
of their tables, nesting too deep, too many profiles, 17 MiB: a clear 4xx with a google.rpc.Status
and nothing stored; a profile of a type the collector does not know is rejected alone (partial
success) while the others of the request are stored.

Part (tests/run.py collector:otlp): otlp."""
import base64
import json
import os
import shutil
import subprocess
import time

from harness import OUT, ROOT, TESTDATA, check, compare_raw, field, go_raw, varint
from peers import Collector, free_port, http_req
from web_load import raw_exchange

CLIENT = os.path.join(ROOT, "bin", "otlp-client")
OTELCOL = os.path.join(ROOT, "bin", "otelcol")
# what each file must become: (file, stored type, pprof.profile.kind attribute or None); the
# mutex and block profiles are the demo target's (prometheus' have no samples)
FILES = [("prometheus/cpu-1.pb.gz", "cpu", None), ("prometheus/heap.pb.gz", "heap", None),
         ("prometheus/goroutine.pb.gz", "goroutine", None), ("gotarget/mutex.pb.gz", "mutex", "mutex"),
         ("gotarget/block.pb.gz", "block", "block")]
PROM = TESTDATA


def used_mappings(raw):
    """raw with only the mappings its locations use, in their order (OTLP carries no other)."""
    used = {m for (_, m, _, _) in raw.locations.values() if m is not None}
    raw.mappings = {k: v for k, v in raw.mappings.items() if v in used}
    return raw


def without_flags(raw):
    """raw with each mapping's text without its [FN]/[FL]/[LN]/[IN] flags."""
    import re
    strip = lambda m: re.sub(r"( ?\[(FN|FL|LN|IN)\])+\s*$", "", m).rstrip() if m else m
    raw.mappings = {k: strip(v) for k, v in raw.mappings.items()}
    raw.locations = {k: (a, strip(m), f, ls) for k, (a, m, f, ls) in raw.locations.items()}
    raw.samples = {(v, tuple((a, strip(m), f, ls) for (a, m, f, ls) in stack), lb): n for (v, stack, lb), n in raw.samples.items()}
    return raw


def send(server, files, service, flags, auth, attrs=(), kind=None):
    args = [CLIENT, "-server", server, "-service", service, "-user", auth[0], "-password", auth[1], *flags]
    for f in files:
        args += ["-in", os.path.join(PROM, f)]
    if kind:  # first: the resource's other attributes follow it (a reader must not lose it to them)
        args += ["-attr", f"pprof.profile.kind={kind}"]
    for a in attrs:
        args += ["-attr", a]
    return subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=120)


def otlp(t):
    d = os.path.join(OUT, "otlp")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if not os.access(CLIENT, os.X_OK):
        t.tool("otlp: bin/otlp-client is built (make test-bins)", False, CLIENT)
        return
    users = os.path.join(d, "users")
    bc = subprocess.run(["htpasswd", "-nbB", "otel", "s3cret"], capture_output=True, text=True)
    open(users, "w").write(bc.stdout.strip() + "\n")
    auth = {"Authorization": "Basic " + base64.b64encode(b"otel:s3cret").decode()}
    c = Collector("monitors: []\n", extra_args=["--web-basic-auth-file", users], name="otlp")
    relay = None
    try:
        def get(path):
            st, body, _ = http_req("GET", c.url + path, headers=auth)
            return st, body

        def read_back(service, label_check=None):
            """[problems] comparing every stored record of service with its original file."""
            out, equal = [], 0
            for f, typ, _ in FILES:
                st, lst = get(f"/api/v1/profiles?type={typ}&service_name={service}&limit=100")
                recs = json.loads(lst)["data"] if st == 200 else []
                if len(recs) != 1:
                    out.append(f"{service} {f}: {len(recs)} {typ} records ({st})")
                    continue
                stp, prof = get(f"/api/v1/profile?id={recs[0]['id']}")
                got = os.path.join(d, f"got-{service}-{typ}.pb.gz")
                open(got, "wb").write(prof)
                want = without_flags(used_mappings(go_raw(os.path.join(PROM, f))))
                diff = compare_raw(without_flags(go_raw(got)), want) if stp == 200 else f"download {stp}"
                if diff:
                    out.append(f"{service} {f}: {diff}")
                else:
                    equal += 1
                if label_check:
                    bad = label_check(recs[0]["labels"])
                    if bad:
                        out.append(f"{service} {f}: labels {recs[0]['labels']}: {bad}")
            return out, equal

        def labels_ok(l):
            if l.get("service_name") != l.get("monitor") or l.get("endpoint") != "push":
                return "service_name, monitor, endpoint"
            if l.get("k8s_namespace_name") != "shop" or l.get("deployment_environment") != "test":
                return "the resource attributes k8s.namespace.name and deployment.environment as k8s_namespace_name, deployment_environment"
            if any(k.startswith("pprof") for k in l):
                return "pprof.profile.kind is not a label"
            return ""

        def direct():
            out, equal = [], 0
            for name, flags in (("otlp-proto", []), ("otlp-gzip", ["-gzip"]), ("otlp-json", ["-json"])):
                for f, typ, kind in FILES:
                    r = send(c.url, [f], name, flags, ("otel", "s3cret"),
                             attrs=("k8s.namespace.name=shop", "deployment.environment=test"), kind=kind)
                    if r.returncode != 0 or not r.stdout.startswith("status 200"):
                        out.append(f"{name} {f}: exit {r.returncode}: {r.stdout[:300]} {r.stderr[-300:]}")
                    elif "rejected" in r.stdout:
                        out.append(f"{name} {f}: partial success: {r.stdout[:300]}")
                o, e = read_back(name, labels_ok)
                out += o
                equal += e
            return not out and equal == 15, f"{equal} of 15 equal; " + "\n".join(out[:8])
        check(t, "collector otlp: OTLP profiles made by OpenTelemetry's pdata from prometheus' cpu, heap, goroutine, mutex and "
                 "block profiles, as protobuf, protobuf+gzip and JSON, read back equal under go tool pprof -raw (the mappings "
                 "their frames use, in order); resource attributes become labels (service.name -> service_name)", direct)

        def original_payload():
            r = send(c.url, ["prometheus/cpu-1.pb.gz"], "otlp-original", ["-original"], ("otel", "s3cret"))
            st, lst = get("/api/v1/profiles?type=cpu&service_name=otlp-original")
            recs = json.loads(lst)["data"] if st == 200 else []
            if r.returncode != 0 or len(recs) != 1:
                return False, f"exit {r.returncode} {r.stdout[:200]} {r.stderr[-300:]}; {len(recs)} records"
            stp, prof = get(f"/api/v1/profile?id={recs[0]['id']}")
            got = os.path.join(d, "got-original.pb.gz")
            open(got, "wb").write(prof)
            # the original pprof whole: every mapping, the flags, as go reads the file
            diff = compare_raw(go_raw(got), go_raw(os.path.join(PROM, "prometheus/cpu-1.pb.gz")))
            return not diff, diff
        check(t, "collector otlp: a profile carrying its original pprof (original_payload_format \"pprof\") is stored as that "
                 "pprof: equal to the file under go tool pprof -raw, unused mappings and flags included", original_payload)

        # ---- through a real OpenTelemetry Collector: otlp receiver -> otlphttp exporter -> us ----
        if os.access(OTELCOL, os.X_OK):
            rport = free_port()
            cfg = open(os.path.join(ROOT, "tools", "otelcol", "relay.yaml.in")).read()
            cfg = cfg.replace("@RECEIVER_PORT@", str(rport)).replace("@EXPORT_URL@", c.url)
            cfg = cfg.replace("@BASIC@", base64.b64encode(b"otel:s3cret").decode())
            cpath = os.path.join(d, "relay.yaml")
            open(cpath, "w").write(cfg)
            log = open(os.path.join(d, "otelcol.log"), "w")
            relay = subprocess.Popen([OTELCOL, "--config", cpath, "--feature-gates=service.profilesSupport"], stdout=log, stderr=log)

            def via_collector():
                deadline = time.time() + 30
                while time.time() < deadline:
                    try:
                        st, _, _ = http_req("POST", f"http://127.0.0.1:{rport}/v1development/profiles", data=b"",
                                            headers={"Content-Type": "application/x-protobuf"}, timeout=2)
                        break
                    except OSError:
                        time.sleep(0.3)
                out = []
                for f, typ, kind in FILES:
                    r = send(f"http://127.0.0.1:{rport}", [f], "otlp-relayed", [], ("otel", "s3cret"),
                             attrs=("k8s.namespace.name=shop", "deployment.environment=test"), kind=kind)
                    if r.returncode != 0:
                        out.append(f"{f}: exit {r.returncode}: {r.stdout[:300]} {r.stderr[-300:]}")
                time.sleep(1)
                o, equal = read_back("otlp-relayed", labels_ok)
                out += o
                return not out and equal == 5, f"{equal} of 5 equal; " + "\n".join(out[:8]) + \
                    "\n" + open(os.path.join(d, "otelcol.log")).read()[-1500:]
            check(t, "collector otlp: through a real OpenTelemetry Collector (its builder's build: otlp receiver, otlphttp "
                     "exporter): cpu, heap, goroutine, mutex and block read back equal under go tool pprof -raw", via_collector)
        else:
            t.tool("otlp: bin/otelcol is built (make test-bins)", False, OTELCOL)

        def refusals():
            def post(body, ctype="application/x-protobuf", headers=None, enc=None):
                h = dict(auth if headers is None else headers)
                h["Content-Type"] = ctype
                if enc:
                    h["Content-Encoding"] = enc
                st, b, hd = http_req("POST", c.url + "/v1development/profiles", data=body, headers=h, timeout=60)
                return st, b

            def status_msg(b, ctype="application/x-protobuf"):
                # google.rpc.Status: code (1), message (2)
                if ctype == "application/json":
                    try:
                        return json.loads(b).get("message", "")
                    except ValueError:
                        return ""
                i, msg = 0, ""
                while i < len(b):
                    tag = b[i]
                    i += 1
                    if tag == 0x08:
                        while b[i] & 0x80:
                            i += 1
                        i += 1
                    elif tag == 0x12:
                        n, sh = 0, 0
                        while True:
                            n |= (b[i] & 0x7F) << sh
                            sh += 7
                            i += 1
                            if not b[i - 1] & 0x80:
                                break
                        msg = b[i:i + n].decode(errors="replace")
                        i += n
                    else:
                        break
                return msg

            s = lambda x: x.encode()
            STRINGS = ("", "cpu", "nanoseconds", "main.f", "wallclock", "parsecs")

            def resource(service, sample_type=(1, 2), profiles=1, attr=b"", sample_attrs=()):
                """ResourceProfiles: service.name (and attr), one scope of `profiles` profiles of one
                sample each (stack 1, 10 ms, attribute indexes sample_attrs)"""
                sattr = field(2, b"".join(varint(a) for a in sample_attrs)) if sample_attrs else b""
                prof = field(1, field(1, sample_type[0]) + field(2, sample_type[1])) + \
                    field(2, field(1, 1) + sattr + field(4, 10000000)) + \
                    varint(3 << 3 | 1) + int(time.time_ns()).to_bytes(8, "little") + field(4, 10 ** 9)
                res = field(1, field(1, field(1, s("service.name")) + field(2, field(1, s(service)))) + attr)
                return field(1, res + field(2, b"".join(field(2, prof) for _ in range(profiles))))

            def request(resources, strings=STRINGS, stack=(1,), locs=1, attr_table=True):
                """ExportProfilesServiceRequest: the resources and a dictionary of one function
                (main.f), `locs` locations and one stack"""
                dic = b"".join(field(5, s(x)) for x in strings)
                dic += field(1, b"")                                   # mapping_table[0]
                dic += field(3, b"") + field(3, field(1, 3))           # function_table[0], main.f
                dic += field(2, b"") + b"".join(field(2, field(2, 0x1000 + i) + field(3, field(1, 1))) for i in range(locs))
                dic += field(7, b"") + field(7, b"".join(field(1, x) for x in stack) if stack else b"")
                dic += field(4, b"") + (field(6, b"") if attr_table else b"")
                return b"".join(resources) + field(2, dic)
            good = request([resource("otlp-bad")])
            nest = field(1, b"")
            for _ in range(40):
                nest = field(5, field(1, nest))  # AnyValue{array_value{values: [AnyValue{...}]}}
            deep_attr = field(1, field(1, s("deep")) + field(2, nest))
            J = "application/json"
            cases = [
                ("no credentials", post(good, headers={}), 401, "", None),
                ("Content-Type text/plain", post(good, ctype="text/plain"), 415, "Content-Type", None),
                ("not protobuf", post(b"\x0a\xff\xff\xff"), 400, "not a", None),
                ("not JSON", post(b"{nope", ctype=J), 400, "not JSON", J),
                ("JSON whose resourceProfiles is a string", post(b'{"resourceProfiles": "x"}', ctype=J), 400, "array", J),
                ("a gzip body that is not gzip", post(b"\x1f\x8b\x08\x00garbage", enc="gzip"), 400, "gzip", None),
                ("Content-Encoding br", post(good, enc="br"), 400, "Content-Encoding", None),
                ("OTLP-Profiles-Development-Version: 2", post(good, headers={**auth, "OTLP-Profiles-Development-Version": "2"}), 400,
                 "Version", None),
                ("a stack naming location 5 of 2", post(request([resource("otlp-bad")], stack=(5,))), 400, "location index 5", None),
                ("a stack naming location 0", post(request([resource("otlp-bad")], stack=(0,))), 400, "location index 0", None),
                ("string_table[0] not \"\"", post(request([resource("otlp-bad")], strings=("x",) + STRINGS[1:])), 400, "string_table[0]", None),
                ("a sample type string index past the table", post(request([resource("otlp-bad", sample_type=(9, 2))])), 400,
                 "string index 9", None),
                ("1025 profiles", post(request([resource("otlp-bad", profiles=1025)])), 400, "more than 1024 profiles", None),
                ("an attribute nested 40 deep", post(request([resource("otlp-bad", attr=deep_attr)])), 400, "nested", None),
                ("1,000 profiles on one stack of 40,000 frames", post(request([resource("otlp-bad", profiles=1000)],
                                                                             stack=tuple(range(1, 40001)), locs=40000)),
                 400, "stack frames and lines", None),
            ]
            line, _, _, sent = raw_exchange(c.port, f"POST /v1development/profiles HTTP/1.1\r\nHost: c\r\nAuthorization: {auth['Authorization']}\r\n"
                                                    f"Content-Type: application/x-protobuf\r\nContent-Length: {17 << 20}\r\n\r\n".encode(),
                                            lambda: (b"\0" * 65536 for _ in range(272)))
            cases.append(("17 MiB", (int(line.split()[1]) if len(line.split()) > 1 else line, b""), 413, "", None))
            wrong = []
            for n, (st, b), want, frag, ct in cases:
                msg = status_msg(b, ct or "application/x-protobuf") if st not in (401, 413) else ""
                if st != want or frag not in msg:
                    wrong.append(f"{n}: {st} {msg[:150]!r} (want {want} with {frag!r})")
            stored = json.loads(get("/api/v1/series?service_name=otlp-bad")[1])["data"]
            # the good request then stores; a request of a good resource and one whose profile is
            # of a type the collector does not know: 200, partial success (rejected_profiles 1, its
            # reason), the good one stored
            st, _ = post(good)
            good_stored = json.loads(get("/api/v1/series?service_name=otlp-bad")[1])["data"]
            # a sample naming attribute 0 (the zero value), with no attribute table at all: stored, no label
            st0, b0 = post(request([resource("otlp-attr0", sample_attrs=(0,))], attr_table=False))
            zero_stored = json.loads(get("/api/v1/series?service_name=otlp-attr0")[1])["data"]
            if st0 != 200 or len(zero_stored) != 1:
                wrong.append(f"a sample naming attribute 0 without an attribute table: {st0} {b0[:200]!r}, {len(zero_stored)} series")
            st3, b3 = post(request([resource("otlp-mixed"), resource("otlp-unknown", sample_type=(4, 5))]))
            mixed_stored = json.loads(get("/api/v1/series?service_name=otlp-mixed")[1])["data"]
            unknown_stored = json.loads(get("/api/v1/series?service_name=otlp-unknown")[1])["data"]
            # ExportProfilesServiceResponse{partial_success (1): {rejected_profiles (1): 1, error_message (2)}}
            n, i = 0, 1
            while i < len(b3) and b3[i] & 0x80:
                i += 1
            partial = b3[:1] == b"\x0a" and b3[i + 1:i + 3] == b"\x08\x01" and b"profile type not recognised" in b3
            ok = not wrong and not stored and st == 200 and len(good_stored) == 1 and st3 == 200 and partial and \
                len(mixed_stored) == 1 and not unknown_stored
            return ok, "; ".join(wrong) + f" | {len(stored)} series stored by the refused; the good one {st}, then " \
                f"{len(good_stored)} series; good + unknown type: {st3} {b3[:200]!r}, {len(mixed_stored)} + {len(unknown_stored)} stored"
        check(t, "collector otlp: refused with a clear 4xx and a google.rpc.Status, nothing stored: no credentials (401), "
                 "another content type (415), not protobuf, not JSON, bad gzip, another encoding, another schema version, a stack naming a location "
                 "past its table or location 0, string_table[0] not empty, a string index past the table, 1025 profiles, an "
                 "attribute nested 40 deep, 17 MiB (413); a profile of an unknown type is rejected alone (partial success)",
              refusals)
    finally:
        if relay:
            relay.terminate()
            try:
                relay.wait(10)
            except subprocess.TimeoutExpired:
                relay.kill()
        c.stop()
        c.cleanup()
        if not os.environ.get("KEEP_OTLP"):
            shutil.rmtree(d, ignore_errors=True)


PARTS = {"otlp": otlp}
