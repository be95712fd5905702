"""Segments copied to an S3-compatible bucket (issue 15 §2, first part): bin/collector with
--object-store-* against a real S3 server on loopback, versitygw (Apache-2.0, built from
tools/versitygw with its posix backend, so each object is a file we can compare byte for byte
with the collector's segment file). Profiles are pushed through POST /ingest to roll 1 MiB
segments quickly. What is checked:
  - every closed segment of both tiers ends up in the bucket, byte-identical, and the active
    one is not there (it still changes);
  - the bucket unreachable: scraping and storing go on, failures and the queue show in
    /metrics and one log line; once it is back the queue drains by itself;
  - a stop closes the active segments and uploads them before the process ends; a restart
    does not upload again what was uploaded (the uploads file);
  - the bucket's copy is enough: a fresh data directory holding only the bucket's objects
    opens (the index rebuilt from them) with every profile the collector had;
  - bucket retention deletes objects whose newest record is older than it, and only those;
  - local retention deleting segments before their upload (bucket down, a small budget): the
    lost counter and a log line;
  - wrong credentials: the server's refusal (HTTP 403 and its code) in the log, storing goes on;
  - a segment closes at --segment-max-age even when nothing more is written, and is uploaded;
  - bad flags: a clear message and exit 2.

Part (tests/run.py collector:objstore): objstore."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from harness import ROOT, TESTDATA, check, ensure_playwright, go_pprof, go_raw, go_top_args, run, wait_for
from peers import Collector, http_req
from s3server import VGW, S3Server

AK, SK = "pprofci", "pprof-ci-secret-1"
CREDS = {"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK}
BUCKET = "profiles"
# CPU profiles only: each push is one stored profile (a heap push is two)
PROFILES = [open(os.path.join(TESTDATA, "prometheus", f"cpu-{i}.pb.gz"), "rb").read() for i in range(1, 7)]


def S3():
    return S3Server(AK, SK, BUCKET)


def push(c, n, app="app", ago=0, pods=50):
    """n profiles pushed to c through /ingest (spread over `pods` series, four requests at a
    time), ending `ago` seconds ago."""
    from concurrent.futures import ThreadPoolExecutor
    now = int(time.time()) - ago

    def one(i):
        q = f"name={app}%7Bpod%3Dp{i % pods}%7D&from={now - 10}&until={now}"
        st, b, _ = http_req("POST", c.url + "/ingest?" + q, data=PROFILES[i % len(PROFILES)],
                            headers={"Content-Type": "application/octet-stream"}, timeout=60)
        if st != 200:
            raise RuntimeError(f"push {i}: {st} {b[:200]!r}")
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(one, range(n)))


def raw_segments(c):
    """How many segments of raw profiles (tier 0) c's index lists (rollups have their own)."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(c.data, 'index.db')}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM segment WHERE tier = 0").fetchone()[0]
    finally:
        db.close()


def segment_ids(c, tier):
    """The ids of c's segments of that tier, as its index lists them."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(c.data, 'index.db')}?mode=ro", uri=True, timeout=10)
    try:
        return [i for (i,) in db.execute("SELECT id FROM segment WHERE tier = ?", (tier,))]
    finally:
        db.close()


def active_segments(c):
    """File names of the newest segment of each tier (the ones still written to)."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(c.data, 'index.db')}?mode=ro", uri=True, timeout=10)
    try:
        return {f"{i:016x}.seg" for (i,) in db.execute("SELECT MAX(id) FROM segment GROUP BY tier")}
    finally:
        db.close()


def fill(c, closed, app="app", ago=0):
    """Pushes until c has made `closed` + 1 new segments of raw profiles (of 1 MiB): all but the
    newest of them are closed. The profiles pushed."""
    start = raw_segments(c)
    n = 0
    while raw_segments(c) < start + closed + 1 and n < 40000:
        push(c, 250, app=app, ago=ago)
        n += 250
    return n


