"""Shared pieces of the Python test suites: the result tally, running commands, and reading
`go tool pprof` output. Every suite records cases through Tally so the runner can print the one
closing line `N passed, N failed`."""
import os
import re
import subprocess
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TEST_DETAILS=1: passing cases print their details too (the figures docs/reliability.md quotes)
SHOW_DETAILS = os.environ.get("TEST_DETAILS") == "1"
TESTDATA = os.environ.get("PPROF_TESTDATA") or os.path.join(os.path.dirname(ROOT), "shared", "testdata", "pprof")
OUT = os.path.join(ROOT, "build", "test")
TOOL = os.path.join(ROOT, "bin", "pprof-tool")


# A case repeated under a sanitizer or valgrind says so in its name; the runner counts them apart.
SANITIZER_RE = re.compile(r"\[[at]san\]|under ASan|valgrind", re.I)


class Tally:
    """Counts cases; prints one line per case, details only for failures.

    Two kinds: product cases (the default) check the product; tool cases (`tool=True`) check
    our test tools and preconditions (a peer started, playwright installed, data collected for
    the later checks) and are reported apart: they never count as passed product cases, and a
    failed one fails the run."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.tool_passed = 0
        self.tool_failed = 0
        self.sanitizer_passed = 0
        self.failures = []
        self.lock = threading.Lock()

    def record(self, name, ok, detail="", tool=False):
        with self.lock:
            tag = "tool: " if tool else ""
            if ok:
                if tool:
                    self.tool_passed += 1
                else:
                    self.passed += 1
                    self.sanitizer_passed += bool(SANITIZER_RE.search(name))
                print(f"ok - {tag}{name}", flush=True)
            else:
                if tool:
                    self.tool_failed += 1
                else:
                    self.failed += 1
                self.failures.append(tag + name)
                print(f"not ok - {tag}{name}", flush=True)
            if detail and (not ok or SHOW_DETAILS):
                for line in str(detail).rstrip().splitlines()[:40]:
                    print(f"    {line}", flush=True)

    def tool(self, name, ok, detail=""):
        self.record(name, ok, detail, tool=True)


def check(t, name, fn, tool=False):
    """Records the case `name` from fn() -> (ok, detail); an exception in fn fails the case with
    its traceback, so one broken check never ends a suite's part."""
    rec = t.tool if tool else t.record  # (the suites' tally wrappers have both, not always the tool= flag)
    try:
        ok, detail = fn()
        rec(name, bool(ok), detail)
    except Exception:
        rec(name, False, traceback.format_exc()[-2000:])


def wait_for(fn, timeout=30, step=0.2):
    """fn's first truthy result within timeout seconds, else None; an exception counts as a
    falsy answer (a peer or server that is not there yet), retried until the deadline."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(step)
    return None


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


def ensure_playwright(t):
    """playwright-core in tests/ui/node_modules (npm ci, the committed lock; it downloads no
    browser: the tests drive Debian's chromium). Whether it is there."""
    ui = os.path.join(ROOT, "tests", "ui")
    if os.path.isdir(os.path.join(ui, "node_modules", "playwright-core")):
        return True
    p = run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ui, timeout=300)
    t.tool("ui: npm ci installs playwright-core (no browser download)", p.returncode == 0, p.stderr[-2000:])
    return p.returncode == 0


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


def parse_go_peek(text):
    """{function: (flat, cum, {caller: weight}, {callee: weight})} from `go tool pprof -peek`
    in base units: each block after a `---+---` rule is the in-edges (2 columns before `|`),
    the function's line (5 columns) and the out-edges; an edge's name follows `|` and 3 spaces."""
    out = {}
    for block in re.split(r"^-+\+-+$", text, flags=re.M)[1:]:
        node, ins, outs = None, {}, {}
        for l in block.splitlines():
            if "|" not in l:
                continue
            left, right = l.split("|", 1)
            cols = left.split()
            if len(cols) == 5:
                node = (right.strip(), parse_value(cols[0]), parse_value(cols[3]))
            elif len(cols) == 2:
                name = strip_inline(right.strip())
                d = outs if node else ins
                if name in d:
                    raise ValueError(f"edge printed twice by go tool pprof -peek: {name}")
                d[name] = parse_value(cols[0])
            elif cols != ["calls", "calls%", "+", "context"] and cols:
                raise ValueError(f"unexpected -peek line: {l!r}")
        if node:
            out[node[0]] = (node[1], node[2], ins, outs)
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


