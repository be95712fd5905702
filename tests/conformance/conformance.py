"""Conformance of our codec with `go tool pprof` (the machine's Go), the reference reading.

For every profile in shared/testdata/pprof and for profiles collected here from the repo's Go
demo target, and for every sample type go tool pprof lists: each function's flat and cum from
`pprof-tool top --raw` equal what `go tool pprof -top` prints in the base unit, exactly.
Round trips (decode, encode) and merges are compared through `go tool pprof -raw`: header,
sample types, every sample's values, stack (addresses, mappings, functions, lines) and labels.
Diff and folded output are checked against go tool pprof the same way.

The store's v2 format (symbols once per segment, samples as ids): every profile appended to a
store and read back (store-bench roundtrip) is read by go tool pprof -raw as the original
(header with period and times, sample types, every sample's values, stacks, labels, mappings).

The sandwich (pprof-tool focus, pprof_focus_compute): for hot and recursive functions of CPU
and heap profiles, callers and callees one level deep with their values equal the in- and
out-edges `go tool pprof -peek '^NAME$'` prints, and the function's lines equal its rows of
`go tool pprof -lines -top`.

Sample-label filters (pprof-tool --tag, the codec's pprof_filter_tags, which the API's tag= uses):
per-function flat and cum of the demo target's labelled CPU and goroutine profiles, filtered,
equal go tool pprof -tagfocus / -tagignore of the same file; --tagroot (pprof_tag_root, which the
API's group_by uses) equals go tool pprof -tagroot.

Parts (tests/run.py conformance:PART,...): cli, top, merge, roundtrip, diff, folded, store, focus, tags."""
import concurrent.futures as cf
import glob
import os
import re
import shutil
import time
import urllib.request

from harness import (OUT, ROOT, TESTDATA, TOOL, compare_maps, compare_raw, go_pprof, go_raw,
                     go_sample_types, go_top_args, go_unit, parse_go_peek, parse_go_top, parse_go_traces, parse_our_top, run)
from peers import DemoTarget  # tests/collector (tests/run.py puts it on the path)

WORKERS = 2


def our_top(paths, index, extra=()):
    p = run([TOOL, "top", "--raw", f"--sample-index={index}", *extra, *paths], check=True)
    return parse_our_top(p.stdout)


def check_top(t, name, paths, index, unit, go_paths=None, go_extra=()):
    """One case: our top of paths == go's top of go_paths (default: the same files)."""
    try:
        ours = our_top(paths, index)
        g = go_pprof(go_top_args(index, unit) + list(go_extra) + list(go_paths or paths))
        if g.returncode != 0:
            t.record(name, False, "go tool pprof failed: " + g.stderr[-2000:])
            return
        theirs = parse_go_top(g.stdout)
        diff = compare_maps(ours, theirs)
        if not theirs and not ours:
            # An empty profile must be empty on both sides, but say so: nothing was compared.
            t.record(name + " (empty on both sides)", True)
            return
        t.record(name, diff == "", diff)
    except Exception as e:  # a crash of one case is that case's failure
        t.record(name, False, repr(e))


def shared_profiles():
    files = sorted(glob.glob(os.path.join(TESTDATA, "*", "*.pb.gz")) + glob.glob(os.path.join(TESTDATA, "*", "*.pb")))
    if not files:
        raise RuntimeError(f"no profiles under {TESTDATA}")
    # and Debian's caddy under load (tests/testdata/caddy/capture.sh): a third real program
    return files + sorted(glob.glob(os.path.join(ROOT, "tests", "testdata", "caddy", "*.pb.gz")))