def page_notes(t, *urls):
    """What the explorer pages at urls say about a partial answer, drawn in Debian's chromium
    (tests/ui/partial_note.mjs): the note's text, or None where a page shows none."""
    if not os.path.exists("/usr/bin/chromium"):
        t.tool("objstore: Debian's chromium is installed (make deps)", False, "missing /usr/bin/chromium")
        return []
    if not ensure_playwright(t):
        return []
    p = run(["node", os.path.join(ROOT, "tests", "ui", "partial_note.mjs"), *urls], timeout=180)
    if p.returncode != 0:
        raise RuntimeError(f"partial_note.mjs exited {p.returncode}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def go_totals(profile):
    """Each sample type's total of a profile (bytes), as go tool pprof -raw reads it."""
    with tempfile.NamedTemporaryFile(suffix=".pb.gz") as f:
        f.write(profile)
        f.flush()
        r = go_raw(f.name)
    return [sum(v[j] * c for (v, _, _), c in r.samples.items()) for j in range(len(r.types))]


def local_segments(c):
    return {os.path.basename(p): open(p, "rb").read() for p in glob.glob(os.path.join(c.data, "segments", "*.seg"))}


def m_eq(a, b):
    """Two render answers: the same total, profile count and names."""
    return bool(a) and all(a.get(k) == b.get(k) for k in ("total", "profiles", "names")) and a.get("total")


def m(c, name):
    v = c.metric(name)
    return -1 if v is None else v


class Asker:
    """The same merge asked of c again and again (a thread; by each of aggs in turn) while local
    retention deletes the segments it reads: each answer that says it is whole must count every
    profile (none counted twice, none lost between the deletion and the next upload scan)."""

    def __init__(self, c, sel, pushed, aggs=("sum",)):
        self.c, self.sel, self.pushed, self.aggs = c, sel, pushed, aggs
        self.during, self.stop = [], threading.Event()
        self.th = threading.Thread(target=self.ask)
        self.th.start()

    def ask(self):
        try:
            while not self.stop.is_set():
                agg = self.aggs[len(self.during) % len(self.aggs)]
                gone = m(self.c, "collector_retention_deleted_segments_total")  # (before it is asked)
                qs, qb, qh = http_req("GET", self.c.url + f"/api/v1/render?{self.sel}&agg={agg}", timeout=60)
                d = json.loads(qb).get("data", {}) if qs == 200 else {}
                self.during.append((qs, d.get("profiles"), d.get("partial") is True or "X-Pprof-Partial" in qh, gone, agg))
        except Exception as e:  # noqa: BLE001 (recorded: the check fails on it)
            self.during.append((repr(e), None, False, -1, None))

    def finish(self, whole_after=1):
        """Stops asking: (whether every answer was right, with enough of them asked after the first
        deletion and `whole_after` of those whole (where the bucket is read: or the check would
        pass on partial answers alone); what to print). Asks on until five were asked after the
        first deletion (at most 90 s more: under ThreadSanitizer an answer takes seconds, and
        retention may delete the segments in one pass just before the caller stops)."""
        deadline = time.time() + 90
        while time.time() < deadline and self.th.is_alive() and sum(1 for a in self.during if a[3] >= 1) < 5:
            time.sleep(0.5)
        self.stop.set()
        self.th.join()
        d = self.during
        wrong = [a for a in d if a[0] != 200 or (not a[2] and a[1] != self.pushed)]
        after = sum(1 for a in d if a[3] >= 1)
        whole = sum(1 for a in d if a[3] >= 1 and a[0] == 200 and not a[2])
        return (not wrong and after >= 5 and whole >= whole_after,
                f"during the deletions {len(d)} merges ({after} after the first, {whole} of them whole), wrong "
                f"(status, profiles, partial, deletions, agg) {wrong[:5]}")


def objstore(t):
    if not os.access(VGW, os.X_OK):
        t.tool("objstore: bin/versitygw is built (make test-bins)", False, VGW)
        return
    s3 = S3()
    made = []

    def collector(prefix, extra=(), env=CREDS, name="objstore"):
        args = ["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET, "--object-store-prefix", prefix,
                "--retention-size", "20MiB", *extra]  # segments roll at 1 MiB
        c = Collector("monitors: []\n", extra_args=args, name=name, env=env)
        made.append(c)
        return c

    try:
        c = collector("cluster-a/c0")

        def uploaded_equal():
            fill(c, 2)
            # closed = every local segment but the newest of each tier; wait until all are there
            def settled():
                loc, obj = local_segments(c), s3.objects("cluster-a/c0")
                return (loc, obj) if len(obj) >= 2 and m(c, "collector_upload_queue_segments") == 0 else None
            got = wait_for(settled, timeout=60)
            if not got:
                return False, f"bucket {sorted(s3.objects('cluster-a/c0'))}, local {sorted(local_segments(c))}, metrics " \
                              f"{ {k: v for k, v in c.metrics().items() if 'upload' in k} }"
            loc, obj = got
            same = [k for k in obj if loc.get(k) == obj[k]]
            active = active_segments(c)  # the newest of each tier
            newest = max(loc)
            return (len(same) == len(obj) and newest not in obj and set(obj) == set(loc) - active
                    and m(c, "collector_upload_segments_total") == len(obj)
                    and m(c, "collector_upload_bytes_total") == sum(len(v) for v in obj.values()),
                    f"{len(obj)} objects, {len(same)} byte-identical to their segment; {len(loc)} local; newest "
                    f"{newest} in bucket: {newest in obj}; segments_total {m(c, 'collector_upload_segments_total')}")
        check(t, "collector objstore: closed segments reach the bucket byte for byte (PUT signed by libcurl's SigV4, CRC-32 "
                 "checked by the server); the active segment stays local", uploaded_equal)

        def outage():
            before = len(s3.objects("cluster-a/c0"))
            s3.stop()
            fails0 = m(c, "collector_upload_failures_total")
            stored0 = m(c, "collector_store_profiles")
            pushed = fill(c, 1)
            queued = wait_for(lambda: m(c, "collector_upload_queue_segments") >= 1
                              and m(c, "collector_upload_failures_total") > fails0 or None, timeout=30)
            stored = m(c, "collector_store_profiles") - stored0
            log_fail = bool(wait_for(lambda: "object store: uploads fail" in c.log_text() or None, timeout=10))
            s3.start()
            drained = wait_for(lambda: m(c, "collector_upload_queue_segments") == 0
                               and len(s3.objects("cluster-a/c0")) > before or None, timeout=90)
            loc, obj = local_segments(c), s3.objects("cluster-a/c0")
            missing = sorted(set(loc) - active_segments(c) - set(obj))  # closed, yet not in the bucket
            same = all(loc.get(k) == v for k, v in obj.items() if k in loc) and not missing
            log_back = bool(wait_for(lambda: "object store: uploads succeed again" in c.log_text() or None, timeout=10))
            return (bool(queued) and stored == pushed and log_fail and bool(drained) and same and log_back,
                    f"queued while down: {bool(queued)}; stored while down {stored} of {pushed}; logged: {log_fail}; missing "
                    f"from the bucket {missing}; drained "
                    f"after: {bool(drained)}; objects {before} -> {len(obj)}, identical {same}; logged back: {log_back}")
        check(t, "collector objstore: with the bucket down, profiles are still stored, failures and the queue show in /metrics "
                 "and the log; back up, the queue drains by itself", outage)

        def stop_uploads_then_restart_sends_nothing():
            n_before = len(s3.objects("cluster-a/c0"))
            active = active_segments(c) & set(local_segments(c))  # a tier's may be none yet
            c.stop()
            at_stop = s3.objects("cluster-a/c0")
            loc = local_segments(c)
            same = all(at_stop.get(k) == loc[k] for k in active)
            logged = "stopping: every closed segment is in the object store" in c.log_text()
            c.start()
            time.sleep(5)  # two scans or more: nothing is sent again
            sent = m(c, "collector_upload_segments_total")
            return (bool(active) and same and logged and sent == 0 and len(s3.objects("cluster-a/c0")) == n_before + len(active),
                    f"segments active at the stop {sorted(active)} in the bucket when the process had ended, byte for byte: "
                    f"{same}; logged: {logged}; PUTs after the restart {sent}; objects {n_before} -> "
                    f"{len(s3.objects('cluster-a/c0'))}")
        check(t, "collector objstore: a stop closes the active segments and uploads them before the process ends; a restart "
                 "sends nothing already uploaded", stop_uploads_then_restart_sends_nothing)

        def restore_from_bucket():
            profiles = m(c, "collector_store_profiles")
            c.stop()  # uploads every segment before it ends
            c.start()
            c.stop()
            d = tempfile.mkdtemp(prefix="restore-")
            os.makedirs(os.path.join(d, "segments"))
            for k, v in s3.objects("cluster-a/c0").items():
                open(os.path.join(d, "segments", k), "wb").write(v)
            r = Collector("monitors: []\n", data_dir=d, name="restore")
            made.append(r)
            try:
                got = m(r, "collector_store_profiles")
                series = http_req("GET", r.url + "/api/v1/series?service_name=app")
                log = r.log_text()
                return (got == profiles and got > 0 and "index rebuilt=1" in log,
                        f"profiles {got} from the bucket, {profiles} in the collector; rebuilt: {'index rebuilt=1' in log}; "
                        f"series answer {series[0]}")
            finally:
                r.stop()
                shutil.rmtree(d, ignore_errors=True)
        check(t, "collector objstore: a data directory made of the bucket's objects alone opens with every profile (the index "
                 "rebuilt from the segments)", restore_from_bucket)

        def restore_on_new_directory():
            # c is stopped, every segment in the bucket: a collector on a new, empty data directory
            # with the same prefix starts from the bucket's copy (a pod whose volume was deleted)
            c.start()
            want = c.get_json("/api/v1/render?type=cpu&agg=sum&local=1")[1].get("data", {})
            want_profiles = m(c, "collector_store_profiles")
            c.stop()
            objects = s3.objects("cluster-a/c0")
            r = collector("cluster-a/c0", name="objstore-restored")
            got = r.get_json("/api/v1/render?type=cpu&agg=sum")[1].get("data", {})
            restored = set(local_segments(r))
            log = r.log_text()
            said = f"{len(objects)} of {len(objects)} segments restored from the bucket" in log
            time.sleep(5)  # two upload scans: nothing restored is sent back
            sent = m(r, "collector_upload_segments_total")
            state = open(os.path.join(r.data, "uploads")).read().splitlines()
            unknown = [ln for ln in state[1:] if ln.split()[3] == "-1"]
            r.stop()
            r.start()  # now it has a store: no second restore
            again = r.log_text().count("segments restored from the bucket")
            r.stop()
            return (restored == set(objects) and want_profiles > 0 and m_eq(got, want) and said and sent == 0
                    and len(s3.objects("cluster-a/c0")) == len(objects) and not unknown and len(state) == len(objects) + 1
                    and again == 1,
                    f"restored {len(restored)} files of {len(objects)} objects, same names {restored == set(objects)}; "
                    f"answer {got.get('total')}/{got.get('profiles')} vs {want.get('total')}/{want.get('profiles')} "
                    f"({want_profiles} stored); logged {said}; PUTs after {sent}; objects now "
                    f"{len(s3.objects('cluster-a/c0'))}; uploads file {len(state)} lines, ends unknown {unknown[:3]}; "
                    f"restores logged after a restart {again}\n{log[-800:]}")
        check(t, "collector objstore: a new data directory starts from the bucket's copy (every segment, the same answer), "
                 "sends nothing back, and restores only once", restore_on_new_directory)

        def restore_within_budget():
            objects = s3.objects("cluster-a/c0")
            r = collector("cluster-a/c0", name="objstore-restored-small", extra=["--retention-size", "3MiB"])
            got = set(local_segments(r))
            log = r.log_text()
            r.stop()
            # the newest by their objects' oldest record, as many as 3 MiB holds
            keys = sorted(s3.keys("cluster-a/c0"), reverse=True)
            want, total = set(), 0
            for k in keys:
                size = len(objects[k.split("-", 1)[1]])
                if total + size > 3 << 20:
                    break
                total += size
                want.add(k.split("-", 1)[1])
            return (got == want and 0 < len(got) < len(objects) and
                    f"{len(want)} of {len(objects)} segments restored" in log and f"{len(objects) - len(want)} older left there" in log,
                    f"restored {sorted(got)}, want {sorted(want)} of {len(objects)}\n{log[-600:]}")
        check(t, "collector objstore: with --retention-size the restore takes the newest segments the budget holds and "
                 "says how many it left in the bucket", restore_within_budget)

        def new_destination_and_reused_ids():
            # the same data directory, another prefix: the uploads file describes the old one, so
            # every closed segment goes to the new one
            local = set(local_segments(c))
            i = c.extra.index("--object-store-prefix")
            c.extra[i + 1] = "cluster-a/moved"
            c.start()
            moved = wait_for(lambda: local <= set(s3.objects("cluster-a/moved")) or None, timeout=90)
            c.stop()
            # a data directory started anew under a prefix that has objects: its ids count from 1
            # again, and its objects must not replace the old ones
            first = {k: v for k, v in s3.objects("cluster-a/moved").items()}
            shutil.rmtree(c.data)
            c.extra.append("--no-object-store-restore")  # (else it starts from the bucket's copy)
            c.start()
            fill(c, 1, app="again", ago=3600)  # another oldest record than the first directory's
            c.stop()
            c.start()  # the active one closes: every segment of the new directory is closed
            want = set(local_segments(c))
            both = wait_for(lambda: len(os.listdir(os.path.join(s3.dir, BUCKET, "cluster-a/moved", "segments")))
                            >= len(first) + len(want) or None, timeout=90)
            names = sorted(os.listdir(os.path.join(s3.dir, BUCKET, "cluster-a/moved", "segments")))
            kept = {n[17:]: open(os.path.join(s3.dir, BUCKET, "cluster-a/moved", "segments", n), "rb").read()
                    for n in names}
            old_intact = sum(1 for n in names if open(os.path.join(s3.dir, BUCKET, "cluster-a/moved", "segments", n), "rb").read()
                             in first.values())
            reused = sorted(set(first) & want)
            return (bool(moved) and bool(both) and old_intact == len(first) and len(names) == len(first) + len(want)
                    and bool(reused),
                    f"moved to the new prefix: {bool(moved)} ({len(local)} local); objects {len(names)} = {len(first)} "
                    f"old + {len(want)} new? old intact {old_intact}; ids used twice {reused}; {sorted(kept)[:6]}")
        check(t, "collector objstore: a new prefix gets every closed segment (the uploads file names its destination); a "
                 "data directory started anew under the same prefix reuses segment ids without replacing any object",
              new_destination_and_reused_ids)

        def bucket_retention():
            old = collector("cluster-a/old", extra=["--object-store-retention", "1d"], name="objstore-old")
            fill(old, 1, app="old", ago=3 * 86400)  # records three days old: past 1d, never sent
            old.stop()  # the segment of the old records closes
            old.start()
            fill(old, 1, app="recent")  # today's: sent, and kept
            recent = wait_for(lambda: s3.objects("cluster-a/old") or None, timeout=60)
            time.sleep(3)  # a retention pass or more after their upload
            left = s3.objects("cluster-a/old")
            sent_old = m(old, "collector_upload_segments_total")
            # objects that age past a short retention once uploaded: deleted, and not sent again
            short = collector("cluster-a/short", extra=["--object-store-retention", "30s"], name="objstore-short")
            fill(short, 1, app="short")
            up = wait_for(lambda: s3.objects("cluster-a/short") or None, timeout=25)
            gone = wait_for(lambda: m(short, "collector_upload_deleted_objects_total") >= 1
                            and not s3.objects("cluster-a/short") or None, timeout=60)
            sent = m(short, "collector_upload_segments_total")
            time.sleep(5)
            again = m(short, "collector_upload_segments_total") - sent
            kept = len(s3.objects("cluster-a/c0"))
            return (bool(recent) and len(left) == 1 and sent_old == 1 and bool(up) and bool(gone) and again == 0 and kept > 0
                    and not s3.objects("cluster-a/short"),
                    f"1d: {sent_old} sent (the recent segment only?), objects {sorted(left)}; 30s: uploaded {bool(up)}, deleted "
                    f"{bool(gone)}, sent again after {again}; the other prefix keeps {kept}")
        check(t, "collector objstore: bucket retention: segments already older than --object-store-retention are not sent, "
                 "objects that age past it are deleted and not sent again, others (and other prefixes') stay", bucket_retention)

        def delete_refused():
            dr = collector("cluster-a/del", extra=["--object-store-retention", "25s"], name="objstore-del")
            fill(dr, 1, app="del")
            up = wait_for(lambda: s3.objects("cluster-a/del") or None, timeout=30)
            s3.stop()  # the objects' DELETEs fail once they are past 25 s
            try:
                fails0 = m(dr, "collector_upload_failures_total")
                logged = wait_for(lambda: "the bucket's retention cannot delete objects" in dr.log_text() or None, timeout=45)
                fails = m(dr, "collector_upload_failures_total") - fails0
                kept = sorted(s3.objects("cluster-a/del"))
                uploads_ok = "uploads fail" not in dr.log_text()  # nothing was waiting: uploads are not failing
            finally:
                s3.start()
            return (bool(up) and bool(logged) and fails >= 1 and kept == sorted(up) and uploads_ok,
                    f"uploaded {sorted(up or [])}; logged {bool(logged)}; failures {fails}; kept {kept}; uploads said to fail: "
                    f"{not uploads_ok}; {dr.log_text()[-600:]}")
        check(t, "collector objstore: DELETEs of the bucket's retention that fail are counted and logged once, the objects "
                 "stay, and uploads are not reported failing", delete_refused)

        def state_file_unwritable():
            d = tempfile.mkdtemp(prefix="objstore-state-")
            os.makedirs(os.path.join(d, "data", "uploads"))  # the uploads file cannot be written
            sc = Collector("monitors: []\n", data_dir=os.path.join(d, "data"), name="objstore-state",
                           extra_args=["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET,
                                       "--object-store-prefix", "cluster-a/state", "--retention-size", "20MiB"], env=CREDS)
            made.append(sc)
            try:
                fill(sc, 1, app="state")
                up = wait_for(lambda: s3.objects("cluster-a/state") or None, timeout=30)
                logged = wait_for(lambda: "uploads: Is a directory" in sc.log_text() or None, timeout=20)
                return (bool(up) and bool(logged) and m(sc, "collector_upload_failures_total") >= 1,
                        f"uploaded {sorted(up or [])}; logged {bool(logged)}; {sc.log_text()[-600:]}")
            finally:
                sc.stop()
                shutil.rmtree(d, ignore_errors=True)
        check(t, "collector objstore: an uploads file that cannot be written: the segment is uploaded all the same, and the "
                 "failure is counted and logged", state_file_unwritable)

        def lost_when_down_and_full():
            s3.stop()
            try:
                lc = collector("cluster-a/lost", extra=["--retention-time", "1h"], name="objstore-lost")
                push(lc, 400, app="lost", ago=2 * 3600)  # past local retention as soon as stored
                lost = wait_for(lambda: m(lc, "collector_upload_lost_segments_total") >= 1 or None, timeout=45)
                logged = wait_for(lambda: "deleted by local retention before their upload" in lc.log_text() or None, timeout=10)
                log = lc.log_text()
                return (bool(lost) and bool(logged),
                        f"lost {m(lc, 'collector_upload_lost_segments_total')}; log: {log[-600:]}")
            finally:
                s3.start()
        check(t, "collector objstore: segments local retention deletes before their upload (bucket down) are counted and "
                 "logged", lost_when_down_and_full)

        def bucket_only_history():
            # uploaded segments that local retention then deletes: history only the bucket holds,
            # which queries here do not read (--no-object-store-reads; bucket_reads reads it); every
            # answer whose window meets it must say so
            h = collector("cluster-a/hist", extra=["--retention-size", "5MiB", "--no-object-store-reads"],
                          name="objstore-hist")
            pushed = fill(h, 2, app="old", ago=3 * 3600)  # two closed segments of three-hour-old profiles
            up = wait_for(lambda: len(s3.objects("cluster-a/hist")) >= 2 or None, timeout=60)
            # (not read here: an answer that lacks a deleted segment must say so, even one whose
            # request came before the deletion)
            asker = Asker(h, f"name=old&type=cpu&from={int(time.time()) - 4 * 3600}", pushed)
            n = 0
            try:
                while up and m(h, "collector_retention_deleted_segments_total") < 2 and n < 40000:
                    push(h, 250, app="new")  # today's, until the budget has deleted two segments
                    n += 250
            finally:
                asked, asked_detail = asker.finish(whole_after=0)
            # asked at once (likely before the uploader's next scan has seen the deletion), so an
            # answer cached then must not be served whole later: nothing is appended after it
            http_req("GET", h.url + "/api/v1/render?type=cpu&agg=sum")
            time.sleep(2 * 2 + 1)  # two upload scans after the last deletion (UPLOAD_SCAN_MS)
            segs = m(h, "collector_bucket_only_segments")
            local = set(local_segments(h))
            only = sorted(k for k in s3.keys("cluster-a/hist") if k.split("-", 1)[1] not in local)
            want_from = min((int(k.split("-", 1)[0], 16) for k in only), default=-1)
            st, body, hdr = http_req("GET", h.url + "/api/v1/render?type=cpu&agg=sum")
            got = json.loads(body).get("data", {}) if st == 200 else {}
            bo = got.get("bucketOnly", {})
            said = hdr.get("X-Pprof-Partial", "")
            after = (bo.get("toUnixNano", 0) // 10**9) + 2
            st2, body2, hdr2 = http_req("GET", h.url + f"/api/v1/render?type=cpu&agg=sum&from={after}")
            later = json.loads(body2).get("data", {}) if st2 == 200 else {}
            q = h.url + "/querier.v1.QuerierService/LabelNames"
            qst, _, qhdr = http_req("POST", q, data=b"{}", headers={"Content-Type": "application/json"})
            qst2, _, qhdr2 = http_req("POST", q, data=json.dumps({"start": after * 1000}).encode(),
                                      headers={"Content-Type": "application/json"})
            # a front end asking h and a shard that does not answer (nothing listens on port 1):
            # h's answer says it is partial, so the front end's does, and says what is missing
            dead = "http://127.0.0.1:1"
            fe = Collector("monitors: []\n", extra_args=["--peer", h.url, "--peer", dead], name="objstore-hist-front")
            made.append(fe)
            fst, fbody, fhdr = http_req("GET", fe.url + "/api/v1/render?type=cpu&agg=sum")
            front = json.loads(fbody).get("data", {}) if fst == 200 else {}
            shards = front.get("shards", {})
            # and the explorer says so above the graph: over the window that meets the range (the
            # range and segment count as the answer has them), through the front end (both shards'
            # troubles), and nothing over a later window
            since = f"{want_from // 10**9 - 60}"
            page = f"/explorer?name=new&type=cpu&from={since}"
            notes = page_notes(t, h.url + page, fe.url + page, h.url + f"/explorer?name=new&type=cpu&from={after}")
            utc = lambda ns: time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ns // 10**9))  # noqa: E731
            want_note = (f"history from {utc(bo.get('fromUnixNano', 0))} to {utc(bo.get('toUnixNano', 0))} "
                         f"({int(segs)} segments) is in the object store only")
            ok = (bool(up) and segs >= 2 and len(only) == segs and got.get("partial") is True
                  and bo.get("segments") == segs and bo.get("fromUnixNano") == want_from
                  and bo.get("toUnixNano", 0) >= want_from and "in the object store only" in said
                  and later.get("partial") is not True and "X-Pprof-Partial" not in hdr2 and later.get("profiles", 0) > 0
                  and qst == 200 and "in the object store only" in qhdr.get("X-Pprof-Partial", "")
                  and qst2 == 200 and "X-Pprof-Partial" not in qhdr2
                  and front.get("partial") is True and shards.get("partial") == 1 and shards.get("missing") == 1
                  and h.url in shards.get("why", "") and "in the object store only" in shards.get("why", "")
                  and dead in shards.get("why", "")
                  and "1 shard answers partial" in fhdr.get("X-Pprof-Partial", "")
                  and "1 of 2 shard answers missing" in fhdr.get("X-Pprof-Partial", "")
                  and front.get("total") == got.get("total")
                  and len(notes) == 3 and want_note in (notes[0] or "")
                  and "1 of 2 shard answers missing" in (notes[1] or "") and dead in (notes[1] or "")
                  and "1 of 2 shard answers partial" in (notes[1] or "")
                  and notes[2] is None and asked)
            fe.stop()
            h.stop()
            return (ok, f"{asked_detail}; uploaded {bool(up)}; bucket-only metric {segs}, objects not local {only}; render {st} partial "
                        f"{got.get('partial')} bucketOnly {bo} (want from {want_from}), header {said!r}; from={after}: "
                        f"{st2} partial {later.get('partial')} profiles {later.get('profiles')} header "
                        f"{hdr2.get('X-Pprof-Partial')!r}; LabelNames {qst} {qhdr.get('X-Pprof-Partial')!r}, after {qst2} "
                        f"{qhdr2.get('X-Pprof-Partial')!r}; front end {fst} partial {front.get('partial')} shards {shards} "
                        f"header {fhdr.get('X-Pprof-Partial')!r} total {front.get('total')} vs {got.get('total')}; "
                        f"explorer notes {notes} (want {want_note!r})")
        check(t, "collector objstore: history only the bucket holds (uploaded, then deleted by local retention), not read "
                 "(--no-object-store-reads): every answer whose window meets it says so: \"partial\", its range and segment count, "
                 "X-Pprof-Partial (the render, the query API); a later window is whole; a front end asking that collector "
                 "says its answer is partial and which shard (and which did not answer); the explorer says so above the graph; "
                 "while local retention deletes the segments, every sum that says it is whole counts every profile",
              bucket_only_history)

        def bucket_reads():
            # the same history read back: a sum over a window that meets it downloads the segments
            # only the bucket holds and merges them with the local ones; the merged profile equals,
            # sample type by sample type, the sum of every profile pushed (go tool pprof reads each)
            h = collector("cluster-a/reads", extra=["--retention-size", "5MiB"], name="objstore-reads")
            ago = 3 * 3600
            pushed = fill(h, 2, app="old", ago=ago)
            up = wait_for(lambda: len(s3.objects("cluster-a/reads")) >= 2 or None, timeout=60)
            since = int(time.time()) - ago - 3600
            sel = f"name=old&type=cpu&from={since}"
            # (avg beside sum; under ThreadSanitizer a cached avg takes seconds, and too few sums
            # then come after the first deletion: sums alone there, unit test_web's
            # bucket_series_raced holds avg's race)
            asker = Asker(h, sel, pushed, aggs=("sum",) if "tsan" in Collector.binary else ("sum", "avg"))
            n = 0
            try:
                while up and m(h, "collector_retention_deleted_segments_total") < 2 and n < 40000:
                    push(h, 250, app="new")
                    n += 250
                time.sleep(2 * 2 + 1)  # two upload scans after the last deletion (UPLOAD_SCAN_MS)
            finally:
                asked, asked_detail = asker.finish()
            segs = m(h, "collector_bucket_only_segments")
            st, body, hdr = http_req("GET", h.url + f"/api/v1/render?{sel}&agg=sum")
            got = json.loads(body).get("data", {}) if st == 200 else {}
            downloads = m(h, "collector_bucket_downloads_total")
            # the same sum asked again (another URL, so not the answer cache): nothing downloaded
            st2, body2, _ = http_req("GET", h.url + f"/api/v1/render?{sel}")
            again = json.loads(body2).get("data", {}) if st2 == 200 else {}
            # the merged profile against go tool pprof's reading of every profile pushed
            pst, prof, _ = http_req("GET", h.url + f"/api/v1/profile?{sel}&agg=sum")
            totals = [go_totals(b) for b in PROFILES]
            # fill pushes batches of 250, each starting again at PROFILES[0]
            batch = [sum(totals[i % len(PROFILES)][j] for i in range(250)) for j in range(len(totals[0]))]
            want = [v * (pushed // 250) for v in batch] if pushed % 250 == 0 else []
            have = go_totals(prof) if pst == 200 else []
            # the timeline over the same window: a point per profile pushed, the bucket's with no id
            # (nothing here names them), together the sum's total in the last sample type
            tst, tbody, thdr = http_req("GET", h.url + f"/api/v1/timeline?{sel}")
            tl = json.loads(tbody) if tst == 200 else {}
            points = [(pt, i) for e in tl.get("data", []) for pt, i in zip(e.get("points", []), e.get("ids", []))]
            tl_sum = sum(pt[2] for pt, _ in points)
            tl_bucket = sum(1 for _, i in points if i is None)
            tl_ok = (tst == 200 and tl.get("partial") is not True and "X-Pprof-Partial" not in thdr
                     and len(points) == pushed and bool(want) and tl_sum == want[-1]
                     and tl_bucket == tl.get("bucketRead", {}).get("profiles") and 0 < tl_bucket < pushed
                     and all(pt[1] >= since * 10**9 for pt, _ in points))
            # /api/v1/profiles over it: an entry per profile pushed, the bucket's with a null id
            pls, pbody, phdr = http_req("GET", h.url + f"/api/v1/profiles?{sel}&limit=20000")
            pl = json.loads(pbody) if pls == 200 else {}
            entries = pl.get("data", [])
            pl_bucket = sum(1 for e in entries if e.get("id") is None)
            pl_ok = (pls == 200 and pl.get("partial") is not True and "X-Pprof-Partial" not in phdr
                     and len(entries) == pushed and 0 < pl_bucket < pushed
                     and pl_bucket == pl.get("bucketRead", {}).get("profiles")
                     and sum(e["totals"][-1] for e in entries) == (want[-1] if want else None)
                     and all(e.get("startUnixNano", 0) >= since * 10**9 for e in entries))
            # /api/v1/series lists the bucket's series from its series index (no download): the old
            # app's entries, with and without a window, count every profile pushed, once per pod
            def old_series(c, q):
                st_, b_, hd_ = http_req("GET", c.url + "/api/v1/series" + q)
                d_ = json.loads(b_) if st_ == 200 else {}
                es = [e for e in d_.get("data", []) if e.get("labels", {}).get("monitor") == "old"]
                return (st_ == 200 and d_.get("partial") is not True and "X-Pprof-Partial" not in hd_
                        and len(es) == 50 and sum(e.get("profiles", 0) for e in es) == pushed,
                        f"series{q} {st_} partial {d_.get('partial')} {hd_.get('X-Pprof-Partial')!r} bucketOnly "
                        f"{d_.get('bucketOnly')}: {len(es)} entries of old, {sum(e.get('profiles', 0) for e in es)} "
                        f"profiles (want 50, {pushed})")
            ser_ok, ser_detail = old_series(h, f"?{sel}")
            ser_all_ok, ser_all_detail = old_series(h, "")
            # /raw's last page lists them too, as rows of the object store's after the local ones:
            # together the old app's rows count every profile pushed
            rst_, rbody_, rhdr_ = http_req("GET", h.url + "/raw")
            rows = re.findall(r"<tr><td>([^<]*)</td><td>cpu</td><td>(\d+)</td><td><a [^>]*>pprof</a></td><td>([^<]*)</td></tr>",
                              rbody_.decode() if rst_ == 200 else "")
            old_rows = [(int(c), sh) for lab, c, sh in rows if "&quot;monitor&quot;:&quot;old&quot;" in lab]
            raw_ok = (rst_ == 200 and 'class="partial"' not in rbody_.decode() and "X-Pprof-Partial" not in rhdr_
                      and sum(c for c, _ in old_rows) == pushed
                      and 0 < sum(c for c, sh in old_rows if sh == "object store") < pushed)
            ser_detail += (f"; /raw {rst_} {rhdr_.get('X-Pprof-Partial')!r}: {len(old_rows)} rows of old, "
                           f"{sum(c for c, _ in old_rows)} profiles, {sum(c for c, sh in old_rows if sh == 'object store')} "
                           f"of them the object store's")
            ser_ok = ser_ok and raw_ok
            # a decoded timeline (function=) reads the bucket's records too: its points' cum add up to
            # what go tool pprof -top counts for that function in each profile pushed
            fn = "runtime.mallocgc"
            fcum = []
            for b in PROFILES:
                with tempfile.NamedTemporaryFile(suffix=".pb.gz") as f:
                    f.write(b)
                    f.flush()
                    top = go_pprof(go_top_args(1, "nanoseconds") + [f.name]).stdout.splitlines()
                fcum.append(sum(int(l.split()[3].rstrip("ns")) for l in top if l.endswith(" " + fn)))
            fwant = sum(fcum[i % len(PROFILES)] for i in range(250)) * (pushed // 250)
            tfs, tfbody, tfhdr = http_req("GET", h.url + f"/api/v1/timeline?{sel}&function={fn}")
            ftl = json.loads(tfbody) if tfs == 200 else {}
            fpoints = [(c, i) for e in ftl.get("data", []) for c, i in zip(e.get("cum", []), e.get("ids", []))]
            fsum = sum(c for c, _ in fpoints)
            fbucket = sum(1 for _, i in fpoints if i is None)
            ftl_ok = (tfs == 200 and ftl.get("partial") is not True and "X-Pprof-Partial" not in tfhdr
                      and len(fpoints) == pushed and fsum == fwant and fwant > 0 and ftl.get("recordsUnreadable") == 0
                      and 0 < fbucket < pushed and fbucket == ftl.get("bucketRead", {}).get("profiles"))
            # avg is per series over time: each pod's records in the bucket and local ones together
            # divided once by all of them, then summed over pods. fill's batches of 250 give pod k
            # the profiles i % 6 for i = k, k+50, .., k+200 in each batch, so its average is theirs;
            # dividing rounds each of its samples, by at most half a unit
            ast, abody, ahdr = http_req("GET", h.url + f"/api/v1/render?{sel}&agg=avg")
            avg = json.loads(abody).get("data", {}) if ast == 200 else {}
            apst, aprof, _ = http_req("GET", h.url + f"/api/v1/profile?{sel}&agg=avg")
            ahave = go_totals(aprof) if apst == 200 else []
            nsamples = []
            for b in PROFILES:
                with tempfile.NamedTemporaryFile(suffix=".pb.gz") as f:
                    f.write(b)
                    f.flush()
                    nsamples.append(sum(go_raw(f.name).samples.values()))
            pods = [[i % len(PROFILES) for i in range(k, 250, 50)] for k in range(50)]
            awant = [sum(sum(totals[i][j] for i in pod) / len(pod) for pod in pods) for j in range(len(totals[0]))]
            slack = sum(0.5 * sum(nsamples[i] for i in set(pod)) for pod in pods)
            avg_ok = (ast == 200 and avg.get("partial") is not True and "X-Pprof-Partial" not in ahdr
                      and avg.get("profiles") == pushed and 0 < avg.get("bucketRead", {}).get("profiles", 0) < pushed
                      and len(ahave) == len(awant) and all(abs(a - w) <= slack for a, w in zip(ahave, awant))
                      and any(awant))
            # latest: each pod's newest, wherever it is
            lst, lbody, lhdr = http_req("GET", h.url + f"/api/v1/render?{sel}&agg=latest")
            lat = json.loads(lbody).get("data", {}) if lst == 200 else {}
            latest_ok = lst == 200 and lat.get("partial") is not True and lat.get("profiles") == 50 and lat.get("total")
            # pgo and regressions parse their selection twice (and regressions a base over another
            # window): every window read, so whole
            gst, _, ghdr = http_req("GET", h.url + f"/api/v1/pgo?{sel}")
            rst, _, rhdr = http_req("GET", h.url + f"/api/v1/regressions?{sel}&base_to={int(time.time()) - ago + 600}")
            # a front end asking h: h's part whole, so the front end's is
            fe = Collector("monitors: []\n", extra_args=["--peer", h.url], name="objstore-reads-front")
            made.append(fe)
            fst, fbody, fhdr = http_req("GET", fe.url + f"/api/v1/render?{sel}&agg=sum")
            front = json.loads(fbody).get("data", {}) if fst == 200 else {}
            fe.stop()
            ok = (bool(up) and segs >= 2 and st == 200 and got.get("partial") is not True and "X-Pprof-Partial" not in hdr
                  and got.get("profiles") == pushed and got.get("bucketRead", {}).get("windows") == 1
                  and 0 < got.get("bucketRead", {}).get("profiles", 0) < pushed
                  and downloads == segs and st2 == 200 and again.get("total") == got.get("total")
                  and m(h, "collector_bucket_downloads_total") == downloads
                  and have == want and any(want)
                  and avg_ok and latest_ok
                  and fst == 200 and front.get("partial") is not True and front.get("total") == got.get("total")
                  and gst == 200 and "X-Pprof-Partial" not in ghdr and rst == 200 and "X-Pprof-Partial" not in rhdr
                  and asked and tl_ok and pl_ok and ftl_ok and ser_ok and ser_all_ok)
            detail = (f"{asked_detail}; {ser_detail}; {ser_all_detail}; timeline of {fn} {tfs} partial {ftl.get('partial')} {tfhdr.get('X-Pprof-Partial')!r}: "
                      f"{len(fpoints)} points, {fbucket} without an id (bucketRead {ftl.get('bucketRead')}), cum {fsum} "
                      f"(want {fwant}), unreadable {ftl.get('recordsUnreadable')}; profiles {pls} partial {pl.get('partial')} {phdr.get('X-Pprof-Partial')!r}: "
                      f"{len(entries)} entries, {pl_bucket} with a null id (bucketRead {pl.get('bucketRead')}); timeline {tst} partial {tl.get('partial')} {thdr.get('X-Pprof-Partial')!r}: "
                      f"{len(points)} points, {tl_bucket} without an id (bucketRead {tl.get('bucketRead')}), total "
                      f"{tl_sum} (want {want[-1] if want else None}); uploaded {bool(up)}; bucket-only {segs}; sum {st} partial {got.get('partial')} header "
                      f"{hdr.get('X-Pprof-Partial')!r} profiles {got.get('profiles')} of {pushed} pushed, bucketRead "
                      f"{got.get('bucketRead')}; downloads {downloads}, after asking again "
                      f"{m(h, 'collector_bucket_downloads_total')} (total {again.get('total')} vs {got.get('total')}); "
                      f"profile {pst}: totals {have} want {want}; avg {ast} partial {avg.get('partial')} bucketOnly "
                      f"{avg.get('bucketOnly')} header {ahdr.get('X-Pprof-Partial')!r} profiles {avg.get('profiles')} "
                      f"bucketRead {avg.get('bucketRead')}, profile {apst} totals {ahave} want {awant} (within {slack}); "
                      f"latest {lst} partial {lat.get('partial')} profiles {lat.get('profiles')}; front end {fst} partial "
                      f"{front.get('partial')} total {front.get('total')}; pgo {gst} header {ghdr.get('X-Pprof-Partial')!r}; "
                      f"regressions {rst} header {rhdr.get('X-Pprof-Partial')!r}")
            if not ok:
                h.stop()
                return False, detail
            # a cache too small for that history: not read, the answer says it is partial and why
            h.stop()
            h2 = Collector("monitors: []\n", data_dir=h.data, name="objstore-reads-small", env=CREDS,
                           extra_args=["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET,
                                       "--object-store-prefix", "cluster-a/reads", "--retention-size", "5MiB",
                                       "--object-store-cache-size", "1MiB"])
            made.append(h2)
            wait_for(lambda: m(h2, "collector_bucket_only_segments") >= 2 or None, timeout=30)
            sst, sbody, shdr = http_req("GET", h2.url + f"/api/v1/render?{sel}&agg=sum")
            small = json.loads(sbody).get("data", {}) if sst == 200 else {}
            why = small.get("bucketOnly", {}).get("why", "")
            fails = m(h2, "collector_bucket_read_failures_total")
            kept = m(h2, "collector_bucket_cache_bytes")  # what that merge downloaded is not kept over the budget
            # the series index needs no download: the listing is whole with the cache too small
            ser2_ok, ser2_detail = old_series(h2, f"?{sel}")
            h2.stop()
            # the bucket down (the cache is emptied at start, so the read must download): not read,
            # partial, and the failed GET says why; the local part is answered
            s3.stop()
            try:
                h3 = Collector("monitors: []\n", data_dir=h.data, name="objstore-reads-down", env=CREDS,
                               extra_args=["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET,
                                           "--object-store-prefix", "cluster-a/reads", "--retention-size", "5MiB"])
                made.append(h3)
                wait_for(lambda: m(h3, "collector_bucket_only_segments") >= 2 or None, timeout=30)
                dst, dbody, dhdr = http_req("GET", h3.url + f"/api/v1/render?{sel}&agg=sum", timeout=120)
                down = json.loads(dbody).get("data", {}) if dst == 200 else {}
                dwhy = down.get("bucketOnly", {}).get("why", "")
                ser3_ok, ser3_detail = old_series(h3, "")  # nor the bucket itself
                h3.stop()
            finally:
                s3.start()
            return (sst == 200 and small.get("partial") is True and "--object-store-cache-size" in why
                    and "in the object store only" in shdr.get("X-Pprof-Partial", "") and fails >= 1
                    and 0 < small.get("profiles", 0) < pushed and 0 <= kept <= 1 << 20
                    and dst == 200 and down.get("partial") is True and "object store: GET" in dwhy
                    and "in the object store only" in dhdr.get("X-Pprof-Partial", "")
                    and down.get("profiles") == small.get("profiles") and ser2_ok and ser3_ok,
                    detail + f"; with a 1MiB cache: {ser2_detail}; the bucket down: {ser3_detail}; {sst} partial {small.get('partial')} why {why!r} profiles "
                             f"{small.get('profiles')} failures {fails} cache bytes after {kept}; the bucket down: {dst} partial "
                             f"{down.get('partial')} why {dwhy!r} profiles {down.get('profiles')}")
        check(t, "collector objstore: a sum over history only the bucket holds reads it (segments downloaded once into the "
                 "cache, merged with the local ones): every pushed profile counted, the merged profile's totals equal the "
                 "sum of go tool pprof's reading of each; the timeline has a point per profile (the bucket's without an "
                 "id), totalling the sum, and so does a function's (function=: its cum as go tool pprof -top counts it), and /api/v1/profiles an entry per profile (the bucket's with a null id); /api/v1/series and /raw (its series index: "
                 "whole with a cache too small and with the bucket down too) count every profile per pod; avg reads it too"
                 ": each pod's average over both, summed, as go tool pprof "
                 "reads the profiles; latest: a profile per pod; a front end's answer is whole; "
                 "pgo and regressions (two windows, each parsed twice) are whole; while local retention deletes the segments, "
                 "every sum and avg that says it is whole counts every profile; a cache too small, or the bucket down: "
                 "partial, and why", bucket_reads)

        def bucket_only_stood_in():
            # raw segments that tiered retention deleted once rolled up are not history only the
            # bucket holds: their rollups answer for that time (resolution 1h), the answer is whole
            d = tempfile.mkdtemp(prefix="objstore-tiers-")
            data = os.path.join(d, "data")
            args = ["--object-store-endpoint", s3.url, "--object-store-bucket", BUCKET, "--object-store-prefix", "cluster-a/tiers",
                    "--retention-size", "20MiB"]  # segments roll at 1 MiB
            try:
                a = Collector("monitors: []\n", data_dir=data, extra_args=args, name="objstore-tiers", env=CREDS)
                made.append(a)
                fill(a, 2, app="old", ago=3 * 3600)  # closed raw segments of three-hour-old profiles
                raw = {f"{i:016x}.seg" for i in segment_ids(a, 0)} - active_segments(a)
                if not raw:
                    return False, f"no closed raw segment after pushing: {segment_ids(a, 0)}"
                up = wait_for(lambda: raw <= {k.split("-", 1)[1] for k in s3.keys("cluster-a/tiers")} or None, timeout=60)
                hour = 3600
                rolled = a.wait_for(lambda: (a.metric("collector_hours_compacted_until_seconds") or 0)
                                    >= (time.time() // hour - 1) * hour, timeout=60)
                a.stop()
                b = Collector("monitors: []\n", data_dir=data, name="objstore-tiers-b", env=CREDS,
                              extra_args=args + ["--retention-raw", "1s", "--retention-rollup", "30d"])
                made.append(b)
                dropped = b.wait_for(lambda: (b.metric("collector_retention_raw_dropped_until_seconds") or 0) > 0, timeout=60)
                gone = wait_for(lambda: sorted(raw - set(local_segments(b))) or None, timeout=30)
                time.sleep(2 * 2 + 1)  # two upload scans after the deletion (UPLOAD_SCAN_MS)
                segs = m(b, "collector_bucket_only_segments")
                st, body, hdr = http_req("GET", b.url + "/api/v1/render?type=cpu&agg=sum")
                got = json.loads(body).get("data", {}) if st == 200 else {}
                b.stop()
                return (bool(up) and bool(rolled) and bool(dropped) and bool(gone) and segs == 0 and st == 200
                        and got.get("partial") is not True and "bucketOnly" not in got and "X-Pprof-Partial" not in hdr
                        and got.get("resolution") == "1h" and got.get("profiles", 0) > 0,
                        f"raw closed {sorted(raw)} uploaded {bool(up)}; hours rolled up {bool(rolled)}; raw dropped "
                        f"{bool(dropped)}, deleted locally {gone}; bucket-only metric {segs}; render {st} partial "
                        f"{got.get('partial')} bucketOnly {got.get('bucketOnly')} header {hdr.get('X-Pprof-Partial')!r} "
                        f"resolution {got.get('resolution')} profiles {got.get('profiles')}")
            finally:
                shutil.rmtree(d, ignore_errors=True)
        check(t, "collector objstore: raw segments tiered retention deleted once rolled up (and uploaded) are not history "
                 "only the bucket holds: the answer over their time is whole, from the rollups (resolution 1h)",
              bucket_only_stood_in)

        def wrong_credentials():
            w = collector("cluster-a/wrong", env={"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
                          name="objstore-wrong")
            pushed = fill(w, 1, app="wrong")
            ok = wait_for(lambda: "SignatureDoesNotMatch" in w.log_text() or None, timeout=45)
            stored = m(w, "collector_store_profiles")
            t0 = time.monotonic()
            w.stop()  # the last uploads are tried for 10 s, then the stop goes on and says so
            took = time.monotonic() - t0
            told = "not in the object store after 10 s (PUT" in w.log_text()
            return (bool(ok) and "HTTP 403" in w.log_text() and stored == pushed and not s3.objects("cluster-a/wrong")
                    and told and took < 20 and w.returncodes[-1:] == [0],
                    f"logged: {bool(ok)}; stored {stored}; objects {sorted(s3.objects('cluster-a/wrong'))}; stop took "
                    f"{took:.1f} s, told: {told}, exit {w.returncodes}; {w.log_text()[-500:]}")
        check(t, "collector objstore: wrong credentials: the server's refusal (HTTP 403, SignatureDoesNotMatch) is logged, "
                 "nothing reaches the bucket, profiles are still stored; a stop tries the last uploads for 10 s, says what "
                 "was left, exits 0", wrong_credentials)

        def quiet_segment_rolls():
            # a few profiles, far from the 1 MiB roll: the segment closes at its age alone
            q = collector("cluster-a/age", extra=["--segment-max-age", "10s"], name="objstore-age")
            push(q, 20, app="age")
            t0 = time.monotonic()
            got = wait_for(lambda: s3.objects("cluster-a/age") or None, timeout=45)
            took = time.monotonic() - t0
            loc = local_segments(q)
            obj = got or {}
            same = bool(obj) and all(loc.get(k) == v for k, v in obj.items())
            small = all(len(v) < (1 << 20) for v in obj.values())
            return (same and small and m(q, "collector_store_profiles") == 20,
                    f"objects {sorted(obj)} after {took:.1f} s, identical to the local files: {same}, "
                    f"each under 1 MiB: {small}; local {sorted(loc)}")
        check(t, "collector objstore: --segment-max-age 10s: a quiet collector's segment is closed at that age and "
                 "uploaded (nothing written meanwhile, far under the size that rolls it)", quiet_segment_rolls)
    finally:
        for c in made:
            c.stop()
            c.cleanup()
        s3.cleanup()

    def bad_flags():
        cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        cfg.write("monitors: []\n")
        cfg.close()
        base = [os.path.join(ROOT, "bin", "collector"), "-c", cfg.name, "-d", os.path.join(tempfile.gettempdir(), "objflags-unused")]
        cases = [
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "Bad_Bucket"], CREDS, "bucket"),
            (["--object-store-endpoint", "http://127.0.0.1:9/path", "--object-store-bucket", "ok-bucket"], CREDS, "endpoint"),
            (["--object-store-endpoint", "ftp://127.0.0.1:9", "--object-store-bucket", "ok-bucket"], CREDS, "endpoint"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-prefix", "a/../b"], CREDS, "prefix"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket"], {}, "AWS_ACCESS_KEY_ID"),
            (["--object-store-bucket", "ok-bucket"], CREDS, "endpoint"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-retention", "soon"], CREDS, "retention"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-retention", "50000d"], CREDS, "100 years"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket"],
             {"AWS_ACCESS_KEY_ID": "a:b", "AWS_SECRET_ACCESS_KEY": SK}, "credentials"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-prefix", ".hidden/x"], CREDS, "prefix"),
            (["--segment-max-age", "5s"], CREDS, "outside 10s..24h"),
            (["--segment-max-age", "2d"], CREDS, "outside 10s..24h"),
            (["--segment-max-age", "soon"], CREDS, "--segment-max-age"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-cache-size", "512KiB"], CREDS, "at least 1MiB"),
            (["--object-store-endpoint", "http://127.0.0.1:9", "--object-store-bucket", "ok-bucket",
              "--object-store-cache-size", "lots"], CREDS, "--object-store-cache-size"),
            (["--object-store-cache-size", "64MiB"], CREDS, "--object-store-endpoint"),
            (["--no-object-store-reads"], CREDS, "--object-store-endpoint"),
        ]
        out = []
        for args, env, want in cases:
            e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            e.update(env)
            p = subprocess.run(base + args, capture_output=True, text=True, timeout=30, env=e)
            if p.returncode != 2 or want not in p.stderr:
                out.append(f"{args}: exit {p.returncode}, {p.stderr.strip()[:200]}")
        os.unlink(cfg.name)
        return not out, "; ".join(out) or f"{len(cases)} refused"
    check(t, "collector objstore: bad --object-store-* flags (bucket name, endpoint with a path or another scheme, a prefix "
             "with .. or a part starting with '.', no credentials, a key with ':', no endpoint, a bad duration, a retention over "
             "100 years) exit 2 saying which", bad_flags)


PARTS = {"objstore": objstore}