def go_sample_types(path):
    """[(type, unit)] of a profile as go tool pprof reads it (the independent list of what each
    profile holds). A focus that matches nothing keeps -raw from printing the samples."""
    p = go_pprof(["-raw", "-focus=^never matches$", path])
    lines = p.stdout.splitlines()
    if p.returncode != 0 or "Samples:" not in lines:
        raise RuntimeError(f"go tool pprof -raw {path}: {p.stderr.strip()[:1000]}")
    out = []
    for tok in lines[lines.index("Samples:") + 1].split():
        t, u = tok.replace("[dflt]", "").split("/", 1)
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


# ---- go tool pprof -raw: the whole profile as go reads it --------------------------------------

class RawProfile:
    """A profile as `go tool pprof -raw` prints it (google/pprof's Profile.String()), in a form
    that does not depend on entity IDs or order: header lines, sample types, a multiset of
    samples (values, stack of resolved locations, label lines), the locations and mappings.

    A location is (address, its mapping's text, folded flag, its line texts); a mapping is its
    text without the ID. Two profiles go reads identically compare equal."""

    def __init__(self, text):
        lines = text.splitlines()
        try:
            i_samples = lines.index("Samples:")
            i_locs = lines.index("Locations", i_samples)
            i_maps = lines.index("Mappings", i_locs)
        except ValueError:
            raise ValueError("not go tool pprof -raw output:\n" + text[:1000])
        self.header = lines[:i_samples]
        self.types = [t.replace("[dflt]", "") for t in lines[i_samples + 1].split()]
        self.default = next((t.replace("[dflt]", "") for t in lines[i_samples + 1].split() if "[dflt]" in t), "")
        self.mappings = {}
        for l in lines[i_maps + 1:]:
            if l.strip():
                mid, rest = l.split(": ", 1)
                self.mappings[int(mid)] = rest.rstrip()
        self.locations = {}
        cur = None
        for l in lines[i_locs + 1:i_maps]:
            m = re.match(r"^ *(\d+): (0x[0-9a-f]+) (M=(\d+) )?(\[F\] )?(.*)$", l)
            if m:
                cur = int(m.group(1))
                mapping = self.mappings.get(int(m.group(4))) if m.group(4) else None
                self.locations[cur] = [int(m.group(2), 16), mapping, bool(m.group(5)), [m.group(6).rstrip()] if m.group(6).strip() else []]
            elif l.startswith(" " * 13) and cur is not None:
                self.locations[cur][3].append(l.strip())
            elif l.strip():
                raise ValueError(f"unexpected location line: {l!r}")
        self.locations = {k: (a, m, f, tuple(ls)) for k, (a, m, f, ls) in self.locations.items()}
        self.samples = {}
        cur = None
        for l in lines[i_samples + 2:i_locs]:
            if l.startswith(" " * 16) and cur is not None:
                cur[2].append(l.strip())
                continue
            vals, _, locs = l.partition(":")
            if not _:
                raise ValueError(f"unexpected sample line: {l!r}")
            if cur is not None:
                self._add(cur)
            cur = (tuple(int(v) for v in vals.split()), tuple(self.locations[int(x)] for x in locs.split()), [])
        if cur is not None:
            self._add(cur)

    def _add(self, s):
        key = (s[0], s[1], tuple(s[2]))
        self.samples[key] = self.samples.get(key, 0) + 1

    def first_mapping(self):
        return self.mappings[min(self.mappings)] if self.mappings else None


def go_raw(path):
    """RawProfile of a file as go tool pprof reads it."""
    p = go_pprof(["-raw", path])
    if p.returncode != 0:
        raise RuntimeError(f"go tool pprof -raw {path}: {p.stderr.strip()[:1000]}")
    return RawProfile(p.stdout)