def collect_from_demo(t):
    """Starts bin/demo-target on loopback and scrapes every profile type, snapshot and delta."""
    out = os.path.join(OUT, "collected")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    demo = DemoTarget()  # (raises when it does not answer)
    base = f"{demo.url}/debug/pprof"
    try:
        time.sleep(1.5)  # let the workload run so every profile has samples
        wanted = {
            "heap": "heap", "allocs": "allocs", "goroutine": "goroutine", "block": "block",
            "mutex": "mutex", "threadcreate": "threadcreate",
            "cpu": "profile?seconds=2", "heap-delta": "heap?seconds=2",
            "allocs-delta": "allocs?seconds=2", "block-delta": "block?seconds=2",
            "mutex-delta": "mutex?seconds=2",
        }

        def fetch(item):
            name, path = item
            data = urllib.request.urlopen(f"{base}/{path}", timeout=30).read()
            dest = os.path.join(out, f"{name}.pb.gz")
            with open(dest, "wb") as f:
                f.write(data)
            return name, dest

        with cf.ThreadPoolExecutor(len(wanted)) as ex:
            results = list(ex.map(fetch, wanted.items()))
        ok = all(os.path.getsize(d) > 0 for _, d in results)
        t.tool(f"collect: {len(results)} profiles from bin/demo-target", ok)
        return [d for _, d in results]
    finally:
        demo.stop()


def top_cases(t, files):
    """One case per (file, sample type), the types as go tool pprof lists them: a type our
    decoder dropped is still a case, and fails."""
    cases = []
    with cf.ThreadPoolExecutor(WORKERS) as ex:
        types = list(ex.map(go_sample_types, files))
    for f, ts in zip(files, types):
        rel = os.path.relpath(f, TESTDATA) if f.startswith(TESTDATA) else os.path.relpath(f, ROOT)
        for i, (typ, unit) in enumerate(ts):
            cases.append((f"top {rel} [{i}={typ}]", [f], i, unit))
    return cases


def merge_cases(t):
    """Our merge (written by pprof-tool merge) against go tool pprof -proto of the same files."""
    out = os.path.join(OUT, "merge")
    os.makedirs(out, exist_ok=True)
    sets = {
        "gotarget-cpu": sorted(glob.glob(os.path.join(TESTDATA, "gotarget", "cpu-*.pb.gz"))),
        "prometheus-cpu": sorted(glob.glob(os.path.join(TESTDATA, "prometheus", "cpu-*.pb.gz"))),
        "heap-two-programs": [os.path.join(TESTDATA, "gotarget", "heap.pb.gz"),
                              os.path.join(TESTDATA, "prometheus", "heap.pb.gz")],
        "allocs-delta": [os.path.join(TESTDATA, d, "allocs-delta.pb.gz") for d in ("gotarget", "prometheus")],
        "goroutine": [os.path.join(TESTDATA, d, "goroutine.pb.gz") for d in ("gotarget", "prometheus")],
        # labelled samples (the demo target's workers run under pprof labels)
        "demo-cpu-labels": [os.path.join(OUT, "collected", "cpu.pb.gz"), os.path.join(TESTDATA, "gotarget", "cpu-1.pb.gz")],
        "demo-goroutine-labels": [os.path.join(OUT, "collected", "goroutine.pb.gz"), os.path.join(TESTDATA, "gotarget", "goroutine.pb.gz")],
    }
    cases = []
    for name, files in sets.items():
        ours = os.path.join(out, f"{name}.ours.pb.gz")
        gos = os.path.join(out, f"{name}.go.pb.gz")
        r = run([TOOL, "merge", "-o", ours, *files])
        t.record(f"merge {name}: pprof-tool merge succeeds", r.returncode == 0, r.stderr)
        g = go_pprof(["-proto", "-output", gos, *files])
        t.record(f"merge {name}: go tool pprof -proto succeeds", g.returncode == 0, g.stderr)
        if r.returncode or g.returncode:
            continue
        for i, (typ, unit) in enumerate(go_sample_types(gos)):
            # our merged profile read by go == go's merged profile read by go
            cases.append((f"merge {name} [{i}={typ}] read by go", None, (ours, gos, i, unit)))
        cases.append((f"merge {name}: go -raw reads ours as its own (header, samples, labels, lines, mappings)", "raw", (ours, gos)))
    return cases


