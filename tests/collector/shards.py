"""Shards (issue 15 §1, the collector's part): three bin/collector processes given the same
monitors and --shard 0, 1, 2 split them by a hash of each target's address, as Prometheus
Operator's hashmod does. The targets are real HTTP peers, one per port (the address is what is
hashed), each logging which shard asked (every collector sends its own X-Shard header, the one
line its config has apart from the others). What is checked:
  - every monitor is scraped by exactly one shard, the one FNV-1a 64 of its host:port modulo
    the count names (computed here, in Python, not by the collector); a pinned monitor goes to
    its shard modulo the count; `shard: all` to every shard;
  - a planned change of the count (previous_shards, change_at) 2 -> 3 and then 3 -> 2: before
    change_at the old split, after it the new one, and at the peers each target's requests come
    from its old shard and then its new one, never from two at once, without a gap;
  - the planned change happens at change_at even if the file became invalid meanwhile;
  - /metrics says which shard and how many; the log says what this shard took;
  - --shard outside 0..999: a clear message, exit 2.

Part (tests/run.py collector:shards): shards."""
import subprocess
import threading
import time

from harness import check, fnv_shard, make_profile, wait_for
from peers import Collector, PeerServer, QuietHandler

N_TARGETS = 24
INTERVAL = 1.0  # heap snapshots every second: a gap or a double shows within the window


class Peers:
    """N_TARGETS HTTP peers on ports of their own, each answering heap profiles and logging
    (monotonic time, X-Shard) per request."""

    def __init__(self):
        self.log = {}
        self.lock = threading.Lock()
        self.servers = []
        body = make_profile([("inuse_space", "bytes")], [([1], ["main.work", "main.main"], None)],
                            period_type=("space", "bytes"), period=524288)
        outer = self
        for i in range(N_TARGETS):
            class H(QuietHandler):
                idx = i

                def do_GET(self):
                    if not self.path.startswith("/debug/pprof/"):  # the pinned and everywhere monitors
                        return self.send_body(200, body)
                    with outer.lock:
                        outer.log.setdefault(self.idx, []).append((time.monotonic(), self.headers.get("X-Shard")))
                    self.send_body(200, body)
            self.servers.append(PeerServer(H))

    def address(self, i):
        return f"127.0.0.1:{self.servers[i].port}"

    def requests(self, i, since=0.0):
        with self.lock:
            return [r for r in self.log.get(i, []) if r[0] >= since]

    def stop(self):
        for s in self.servers:
            s.stop()


def config(peers, shard, sharding):
    lines = [f"sharding: {sharding}", "global:", f"  headers: {{X-Shard: '{shard}'}}", "monitors:"]
    for i in range(N_TARGETS):
        lines.append(f"- {{name: t{i}, endpoint: 'http://{peers.address(i)}', sampling: {{heap: {{interval_seconds: {INTERVAL}}}}}}}")
    # pinned to 4 (4 mod 3 = 1, 4 mod 2 = 0) and everywhere: on the first peer's address again
    lines.append(f"- {{name: pinned, endpoint: 'http://{peers.address(0)}/pinned', shard: 4, "
                 f"sampling: {{heap: {{interval_seconds: 60}}}}}}")
    lines.append(f"- {{name: everywhere, endpoint: 'http://{peers.address(0)}/all', shard: all, "
                 f"sampling: {{heap: {{interval_seconds: 60}}}}}}")
    return "\n".join(lines) + "\n"


def owners(cs):
    """{monitor: [shards whose targets list it]}"""
    out = {}
    for k, c in enumerate(cs):
        for t in c.targets():
            out.setdefault(t["monitor"], set()).add(k)
    return {m: sorted(s) for m, s in out.items()}


def expected(peers, shards):
    e = {f"t{i}": [fnv_shard(peers.address(i), shards)] for i in range(N_TARGETS)}
    e["pinned"] = [4 % shards]
    e["everywhere"] = list(range(3))
    return e


def handover_ok(peers, t0, t_change, old, new):
    """Each target's requests from t0 on: one run from its old shard, then one from its new one
    (the switch within 1.5 s of change_at), no gap over 2.5 intervals. The failures."""
    bad = []
    for i in range(N_TARGETS):
        reqs = peers.requests(i, since=t0)
        shards = [int(s) for _, s in reqs]
        o, n = fnv_shard(peers.address(i), old), fnv_shard(peers.address(i), new)
        switch = next((k for k, s in enumerate(shards) if s != o), len(shards))
        if shards[:switch] != [o] * switch or shards[switch:] != [n] * (len(shards) - switch):
            bad.append(f"t{i}: shards in order {shards} (old {o}, new {n})")
            continue
        if o != n and (switch == len(shards) or abs(reqs[switch][0] - t_change) > 1.5):
            bad.append(f"t{i}: moved {o}->{n} at {reqs[switch][0] - t_change if switch < len(shards) else None} s "
                       f"from change_at")
        gaps = [b[0] - a[0] for a, b in zip(reqs, reqs[1:])]
        if not reqs or max(gaps, default=0) > 2.5 * INTERVAL:
            bad.append(f"t{i}: {len(reqs)} requests, largest gap {max(gaps, default=0):.2f} s")
    return bad