def compare_raw(ours, theirs, mappings_as_set=False):
    """'' when go reads both profiles identically, else the differences, briefly.

    mappings_as_set: merged profiles number their mappings in the order they were met, which
    google/pprof and we may do differently; the set and the first (main binary) must agree."""
    out = []
    if ours.header != theirs.header:
        out.append(f"header: ours {ours.header} go {theirs.header}")
    if ours.types != theirs.types or ours.default != theirs.default:
        out.append(f"sample types: ours {ours.types} [{ours.default}] go {theirs.types} [{theirs.default}]")
    om, tm = sorted(ours.mappings.values()), sorted(theirs.mappings.values())
    if om != tm or ours.first_mapping() != theirs.first_mapping() or \
            (not mappings_as_set and [ours.mappings[k] for k in sorted(ours.mappings)] != [theirs.mappings[k] for k in sorted(theirs.mappings)]):
        out.append(f"mappings: ours {[ours.mappings[k] for k in sorted(ours.mappings)][:6]} go {[theirs.mappings[k] for k in sorted(theirs.mappings)][:6]}")
    ol, tl = sorted(map(repr, ours.locations.values())), sorted(map(repr, theirs.locations.values()))
    if ol != tl:
        a, b = set(ol), set(tl)
        out.append(f"locations: {len(ol)} ours, {len(tl)} go; only ours {sorted(a - b)[:3]}; only go {sorted(b - a)[:3]}")
    if ours.samples != theirs.samples:
        a, b = set(ours.samples.items()), set(theirs.samples.items())
        only_a, only_b = sorted(a - b, key=repr), sorted(b - a, key=repr)
        show = lambda xs: [(k[0], [l[3][:1] for l in k[1]][:4], k[2], n) for k, n in xs[:3]]
        out.append(f"samples: {sum(ours.samples.values())} ours, {sum(theirs.samples.values())} go; "
                   f"{len(only_a)} only ours {show(only_a)}; {len(only_b)} only go {show(only_b)}")
    return "\n".join(out)


# ---- a tiny pprof encoder, for peers that serve profiles with values we choose -----------------

def varint(v):
    v &= (1 << 64) - 1  # int64 values as protobuf writes them (two's complement)
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, payload):
    if isinstance(payload, int):
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def make_profile(types, samples, time_nanos=0, duration_nanos=0, period_type=None, period=0, compress=True):
    """A pprof profile: types [(type, unit)], samples [(values, [function names, leaf first],
    {label: str value})]. One function and one location per distinct name."""
    import gzip
    strings = [""]
    idx = {"": 0}

    def s(x):
        if x not in idx:
            idx[x] = len(strings)
            strings.append(x)
        return idx[x]
    fn_ids = {}
    body = b""
    for ty, unit in types:
        body += field(1, field(1, s(ty)) + field(2, s(unit)))
    for values, stack, labels in samples:
        for name in stack:
            fn_ids.setdefault(name, len(fn_ids) + 1)
        sample = field(1, b"".join(varint(fn_ids[n]) for n in stack)) + field(2, b"".join(varint(v) for v in values))
        for k, v in sorted((labels or {}).items()):
            sample += field(3, field(1, s(k)) + field(2, s(v)))
        body += field(2, sample)
    for name, i in fn_ids.items():
        body += field(4, field(1, i) + field(4, field(1, i) + field(2, 1)))  # location i -> function i, line 1
        body += field(5, field(1, i) + field(2, s(name)) + field(3, s(name)) + field(4, s(name.split(".")[0] + ".go")))
    pt = period_type or types[-1]
    tail = field(9, time_nanos) if time_nanos else b""
    tail += field(10, duration_nanos) if duration_nanos else b""
    tail += field(11, field(1, s(pt[0])) + field(2, s(pt[1]))) + (field(12, period) if period else b"")
    for x in strings:
        body += field(6, x.encode())
    body += tail
    return gzip.compress(body) if compress else body


