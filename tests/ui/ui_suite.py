"""UI tests: a collector filled by scraping the real Go demo target and a hostile target, then
Debian's chromium driven by playwright-core through every page (tests/ui/ui.test.mjs)."""
import gzip
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from harness import OUT, ROOT, ensure_playwright, field, go_pprof, go_top_args, parse_go_peek, parse_go_top, run, varint
from peers import Collector, DemoTarget, StaticServer, http_req
from web_load import BAD, badtext_profile, fix, go_top_names

UI = os.path.dirname(os.path.abspath(__file__))
# Strings a hostile target controls. Each would change the DOM if it reached the page as markup
# (an element with a class xss-*, an image, an svg, an attribute handler), which the CSP would
# not prevent: the checks look for those, not for a script that the CSP blocks anyway.
PAYLOADS = {
    "monitor": '</script><img src=x onerror=alert(1)><b class="xss-mon">m</b>',
    "ns": "javascript:alert(1)",
    "svc": '"><svg onload=alert(1)><i class="xss-svc">s</i>',
    "pod": "' onmouseover='window.__xss=1' x='<u class=\"xss-pod\">",
    "fn": '</script><img src=x onerror="window.__xss=1"><u class="xss-fn">f</u>',
    "version": '<img src=x onerror="window.__xss=1"><b class="xss-ver">v</b>',
    # (a tag= filter splits at the first '=': a label key holding one cannot be filtered on)
    "lkey": "<img src onerror alert(1)><svg><b>k</b>",
    "lval": '"><img src=x onerror="window.__xss=1"><s class="xss-lval">v</s>',
}
XSS = PAYLOADS["fn"]


def hostile_profile():
    """A valid heap-like profile whose function, file and label strings are attack payloads."""
    strings = ["", "inuse_space", "bytes", XSS, "javascript:alert(1)", PAYLOADS["lkey"], "main.safe", PAYLOADS["lval"]]
    s = {v: i for i, v in enumerate(strings)}
    p = field(1, field(1, s["inuse_space"]) + field(2, s["bytes"]))
    p += field(2, field(1, varint(1) + varint(2)) + field(2, varint(5000)) + field(3, field(1, s[PAYLOADS["lkey"]]) + field(2, s[PAYLOADS["lval"]])))
    p += field(4, field(1, 1) + field(4, field(1, 1) + field(2, 7)))
    p += field(4, field(1, 2) + field(4, field(1, 2) + field(2, 9)))
    p += field(5, field(1, 1) + field(2, s[XSS]) + field(3, s[XSS]) + field(4, s["javascript:alert(1)"]))
    p += field(5, field(1, 2) + field(2, s["main.safe"]))
    for v in strings:
        p += field(6, v.encode())
    p += field(9, time.time_ns())
    return gzip.compress(p)


def sandwich_want(t, path):
    """What the sandwich and line view must show for the explorer's CPU profile, from go tool
    pprof: the function with the largest cum that has both callers and callees, its flat and cum,
    its callers and callees with their values (-peek '^NAME$'), and its lines (-lines -top)."""
    g = go_pprof(["-peek", ".", "-sample_index=1", "-unit=ns", path])
    peek = parse_go_peek(g.stdout) if g.returncode == 0 else {}
    both = sorted((f for f, v in peek.items() if v[2] and v[3]), key=lambda f: (-peek[f][1], f))
    t.tool("ui: go tool pprof -peek names a function with callers and callees in the explorer's profile", bool(both), g.stderr[-2000:])
    if not both:
        return {}
    fn = both[0]
    flat, cum, callers, callees = peek[fn]
    lines = {}
    for k, v in parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + ["-lines", path]).stdout).items():
        if k.startswith(fn + " ") and " " not in k[len(fn) + 1:]:
            lines[k[len(fn) + 1:]] = v
    # and one that calls itself through other functions: pprof counts a stack's edge once per
    # occurrence, so its out-edges add up to more than its cum (the demo target nests
    # runtime/pprof.Do: Do > sortWork > asTenant > Do > asTenant.func1)
    rec = sorted((f for f, v in peek.items() if v[2] and sum(v[3].values()) > v[1]), key=lambda f: (-peek[f][1], f))
    t.tool("ui: go tool pprof -peek names a function whose callees add up to more than its cum (it calls itself through others)",
           bool(rec), g.stderr[-2000:])
    recursive = {"name": rec[0], "flat": peek[rec[0]][0], "cum": peek[rec[0]][1], "callers": peek[rec[0]][2],
                 "callees": peek[rec[0]][3]} if rec else {}
    return {"name": fn, "flat": flat, "cum": cum, "callers": callers, "callees": callees, "lines": lines,
            "recursive": recursive}