def check_merge(t, name, ours, gos, index, unit):
    try:
        a = go_pprof(go_top_args(index, unit) + [ours])
        b = go_pprof(go_top_args(index, unit) + [gos])
        if a.returncode or b.returncode:
            t.record(name, False, a.stderr + b.stderr)
            return
        diff = compare_maps(parse_go_top(a.stdout), parse_go_top(b.stdout))
        t.record(name, diff == "", diff)
    except Exception as e:
        t.record(name, False, repr(e))


def check_merge_raw(t, name, ours, gos):
    try:
        a, b = go_raw(ours), go_raw(gos)
        diff = compare_raw(a, b, mappings_as_set=True)
        t.record(name, diff == "" and sum(b.samples.values()) > 0, diff or ("" if b.samples else "go merged no samples"))
    except Exception as e:
        t.record(name, False, repr(e))


def round_trip_cases(t, files):
    """decode -> encode (pprof-tool merge of one file re-encodes it): go reads the same traces."""
    out = os.path.join(OUT, "roundtrip")
    os.makedirs(out, exist_ok=True)
    cases = []
    for f in files:
        stem = os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f).split(".")[0]
        dest = os.path.join(out, stem + ".pb.gz")
        r = run([TOOL, "merge", "-o", dest, f])
        if r.returncode:
            t.record(f"round trip {os.path.basename(f)}: encode", False, r.stderr)
            continue
        cases.append((f, dest))
    return cases


def check_round_trip(t, orig, enc):
    """go tool pprof -raw of the original and of our re-encoding: everything go reads (header,
    every sample type, values, stacks with addresses, lines and mappings, labels) is the same.
    An empty profile is compared too: its header, sample types and mappings."""
    rel = os.path.relpath(orig, TESTDATA) if orig.startswith(TESTDATA) else os.path.basename(orig)
    try:
        a, b = go_raw(enc), go_raw(orig)
        diff = compare_raw(a, b)
        empty = "" if b.samples else " (no samples: header, types and mappings compared)"
        t.record(f"round trip {rel}{empty}", diff == "", diff)
    except Exception as e:
        t.record(f"round trip {rel}", False, repr(e))


def check_diff(t, name, base, cmp_, index, unit):
    try:
        ours = parse_our_top(run([TOOL, "diff", "--raw", f"--sample-index={index}", "--base", base, cmp_],
                                 check=True).stdout)
        g = go_pprof(go_top_args(index, unit) + ["-base", base, cmp_])
        if g.returncode:
            t.record(name, False, g.stderr)
            return
        diff = compare_maps(ours, parse_go_top(g.stdout))
        t.record(name, diff == "" and len(ours) > 0, diff or ("" if ours else "empty diff"))
    except Exception as e:
        t.record(name, False, repr(e))


def check_folded(t, name, f, index, unit):
    try:
        p = run([TOOL, "folded", f"--sample-index={index}", f], check=True)
        ours = {}
        for l in p.stdout.splitlines():
            stack, v = l.rsplit(" ", 1)
            ours[stack] = ours.get(stack, 0) + int(v)
        g = go_pprof(["-traces", f"-sample_index={index}", f"-unit={go_unit(unit)}", f])
        if g.returncode:
            t.record(name, False, g.stderr)
            return
        diff = compare_maps(ours, parse_go_traces(g.stdout), "stack")
        t.record(name, diff == "" and len(ours) > 0, diff or ("" if ours else "no stacks"))
    except Exception as e:
        t.record(name, False, repr(e))