def wide_profile(levels=6, branch=7, prefix="pkg", skew=0, root=None):
    """A gzipped CPU profile whose call tree has 1 + sum(branch^d, d = 1..levels) nodes (137,257
    for 6 x 7; megabytes once decoded, from about 1 MB of gzip): every function of a level calls
    every one of the next, one sample of 10 ms per leaf path. Profiles of different prefixes
    share no function. skew > 0: a leaf path's sample is 10 to 50 ms, by its functions and skew
    (the same tree with other weights, for a diff that changes everywhere). root: the name of
    one more function, the outermost frame of every stack (whose sandwich is the whole tree)."""
    import gzip
    import time
    strings = ["", "samples", "count", "cpu", "nanoseconds"]
    idx = {s: i for i, s in enumerate(strings)}

    def s(v):
        if v not in idx:
            idx[v] = len(strings)
            strings.append(v)
        return idx[v]
    p = field(1, field(1, s("samples")) + field(2, s("count"))) + field(1, field(1, s("cpu")) + field(2, s("nanoseconds")))
    p += field(11, field(1, s("cpu")) + field(2, s("nanoseconds"))) + field(12, 10000000)
    for d in range(levels):
        for k in range(branch):
            fid = d * branch + k + 1
            p += field(5, field(1, fid) + field(2, s(f"{prefix}/level{d}.fn{k}")))
            p += field(4, field(1, fid) + field(4, field(1, fid) + field(2, d + 1)))
    outer = []
    if root:
        rid = levels * branch + 1
        p += field(5, field(1, rid) + field(2, s(root)))
        p += field(4, field(1, rid) + field(4, field(1, rid) + field(2, 1)))
        outer = [rid]
    out = []

    def walk(depth, ids):
        if depth == levels:
            v = 10000000 * (1 + (sum(i * i for i in ids) * skew) % 5) if skew else 10000000
            out.append(field(2, field(1, b"".join(varint(i) for i in reversed(outer + ids))) + field(2, varint(1) + varint(v))))
            return
        for k in range(branch):
            walk(depth + 1, ids + [depth * branch + k + 1])
    walk(0, [])
    p += b"".join(out)
    for v in strings:
        p += field(6, v.encode())
    p += field(9, time.time_ns())
    return gzip.compress(p)


def decode_render_binary(b):
    """/api/v1/render?encoding=binary (docs/api.md) decoded here, independently of the UI's
    reader: the JSON part with each node block turned back into JSON's node lists
    [name, parent, self, total(, baseSelf, baseTotal)]; raises ValueError on a malformed answer."""
    import json
    import struct
    if len(b) < 12:
        raise ValueError(f"{len(b)} bytes: no header")
    magic, ver, jl = struct.unpack_from("<4sII", b, 0)
    if magic != b"PPRB" or ver != 1 or 12 + jl > len(b):
        raise ValueError(f"header {magic!r} version {ver} json length {jl} of {len(b)} bytes")
    doc = json.loads(b[12:12 + jl])
    base = (12 + jl + 7) // 8 * 8
    if any(b[12 + jl:base]):
        raise ValueError("padding is not zeros")
    ends = []

    def rows(o):
        n, v, off, g = o["count"], o["values"], base + o["offset"], o.get("scale")
        vb = 4 if g else 8  # int32 that the scale multiplies, or doubles
        if v not in (2, 4) or off + n * (8 + vb * v) > len(b) or (g is not None and not (isinstance(g, int) and g > 0)):
            raise ValueError(f"block {o} outside the {len(b)} bytes")
        ends.append(off + n * (8 + vb * v))
        name = struct.unpack_from(f"<{n}i", b, off)
        par = struct.unpack_from(f"<{n}i", b, off + 4 * n)
        if g:
            cols = [[q * g for q in struct.unpack_from(f"<{n}i", b, off + 8 * n + 4 * n * c)] for c in range(v)]
        else:
            cols = [struct.unpack_from(f"<{n}d", b, off + 8 * n + 8 * n * c) for c in range(v)]
        return [[name[i], par[i], *[cols[c][i] for c in range(v)]] for i in range(n)]
    d = doc.get("data") or {}
    if "nodes" in d:
        d["nodes"] = rows(d["nodes"])
    if d.get("focus"):
        for k in ("callers", "callees"):
            d["focus"][k]["nodes"] = rows(d["focus"][k]["nodes"])
    if ends and max(ends) != len(b):
        raise ValueError(f"{len(b) - max(ends)} bytes after the last block")
    return doc


def fnv_shard(address, shards):
    """The shard of a target's host:port, as the collector and the operator are to pick it
    (FNV-1a 64 modulo the count), written again here as the oracle."""
    h = 14695981039346656037
    for b in address.encode():
        h = ((h ^ b) * 1099511628211) % (1 << 64)
    return h % shards


def pb_request(*fields):
    """protobuf of (field number, str or non-negative int) pairs, in order: the querier.v1
    requests tests and benchmarks send, written out here rather than by the code under test"""
    def varint(v):
        out = b""
        while True:
            b = v & 0x7F
            v >>= 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out
    out = b""
    for num, v in fields:
        if isinstance(v, str):
            out += varint(num << 3 | 2) + varint(len(v.encode())) + v.encode()
        else:
            out += varint(num << 3) + varint(v)
    return out
