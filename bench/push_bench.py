#!/usr/bin/env python3
"""Push ingest (issue 16 §2, §3), part of `make bench`: POST /ingest of a real CPU profile (Debian's
prometheus, testdata cpu-1, 13 KB gzip) to a collector of its own, from one client and from
four at once, each over one keep-alive connection, 2,000 pushes in all, ten series; then the same
profile as OTLP (POST /v1development/profiles, the request OpenTelemetry's pdata encodes:
bin/otlp-client -dump, one per series). Prints pushes a second and the collector's CPU (user +
system, /proc) per push: decoding (and for OTLP the conversion to pprof), encoding into the
store's format, the append, HTTP. There is no permissively licensed peer server to run beside
it (Pyroscope's server is AGPL), so the figures stand alone.
Writes build/bench/push.md."""
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from harness import TESTDATA  # noqa: E402
from ui_bench import serve  # noqa: E402

OUT = os.path.join(ROOT, "build", "bench")
TOTAL = 2000


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    os.makedirs(OUT, exist_ok=True)
    prof = open(os.path.join(TESTDATA, "prometheus", "cpu-1.pb.gz"), "rb").read()
    tmp = tempfile.mkdtemp(prefix="push-bench-")
    p, url = serve(os.path.join(tmp, "data"))
    port = int(url.rsplit(":", 1)[1])
    rows = []
    # the OTLP bodies: the same profile as pdata encodes it, one resource (pod) per series
    otlp = []
    for i in range(10):
        f = os.path.join(tmp, f"otlp-{i}.pb")
        subprocess.run([os.path.join(ROOT, "bin", "otlp-client"), "-server", "http://127.0.0.1:1", "-service", "otlpbench",
                        "-attr", f"pod=p{i}", "-in", os.path.join(TESTDATA, "prometheus", "cpu-1.pb.gz"), "-dump", f],
                       capture_output=True, timeout=60)
        otlp.append(open(f, "rb").read())
    try:
        for proto, clients in (("ingest", 1), ("ingest", 4), ("otlp", 1), ("otlp", 4)):
            done = []

            def client(n, app):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                now = int(time.time())
                ok = 0
                for i in range(n):
                    if proto == "otlp":
                        c.request("POST", "/v1development/profiles", body=otlp[i % 10], headers={"Content-Type": "application/x-protobuf"})
                    else:
                        c.request("POST", f"/ingest?name={app}%7Bpod%3Dp{i % 10}%7D&from={now - 10}&until={now}", body=prof,
                                  headers={"Content-Type": "application/octet-stream"})
                    r = c.getresponse()
                    r.read()
                    ok += r.status == 200
                c.close()
                done.append(ok)
            c0, t0 = cpu_s(p.pid), time.perf_counter()
            ts = [threading.Thread(target=client, args=(TOTAL // clients, f"bench{clients}")) for _ in range(clients)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall, cpu = time.perf_counter() - t0, cpu_s(p.pid) - c0
            ok = sum(done)
            rows.append((proto, clients, ok, wall, ok / wall, cpu / max(ok, 1) * 1e6))
    finally:
        p.terminate()
        p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| protocol | clients | pushes stored | seconds | pushes/s | collector CPU per push |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {pr} | {c} | {ok:,} of {TOTAL:,} | {w:.2f} | {r:,.0f} | {u:,.0f} µs |" for pr, c, ok, w, r, u in rows]
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "push.md"), "w").write(text)
    print(text)
    return 0 if all(ok == TOTAL for _, _, ok, _, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