def check_cli_errors(t):
    td = os.path.join(TESTDATA, "gotarget")
    cases = [
        ("cli: missing file exits 1 naming it", [TOOL, "top", "/nonexistent/p.pb.gz"], 1, "/nonexistent/p.pb.gz"),
        ("cli: not a profile exits 1", [TOOL, "top", os.path.join(td, "goroutine-debug2.txt")], 1, "goroutine-debug2.txt"),
        ("cli: unknown sample type exits 2 listing types", [TOOL, "top", "--sample-index=bogus", os.path.join(td, "heap.pb.gz")], 2, "alloc_objects"),
        ("cli: merge of cpu and heap exits 1 naming the mismatch",
         [TOOL, "merge", "-o", os.path.join(OUT, "x.pb.gz"), os.path.join(td, "cpu-1.pb.gz"), os.path.join(td, "heap.pb.gz")], 1, "incompatible"),
        ("cli: no command exits 2", [TOOL], 2, "usage"),
        ("cli: unknown command exits 2", [TOOL, "frobnicate", "x"], 2, "unknown command"),
        ("cli: merge without -o exits 2", [TOOL, "merge", os.path.join(td, "heap.pb.gz")], 2, "-o"),
    ]
    for name, cmd, code, text in cases:
        p = run(cmd)
        ok = p.returncode == code and text in p.stderr
        t.record(name, ok, f"exit {p.returncode}, stderr: {p.stderr.strip()[:500]}")
    p = run([TOOL, "--help"])
    t.record("cli: --help exits 0 and documents exit codes", p.returncode == 0 and "exit codes" in p.stdout)


STORE_BENCH = os.path.join(ROOT, "build", "rel", "bench", "store-bench")


def store_cases(t, files):
    """Every file through the store (one store, so records share their segment's symbols) and
    read back: (original, read back) pairs."""
    out = os.path.join(OUT, "store-roundtrip")
    r = run([STORE_BENCH, "roundtrip", os.path.join(OUT, "store-roundtrip-dir"), out, *files])
    t.tool("store round trip: store-bench roundtrip appends and reads back every profile", r.returncode == 0,
           r.stderr[-2000:])
    if r.returncode:
        return []
    return [(f, os.path.join(out, f"{i}.pb.gz")) for i, f in enumerate(files)]


def check_store(t, orig, back):
    """go tool pprof -raw of the original and of the record read back from the store."""
    rel = os.path.relpath(orig, TESTDATA) if orig.startswith(TESTDATA) else os.path.basename(orig)
    try:
        a, b = go_raw(back), go_raw(orig)
        diff = compare_raw(a, b)
        t.record(f"store round trip {rel}: go -raw reads it as the original", diff == "", diff)
    except Exception as e:
        t.record(f"store round trip {rel}", False, repr(e))


# ---- focus (sandwich and lines) against go tool pprof -peek and -lines -top -----------------------

FOCUS_PROFILES = [  # (file under testdata, sample index): CPU and heap of three programs
    ("gotarget/cpu-1.pb.gz", 1), ("gotarget/heap.pb.gz", 1), ("prometheus/cpu-2.pb.gz", 1),
    ("prometheus/heap.pb.gz", 3), ("large/compile-cpu.pb", 1), ("large/nethttp-mem.pb", 1),
]
def our_focus(path, index, name):
    """pprof-tool focus: (flat, cum, {caller: total}, {callee: total}, {file:line: (flat, cum)})."""
    p = run([TOOL, "focus", f"--sample-index={index}", f"--function={name}", path], check=True)
    flat = cum = None
    ins, outs, lines = {}, {}, {}
    for l in p.stdout.splitlines():
        kind, rest = l.split("\t", 1)
        if kind == "focus":
            flat, cum = (int(x) for x in rest.split("\t"))
        elif kind in ("caller", "callee"):
            v, n = rest.split("\t", 1)
            (ins if kind == "caller" else outs)[n] = int(v)
        elif kind == "line":
            f, c, where = rest.split("\t", 2)
            file, line = where.rsplit(":", 1)
            # go tool pprof cleans file names (filepath.Clean); a line 0 prints the file alone
            key = os.path.normpath(file) if file else ""
            lines[key if line == "0" else f"{key}:{line}"] = (int(f), int(c))
    return flat, cum, ins, outs, lines


