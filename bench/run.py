#!/usr/bin/env python3
"""`make bench`: the codec side by side with go tool pprof on the same inputs.

Whole process: bin/pprof-tool against `go tool pprof` (wall time median, peak RSS from wait4).
In process: build/rel/bench/codec-bench against google/pprof's profile package (bench/go-inproc,
a Go module pinned to the revision the machine's Go vendors for `go tool pprof`). Results go to build/bench/results.md; copy the
table into docs/benchmarks.md with the date and machine when they change."""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.environ.get("PPROF_TESTDATA") or os.path.join(os.path.dirname(ROOT), "shared", "testdata", "pprof")
OUT = os.path.join(ROOT, "build", "bench")
TOOL = os.path.join(ROOT, "bin", "pprof-tool")
CBENCH = os.path.join(ROOT, "build", "rel", "bench", "codec-bench")
GOENV = dict(os.environ, GOCACHE=os.path.join(ROOT, "build", "gocache"), GOPROXY="off", GOFLAGS="-mod=mod",
             PPROF_TMPDIR=os.path.join(OUT, "pprof-tmp"))


def timed(cmd):
    """(wall seconds, peak RSS MiB) of one run."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=GOENV)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {p.returncode}: {p.stderr.read().decode()[-1000:]}")
    return wall, ru.ru_maxrss / 1024.0


def median_run(cmd, runs):
    res = [timed(cmd) for _ in range(runs)]
    return statistics.median(r[0] for r in res), max(r[1] for r in res)


def build_go_inproc():
    out = os.path.join(OUT, "go-inproc")
    env = dict(GOENV, GOFLAGS="-mod=readonly", GOTOOLCHAIN="local")
    env.pop("GOPROXY")  # the one download: the pinned module, from the proxy go is configured with
    subprocess.check_call(["go", "build", "-o", out, "."], cwd=os.path.join(ROOT, "bench", "go-inproc"), env=env)
    return out


def jrun(cmd):
    return json.loads(subprocess.check_output(cmd, text=True, env=GOENV).strip().splitlines()[-1])


def cpu_inputs(n):
    """n CPU profiles of one service (prometheus cpu-1..6, cycled) as separate files."""
    src = sorted(glob.glob(os.path.join(TESTDATA, "prometheus", "cpu-*.pb.gz")))
    d = os.path.join(OUT, f"cpu{n}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    files = []
    for i in range(n):
        f = os.path.join(d, f"{i:04d}.pb.gz")
        shutil.copy(src[i % len(src)], f)
        files.append(f)
    return files


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []

    def row(what, ours, theirs, unit, better="lower"):
        ratio = theirs / ours if better == "lower" else ours / theirs
        rows.append((what, ours, theirs, unit, ratio))
        print(f"{what}: ours {ours:.3f} {unit}, go {theirs:.3f} {unit}, {ratio:.1f}x", flush=True)

    gomem = os.path.join(TESTDATA, "large", "gotypes-mem.pb")
    # whole process: top of the big heap profile
    ot, orss = median_run([TOOL, "top", gomem], 5)
    gt, grss = median_run(["go", "tool", "pprof", "-top", gomem], 3)
    row("top gotypes-mem.pb, wall", ot, gt, "s")
    row("top gotypes-mem.pb, peak RSS", orss, grss, "MiB")

    # the sandwich (focus) of a hot recursive function of the big heap profile: whole process
    # (decode + focus + print) against go tool pprof -peek, and the codec's focus alone in process
    fname = "go/types.(*Checker).importPackage"
    ot, orss = median_run([TOOL, "focus", f"--function={fname}", gomem], 5)
    gt, grss = median_run(["go", "tool", "pprof", "-symbolize=none", "-peek", "^" + re.escape(fname) + "$", gomem], 3)
    row("sandwich (focus) gotypes-mem.pb, wall", ot, gt, "s")
    row("sandwich (focus) gotypes-mem.pb, peak RSS", orss, grss, "MiB")
    c = jrun([CBENCH, "focus", gomem, fname, "7"])
    print(f"  detail focus {fname}: {c['focus_ms']:.1f} ms in process over {c['samples']} samples "
          f"({c['callers_nodes']} caller nodes, {c['callees_nodes']} callee nodes, {c['lines']} lines)", flush=True)
    rows.append((f"  focus alone in process ({c['samples']} samples, {c['callers_nodes']} + {c['callees_nodes']} nodes)",
                 c["focus_ms"], None, "ms", None))

    # whole process: merges
    for n, goruns in ((100, 3), (1000, 3)):
        files = cpu_inputs(n)
        ot, orss = median_run([TOOL, "merge", "-o", os.path.join(OUT, "m.pb.gz")] + files, 5)
        gt, grss = median_run(["go", "tool", "pprof", "-proto", "-output", os.path.join(OUT, "g.pb.gz")] + files, goruns)
        row(f"merge {n} CPU profiles, wall", ot, gt, "s")
        row(f"merge {n} CPU profiles, peak RSS", orss, grss, "MiB")

    # in process: decode throughput and merge
    goin = build_go_inproc()
    for name in ("large/gotypes-mem.pb", "large/compile-cpu.pb", "large/nethttp-mem.pb", "prometheus/heap.pb.gz"):
        f = os.path.join(TESTDATA, name)
        runs = 7 if "gotypes-mem" in name else 51
        c = jrun([CBENCH, "decode", f, str(runs)])
        g = jrun([goin, "parse", f, str(max(3, runs // 3))])
        row(f"decode {name} ({c['raw_bytes'] / 1e6:.1f} MB raw), throughput", c["decode_mb_s"], g["parse_mb_s"], "MB/s", "higher")
        print(f"  detail {name}: gunzip {c['gunzip_ms']:.1f} ms, protobuf-c unpack alone {c['protobuf_c_unpack_ms']:.1f} ms, "
              f"protobuf-c decode {c['protobuf_c_decode_ms']:.1f} ms, our decode {c['decode_ms']:.1f} ms, top {c['top_ms']:.1f} ms", flush=True)
        rows.append((f"  {name}: protobuf-c decode path", c["raw_bytes"] / 1e6 / (c["protobuf_c_decode_ms"] / 1e3), None, "MB/s", None))
    files = cpu_inputs(100)
    c = jrun([CBENCH, "merge", "9", *files])
    g = jrun([goin, "merge", "5", *files])
    row("merge 100 decoded CPU profiles in process", c["merge_ms"], g["merge_ms"], "ms")

    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; `make bench`.\n\n")
        f.write("| measurement | ours | go | unit | ours vs go |\n|---|---|---|---|---|\n")
        for what, ours, theirs, unit, ratio in rows:
            if theirs is None:
                f.write(f"| {what} | {ours:.1f} | | {unit} | |\n")
            else:
                f.write(f"| {what} | {ours:.3f} | {theirs:.3f} | {unit} | {ratio:.1f}x |\n")
    print(open(os.path.join(OUT, "results.md")).read())


if __name__ == "__main__":
    sys.exit(main())
