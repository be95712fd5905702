"""Shared pieces of the Python test suites: the result tally, running commands, and reading
`go tool pprof` output. Every suite records cases through Tally so the runner can print the one
closing line `N passed, N failed`."""
import os
import re
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTDATA = os.environ.get("PPROF_TESTDATA") or os.path.join(os.path.dirname(ROOT), "shared", "testdata", "pprof")
OUT = os.path.join(ROOT, "build", "test")
TOOL = os.path.join(ROOT, "bin", "pprof-tool")


class Tally:
    """Counts cases; prints one line per case, details only for failures."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.lock = threading.Lock()

    def record(self, name, ok, detail=""):
        with self.lock:
            if ok:
                self.passed += 1
                print(f"ok - {name}", flush=True)
            else:
                self.failed += 1
                self.failures.append(name)
                print(f"not ok - {name}", flush=True)
                if detail:
                    for line in str(detail).rstrip().splitlines()[:40]:
                        print(f"    {line}", flush=True)


def run(cmd, timeout=600, env=None, check=False, **kw):
    """Runs cmd, returns CompletedProcess with text output; never raises on exit status."""
    e = dict(os.environ)
    e.setdefault("PPROF_TMPDIR", os.path.join(OUT, "pprof-tmp"))
    if env:
        e.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[:2000]}")
    return p


def free_port():
    """A loopback TCP port that was free a moment ago."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


VALUE_RE = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$")


def parse_value(tok):
    m = VALUE_RE.match(tok)
    if not m:
        raise ValueError(f"not a pprof value: {tok!r}")
    v = float(m.group(1))
    if v != int(v):
        raise ValueError(f"fractional value in base unit: {tok!r}")
    return int(v)


def strip_inline(name):
    """go tool pprof marks inlined nodes in its display name; the function is the same."""
    for suffix in (" (inline)", " (partial-inline)"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_go_top(text):
    """{name: (flat, cum)} from `go tool pprof -top` output printed in the base unit."""
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.split() == ["flat", "flat%", "sum%", "cum", "cum%"])
    except StopIteration:
        if "Showing nodes accounting for 0, 0% of 0 total" in text or "0 of 0 total" in text:
            return {}
        raise ValueError("no table in go tool pprof output:\n" + text[:2000])
    out = {}
    for l in lines[start + 1:]:
        if not l.strip():
            continue
        parts = l.split(None, 5)
        name = strip_inline(parts[5])
        if name in out:
            raise ValueError(f"name printed twice by go tool pprof: {name}")
        out[name] = (parse_value(parts[0]), parse_value(parts[3]))
    return out


def parse_our_top(text):
    out = {}
    for l in text.splitlines():
        flat, cum, name = l.split("\t", 2)
        if name in out:
            raise ValueError(f"name printed twice by pprof-tool: {name}")
        out[name] = (int(flat), int(cum))
    return out


def parse_go_traces(text):
    """{root;...;leaf: value} from `go tool pprof -traces` (labels ignored, equal stacks summed).

    Each sample is a block after a `-----+-----` rule: label lines `%10s:  values`, then
    `%10s   leaf-frame`, then one caller per line indented by 13 spaces."""
    out = {}
    for b in re.split(r"^-+\+-+$", text, flags=re.M)[1:]:
        frames, value = [], None
        for l in b.splitlines():
            if not l.strip():
                continue
            if value is not None and l.startswith(" " * 13):
                frames.append(strip_inline(l.strip()))
                continue
            tok = l.split(None, 1)
            if tok[0].endswith(":"):
                continue  # a label line
            value = parse_value(tok[0])
            frames.append(strip_inline(tok[1].strip()) if len(tok) > 1 else "")
        if not value:
            continue
        key = ";".join(reversed(frames))
        out[key] = out.get(key, 0) + value
    return {k: v for k, v in out.items() if v}


def sample_types(path):
    """[(type, unit)] of a profile, read by our tool's info command."""
    p = run([TOOL, "info", path], check=True)
    line = next(l for l in p.stdout.splitlines() if l.startswith("sample types:"))
    out = []
    for tok in line.split()[2:]:
        t, u = tok.rstrip("*").split("/", 1)
        out.append((t, u))
    return out


def go_unit(unit):
    return {"bytes": "B", "nanoseconds": "ns"}.get(unit, unit)


def go_pprof(args, timeout=600):
    return run(["go", "tool", "pprof", "-symbolize=none"] + args, timeout=timeout)


def go_top_args(index, unit):
    return ["-top", "-nodecount=1000000000", "-nodefraction=0", "-edgefraction=0",
            f"-sample_index={index}", f"-unit={go_unit(unit)}"]


def compare_maps(ours, theirs, what="value"):
    """'' when equal, else a readable list of differences."""
    diffs = []
    for k in sorted(set(ours) | set(theirs)):
        a, b = ours.get(k), theirs.get(k)
        if a != b:
            diffs.append(f"{k}: ours={a} go={b}")
    if not diffs:
        return ""
    return f"{len(diffs)} {what} differences (of {len(theirs)} go entries):\n" + "\n".join(diffs[:30])