def recursive_functions(path, index, unit, n=2):
    """Functions that call themselves through another function, the heaviest first, from go's
    -traces: a stack in which the function occurs twice with something else in between."""
    g = go_pprof(["-traces", f"-sample_index={index}", f"-unit={go_unit(unit)}", path])
    weight = {}
    for stack, v in parse_go_traces(g.stdout).items():
        frames = stack.split(";")
        # runs of one function are direct recursion (pprof drops self-edges): collapse them
        runs = [f for i, f in enumerate(frames) if i == 0 or frames[i - 1] != f]
        for f in {f for f in runs if runs.count(f) > 1}:
            weight[f] = weight.get(f, 0) + v
    return sorted(weight, key=lambda f: (-weight[f], f))[:n]


def focus_cases(t):
    """(name, path, index, unit, functions): per profile the 4 hottest functions by flat and the 4
    by cum as go tool pprof -top lists them, and the heaviest recursive ones."""
    cases = []
    for rel, index in FOCUS_PROFILES:
        path = os.path.join(TESTDATA, rel)
        unit = go_sample_types(path)[index][1]
        g = go_pprof(go_top_args(index, unit) + [path])
        top = parse_go_top(g.stdout)
        by_flat = sorted(top, key=lambda f: (-top[f][0], f))[:4]
        by_cum = sorted(top, key=lambda f: (-top[f][1], f))[:4]
        rec = recursive_functions(path, index, unit)
        funcs = list(dict.fromkeys(by_flat + by_cum + rec))
        t.tool(f"focus {rel}: go lists functions to check ({len(funcs)}, {len(rec)} recursive)", len(funcs) >= 4)
        cases.append((rel, path, index, unit, funcs, rec))
    t.tool("focus: some profile has a function recursing through another",
           any(c[5] for c in cases))
    return cases


def check_focus(t, rel, path, index, unit, funcs, rec):
    """For each function: flat, cum, callers and callees one level deep with their values as
    go tool pprof -peek '^NAME$' prints them, and the lines' flat and cum as -lines -top."""
    try:
        rx = "^(" + "|".join(re.escape(f) for f in funcs) + ")$"
        u = go_unit(unit)
        g = go_pprof(["-peek", rx, f"-sample_index={index}", f"-unit={u}", path])
        if g.returncode:
            t.record(f"focus {rel}: go tool pprof -peek", False, g.stderr[-2000:])
            return
        peek = parse_go_peek(g.stdout)
        gl = go_pprof(go_top_args(index, unit) + ["-lines", path])
        if gl.returncode:
            t.record(f"focus {rel}: go tool pprof -lines -top", False, gl.stderr[-2000:])
            return
        lines_top = parse_go_top(gl.stdout)
        for f in funcs:
            name = f"focus {rel} [{index}] {f}{' (recursive)' if f in rec else ''}"
            if f not in peek:
                t.record(name, False, "go tool pprof -peek printed no block for it")
                continue
            gflat, gcum, gins, gouts = peek[f]
            flat, cum, ins, outs, lines = our_focus(path, index, f)
            glines = {}
            for k, v in lines_top.items():
                if k.startswith(f + " ") and " " not in k[len(f) + 1:]:
                    glines[k[len(f) + 1:]] = v
                elif k == f:
                    glines[""] = v
            diffs = []
            if (flat, cum) != (gflat, gcum):
                diffs.append(f"flat, cum: ours={flat}, {cum} go={gflat}, {gcum}")
            for what, a, b in (("callers", ins, gins), ("callees", outs, gouts), ("lines", lines, glines)):
                d = compare_maps(a, b, what)
                if d:
                    diffs.append(d)
            # a function alone in its stacks has no edges: say so, its flat, cum and lines are compared
            alone = "" if gins or gouts else " (no callers or callees on either side)"
            t.record(name + ": callers, callees and lines as go tool pprof -peek and -lines" + alone,
                     not diffs and bool(glines) and gcum != 0, "\n".join(diffs) or "go printed no lines or a zero cum")
    except Exception as e:
        t.record(f"focus {rel}", False, repr(e))