def shards(t):
    peers = Peers()
    cs = []
    try:
        for k in range(3):
            cs.append(Collector(config(peers, k, "{shards: 3}"), extra_args=["--shard", str(k)], name=f"shard{k}"))

        def split():
            want = expected(peers, 3)
            got = wait_for(lambda: owners(cs) if owners(cs) == want else None, timeout=15) or owners(cs)
            per = [sum(1 for i in range(N_TARGETS) if want[f"t{i}"] == [k]) for k in range(3)]
            return got == want and min(per) > 0, f"got {got}\nwant {want}; targets per shard {per}"
        check(t, "collector shards: 3 shards split the monitors by FNV-1a of host:port mod 3 (each on exactly one); "
                 "shard: 4 goes to shard 1, shard: all to every one", split)

        def scraped_by_owner():
            time.sleep(3 * INTERVAL)
            t0 = time.monotonic()
            time.sleep(4 * INTERVAL)
            bad = []
            for i in range(N_TARGETS):
                who = {s for _, s in peers.requests(i, since=t0)}
                if who != {str(fnv_shard(peers.address(i), 3))}:
                    bad.append(f"t{i}: asked by shards {sorted(who)}")
            return not bad, "; ".join(bad)
        check(t, "collector shards: at the peers, each target is asked by its own shard only", scraped_by_owner)

        def metrics_and_log():
            got = [(c.metric("collector_shard"), c.metric("collector_shards")) for c in cs]
            logged = [f"on shard {k} of 3" in c.log_text() for k, c in enumerate(cs)]
            return got == [(0, 3), (1, 3), (2, 3)] and all(logged), f"metrics {got}; logged {logged}"
        check(t, "collector shards: /metrics collector_shard and collector_shards; the log names the shard's share",
              metrics_and_log)

        def change(old, new):
            def run():
                t_change = int(time.time()) + 6
                mono_change = time.monotonic() + (t_change - time.time())
                for k, c in enumerate(cs):
                    c.write_config(config(peers, k, f"{{shards: {new}, previous_shards: {old}, change_at: {t_change}}}"),
                                   atomic=True)
                time.sleep(3)
                before = owners(cs)
                t0 = time.monotonic()
                time.sleep(max(0, mono_change - time.monotonic()) + 6)
                after = owners(cs)
                bad = handover_ok(peers, t0, mono_change, old, new)
                want_before, want_after = expected(peers, old), expected(peers, new)
                return (before == want_before and after == want_after and not bad,
                        f"before {before == want_before} after {after == want_after}: "
                        f"{'; '.join(bad[:6])}\nbefore {before}\nafter {after}")
            return run
        check(t, "collector shards: 2 -> 3 planned at change_at: the old split until then (shard 2 idle but for "
                 "shard: all), the new one after; each target moves once, at change_at, no double, no gap",
              change(2, 3))
        check(t, "collector shards: 3 -> 2 planned at change_at: shard 2 keeps its share until then and then "
                 "scrapes only shard: all; each target moves once, no double, no gap", change(3, 2))

        def change_despite_invalid_file():
            # 2 -> 3 planned, then every file made invalid before change_at: the switch still comes,
            # from the config in force (the reloads of the broken file fail and are logged)
            t_change = int(time.time()) + 5
            for k, c in enumerate(cs):
                c.write_config(config(peers, k, f"{{shards: 3, previous_shards: 2, change_at: {t_change}}}"), atomic=True)
            planned = wait_for(lambda: all(f"3 shards from {t_change}" in c.log_text() for c in cs) or None, timeout=4)
            before = planned and owners(cs) == expected(peers, 2)
            for c in cs:
                c.write_config("monitors: [\n", atomic=True)
            refused = wait_for(lambda: all("config reload failed" in c.log_text() for c in cs) or None, timeout=4)
            time.sleep(max(0, t_change - time.time()) + 2)
            after = owners(cs)
            return (bool(before) and bool(refused) and after == expected(peers, 3),
                    f"plan loaded: {bool(planned)}; old split before: {bool(before)}; broken file refused: {bool(refused)}; after change_at {after}")
        check(t, "collector shards: the planned change happens at change_at even when the file became invalid meanwhile",
              change_despite_invalid_file)

        def bad_flags():
            out = []
            for v in ("1000", "-1", "x", ""):
                p = subprocess.run([Collector.binary, "-c", cs[0].config, "--shard", v], capture_output=True, text=True,
                                   timeout=20)
                out.append((v, p.returncode, "--shard wants 0..999" in p.stderr))
            return all(rc == 2 and said for _, rc, said in out), f"{out}"
        check(t, "collector shards: --shard outside 0..999 or not a number: a clear message, exit 2", bad_flags)
    finally:
        for c in cs:
            c.stop()
            c.cleanup()
        peers.stop()


PARTS = {"shards": shards}