def run_suite(t, parts=None):
    if not os.path.exists("/usr/bin/chromium"):
        t.tool("ui: Debian's chromium is installed (make deps)", False, "missing /usr/bin/chromium")
        return
    if not ensure_playwright(t):
        return
    # two demo targets: two pods of one service (shop/checkout), for the function over time per pod
    demo, demo2, bad = DemoTarget(), DemoTarget(), StaticServer(hostile_profile())
    # a profile with invalid UTF-8 in every string field (tests/collector/web_load.py)
    badtext_body = badtext_profile()
    badtext = StaticServer(badtext_body)
    q = json.dumps  # a JSON string is a YAML double-quoted scalar
    cfg = f"""monitors:
- name: demo
  endpoint: {demo.url}
  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-0}}
  profile: {{seconds: 2}}
  heap: {{interval_seconds: 2}}
  goroutine: {{interval_seconds: 2}}
- name: demo2
  endpoint: {demo2.url}
  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-1}}
  profile: {{seconds: 2}}
- name: {q(PAYLOADS["monitor"])}
  endpoint: {bad.url}
  labels: {{__k8s_namespace: {q(PAYLOADS["ns"])}, __k8s_name: {q(PAYLOADS["svc"])}, pod: {q(PAYLOADS["pod"])}, version: {q(PAYLOADS["version"])}}}
  heap: {{interval_seconds: 2}}
- name: cart-v1
  endpoint: {demo.url}
  labels: {{__k8s_namespace: store, __k8s_name: cart, version: v1.0.0}}
  heap: {{interval_seconds: 2}}
- name: cart-v2
  endpoint: {demo.url}
  labels: {{__k8s_namespace: store, __k8s_name: cart, version: v1.1.0}}
  heap: {{interval_seconds: 2}}
- name: badtext
  endpoint: {badtext.url}
  heap: {{interval_seconds: 2}}
"""
    # another shard: a collector of its own holding one service (edge/remote) that the UI's
    # collector asks as its peer (issue 15 §3)
    peer = Collector(f"""monitors:
- name: remote
  endpoint: {demo2.url}
  labels: {{__k8s_namespace: edge, __k8s_name: remote}}
  heap: {{interval_seconds: 2}}
""", name="ui-peer")
    c = None
    try:
        c = Collector(cfg, name="ui", extra_args=["--peer", peer.url])
        hostile_q = urllib.parse.urlencode({"type": "heap", "__k8s_name": PAYLOADS["svc"]})
        ok = c.wait_for(lambda: len(c.get_json("/api/v1/profiles?type=cpu&name=demo")[1]["data"]) >= 3 and
                        len(c.get_json("/api/v1/profiles?type=cpu&name=demo2")[1]["data"]) >= 3 and
                        len(c.get_json("/api/v1/profiles?" + hostile_q)[1]["data"]) >= 1 and
                        len(c.get_json("/api/v1/profiles?type=heap&name=remote")[1]["data"]) >= 3, timeout=40)
        t.tool("ui: collector filled by scraping the demo target and a hostile target", ok)
        # the explorer checks look at data up to a fixed time, so the page, the API and go tool
        # pprof see the same profiles while scraping goes on
        rows = c.get_json("/api/v1/profiles?type=cpu&name=demo")[1]["data"]
        to_ns = max(r["endUnixNano"] for r in rows)
        frozen = f"{to_ns // 10**9}.{to_ns % 10**9:09d}"
        f = os.path.join(OUT, "ui-expected.pb.gz")
        st, data, _ = http_req("GET", f"{c.url}/api/v1/profile?type=cpu&name=demo&to={frozen}")
        open(f, "wb").write(data)
        nodes = parse_go_top(go_pprof(go_top_args(1, "nanoseconds") + [f]).stdout)
        # what the pages must show for the invalid UTF-8 profile: go tool pprof's names and the
        # sample types, each invalid sequence one U+FFFD (as the browser's own decoder does)
        bt = os.path.join(OUT, "ui-badtext.pb.gz")
        open(bt, "wb").write(badtext_body)
        badtext_want = {"names": sorted(fix(n) for n in go_top_names(bt, 1)),
                        "types": [[fix(BAD["count_type"]), fix(BAD["count_unit"])], [fix(BAD["type"]), fix(BAD["unit"])]]}
        expected = sorted(nodes.items(), key=lambda kv: (-kv[1][0], kv[0]))[0][0] if nodes else ""
        sandwich = sandwich_want(t, f)
        out = os.path.join(OUT, "ui")
        shutil.rmtree(out, ignore_errors=True)  # a download left by an earlier run must not pass for this one's
        p = subprocess.run(["node", os.path.join(UI, "ui.test.mjs"), c.url, out, expected, frozen, json.dumps(PAYLOADS),
                            json.dumps(badtext_want), json.dumps(sandwich)],
                           capture_output=True, text=True, timeout=600)
        seen = 0
        lines = p.stdout.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("ok - ") or line.startswith("not ok - "):
                okl = line.startswith("ok - ")
                detail = "\n".join(l for l in lines[i + 1:i + 12] if l.startswith("    "))
                t.record("ui: " + line.split(" - ", 1)[1], okl, detail)
                seen += 1
        if seen == 0 or (p.returncode != 0 and "not ok" not in p.stdout):
            t.tool("ui: browser test ran", False, p.stdout[-2000:] + p.stderr[-3000:])
        # the downloaded pprof opens in our tool (and so in go tool pprof's reader)
        dl = os.path.join(out, "download.pb.gz")
        r = run([os.path.join(ROOT, "bin", "pprof-tool"), "info", dl])
        t.record("ui: the downloaded profile is a valid pprof", r.returncode == 0 and "samples:" in r.stdout, r.stderr)
        pgo = os.path.join(out, "default.pgo")
        r = run([os.path.join(ROOT, "bin", "pprof-tool"), "info", pgo]) if os.path.exists(pgo) else None
        t.record("ui: the downloaded default.pgo is a CPU pprof", bool(r) and r.returncode == 0 and "cpu/nanoseconds" in r.stdout,
                 r.stdout + r.stderr if r else "no default.pgo was downloaded")
    finally:
        for x in (c, peer):
            if x:
                x.stop()
                x.cleanup()
        demo.stop()
        demo2.stop()
        bad.stop()
        badtext.stop()