# (our --tag filters, go tool pprof's equivalent flags): go matches values by regular
# expression (unanchored), so exact values are anchored; "KEY=" (no KEY) is -tagignore=KEY=.*.
# The third field: the case applies to the goroutine snapshot too (one goroutine per worker,
# whose tenant at that instant is chance: only cases that keep something whatever it is, and
# change something. "tenant=" and "tenant!=" do neither when no worker happened to carry a
# tenant at that instant, as a CI run of 2026-12-01 caught: they are the CPU profile's only).
TAG_CASES = [
    (["handler=/hash"], ["-tagfocus=handler=^/hash$"], True),
    (["handler!=/hash"], ["-tagignore=handler=^/hash$"], True),
    (["tenant=acme"], ["-tagfocus=tenant=^acme$"], False),
    (["tenant=globex", "handler!=/sort"], ["-tagfocus=tenant=^globex$", "-tagignore=handler=^/sort$"], False),
    (["tenant="], ["-tagignore=tenant=.*"], False),
    (["tenant!="], ["-tagfocus=tenant=.*"], False),
    (["worker=sort", "tenant!=acme"], ["-tagfocus=worker=^sort$", "-tagignore=tenant=^acme$"], False),
]


def check_tags(t, name, f, index, unit, ours_tags, go_flags):
    """pprof-tool top --tag ... == go tool pprof -tagfocus/-tagignore ... -top, every function;
    and the filter changed something (the unfiltered top differs), or the case shows nothing."""
    try:
        ours = our_top([f], index, [f"--tag={x}" for x in ours_tags])
        whole = our_top([f], index)
        g = go_pprof(go_top_args(index, unit) + go_flags + [f])
        if g.returncode:
            t.record(name, False, g.stderr[-2000:])
            return
        theirs = parse_go_top(g.stdout)
        diff = compare_maps(ours, theirs)
        t.record(name, diff == "" and bool(ours) and ours != whole,
                 diff or ("" if ours else "nothing left") + ("" if ours != whole else " the filter kept everything"))
    except Exception as e:
        t.record(name, False, repr(e))


def check_tagroot(t, name, f, index, unit, key):
    """pprof-tool top --tagroot=KEY == go tool pprof -tagroot=KEY -top: every function, the
    pseudo-frames (one per value, "<unknown>" for samples without KEY) included."""
    try:
        ours = our_top([f], index, [f"--tagroot={key}"])
        g = go_pprof(go_top_args(index, unit) + [f"-tagroot={key}", f])
        if g.returncode:
            t.record(name, False, g.stderr[-2000:])
            return
        theirs = parse_go_top(g.stdout)
        diff = compare_maps(ours, theirs)
        roots = [k for k in ours if k not in our_top([f], index)]
        t.record(name, diff == "" and len(roots) >= 2, diff or f"pseudo-frames {roots}")
    except Exception as e:
        t.record(name, False, repr(e))


def tag_cases(t, collected):
    cases = []
    for f in collected:
        stem = os.path.basename(f).split(".")[0]
        if stem not in ("cpu", "goroutine"):
            continue
        index, unit = (1, "nanoseconds") if stem == "cpu" else (0, "count")
        for ours_tags, go_flags, both in TAG_CASES:
            if stem == "goroutine" and not both:
                continue
            cases.append((f"tags demo {stem} --tag {' --tag '.join(ours_tags)} == go {' '.join(go_flags)}",
                          f, index, unit, ours_tags, go_flags))
    if len(cases) != len(TAG_CASES) + sum(c[2] for c in TAG_CASES):
        t.tool("tags: the demo target's cpu and goroutine profiles were collected", False, str(collected))
    return cases


PARTS = ("cli", "top", "merge", "roundtrip", "diff", "folded", "store", "focus", "tags")


def run_suite(t, parts=None):
    parts = set(parts or PARTS)
    os.makedirs(OUT, exist_ok=True)
    files = shared_profiles()
    # top, merge, roundtrip and diff read profiles of the demo target too; cli and folded do not
    collected = collect_from_demo(t) if parts - {"cli", "folded", "focus"} else []
    if "cli" in parts:
        check_cli_errors(t)
    jobs = []
    with cf.ThreadPoolExecutor(WORKERS) as ex:
        if "top" in parts:
            # slowest first so the two workers finish together
            tops = top_cases(t, files + collected)
            tops.sort(key=lambda c: -os.path.getsize(c[1][0]))
            for name, paths, i, unit in tops:
                jobs.append(ex.submit(check_top, t, name, paths, i, unit))
        if "merge" in parts:
            for name, kind, args in merge_cases(t):
                jobs.append(ex.submit(check_merge_raw if kind == "raw" else check_merge, t, name, *args))
        if "tags" in parts:
            for case in tag_cases(t, collected):
                jobs.append(ex.submit(check_tags, t, *case))
            for f in collected:
                if os.path.basename(f) == "cpu.pb.gz":
                    for key in ("handler", "tenant", "worker"):
                        jobs.append(ex.submit(check_tagroot, t, f"tags demo cpu --tagroot={key} == go -tagroot={key}",
                                              f, 1, "nanoseconds", key))
        if "store" in parts:
            for orig, back in store_cases(t, files + collected):
                jobs.append(ex.submit(check_store, t, orig, back))
        if "roundtrip" in parts:
            small = [f for f in files + collected if os.path.getsize(f) < 200_000]
            for orig, enc in round_trip_cases(t, small):
                jobs.append(ex.submit(check_round_trip, t, orig, enc))
        g = os.path.join(TESTDATA, "gotarget")
        pr = os.path.join(TESTDATA, "prometheus")
        diffs = [] if "diff" not in parts else [("diff gotarget cpu-2 - cpu-1", os.path.join(g, "cpu-1.pb.gz"), os.path.join(g, "cpu-2.pb.gz"), 1, "nanoseconds"),
                 ("diff prometheus cpu-4 - cpu-3", os.path.join(pr, "cpu-3.pb.gz"), os.path.join(pr, "cpu-4.pb.gz"), 1, "nanoseconds"),
                 ("diff demo-target heap - gotarget heap [alloc_space]", os.path.join(g, "heap.pb.gz"),
                  os.path.join(OUT, "collected", "heap.pb.gz"), 1, "bytes"),
                 ("diff demo-target cpu - gotarget cpu-6", os.path.join(g, "cpu-6.pb.gz"),
                  os.path.join(OUT, "collected", "cpu.pb.gz"), 1, "nanoseconds")]
        for name, base, cmp_, i, unit in diffs:
            jobs.append(ex.submit(check_diff, t, name, base, cmp_, i, unit))
        folded = [(os.path.join(g, "cpu-3.pb.gz"), 1, "nanoseconds"), (os.path.join(pr, "cpu-1.pb.gz"), 1, "nanoseconds"),
                  (os.path.join(g, "heap.pb.gz"), 1, "bytes"), (os.path.join(g, "goroutine.pb.gz"), 0, "count"),
                  (os.path.join(TESTDATA, "large", "nethttp-cpu.pb"), 1, "nanoseconds")]
        for f, i, unit in folded if "folded" in parts else []:
            jobs.append(ex.submit(check_folded, t, f"folded {os.path.relpath(f, TESTDATA)} [{i}]", f, i, unit))
        if "focus" in parts:
            for c in focus_cases(t):
                jobs.append(ex.submit(check_focus, t, *c))
        for j in jobs:
            j.result()
