"""pprof sample labels, single profiles and a function over time in the API (issue 14, section A),
on a store filled by scraping the demo target, whose work runs under pprof.Do labels handler,
tenant, worker and team. Every figure is checked against go tool pprof reading the profiles the
API serves (or the records one by one):

- tag=: render's top table and /api/v1/profile filtered == go tool pprof -tagfocus/-tagignore of
  the unfiltered merge; base_tag= likewise for the base.
- /api/v1/tags: each key's values and totals == go tool pprof -tagfocus=KEY=^VALUE$ totals.
- id= / base_id=: one record (its type taken from it); the timeline's ids are the records'.
- timeline function=, tag=, group_by=: each point's figures == go tool pprof of that record; on a
  service of two pods, one entry per pod, each point's figures those of that pod's record.
- render group_by=KEY == go tool pprof -tagroot=KEY.
- bad parameters: a clear 400 (404 for an id that does not exist).
- label_limits: a scraped profile with more label keys and values than the API lists
  (WEB_MAX_TAG_KEYS, WEB_MAX_TAG_VALUES: truncated, the first keys by name and the biggest values
  kept) and a key of more values than group_by= splits into (WEB_MAX_GROUPS: 422)."""
import json
import os
import re
import shutil
from urllib.parse import quote

from harness import OUT, check, compare_maps, go_pprof, go_top_args, make_profile, parse_go_top
from peers import Collector, DemoTarget, StaticServer, http_req

CPU = go_top_args(1, "nanoseconds")


def go_top(path, flags=()):
    g = go_pprof(CPU + list(flags) + [path])
    if g.returncode:
        raise RuntimeError(f"go tool pprof {flags} {path}: {g.stderr[-1000:]}")
    return parse_go_top(g.stdout)


def flat_sum(top):
    """The profile's total as go reads it: every sample has a leaf, so the flats add up to it."""
    return sum(v[0] for v in top.values())


def rx(v):
    return "^" + re.escape(v) + "$"


# (our tag= parameters, go tool pprof's flags for the same samples)
TAGS = [
    (["handler=/hash"], ["-tagfocus=handler=^/hash$"]),
    (["handler!=/hash"], ["-tagignore=handler=^/hash$"]),
    (["tenant=globex", "handler!=/sort"], ["-tagfocus=tenant=^globex$", "-tagignore=handler=^/sort$"]),
    (["tenant="], ["-tagignore=tenant=.*"]),
]


def labels(t):
    # two pods of one service (the second one's CPU only), for the timeline's function= per pod
    demo, demo2 = DemoTarget(), DemoTarget()
    cfg = (f"monitors:\n- name: demo\n  endpoint: {demo.url}\n  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-0}}\n"
           f"  profile: {{seconds: 2}}\n  goroutine: {{interval_seconds: 2}}\n"
           f"- name: demo2\n  endpoint: {demo2.url}\n  labels: {{__k8s_namespace: shop, __k8s_name: checkout, pod: checkout-1}}\n"
           f"  profile: {{seconds: 2}}\n")
    c = Collector(cfg, name="labels")
    work = os.path.join(OUT, "labels")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    def get(path):
        st, body, _ = http_req("GET", c.url + path)
        return st, body

    def get_json(path):
        st, body = get(path)
        return st, json.loads(body)

    def save(path, name):
        st, body = get(path)
        if st != 200:
            raise RuntimeError(f"{path}: {st} {body[:300]!r}")
        f = os.path.join(work, name)
        open(f, "wb").write(body)
        return f

    try:
        ok = c.wait_for(lambda: len(get_json("/api/v1/profiles?type=cpu&name=demo")[1]["data"]) >= 4 and
                        len(get_json("/api/v1/profiles?type=cpu&name=demo2")[1]["data"]) >= 4, timeout=40)
        t.tool("labels: the collector stored 4 CPU profiles of each of two demo targets", ok, c.log_text()[-1500:])
        if not ok:
            return
        rows = get_json("/api/v1/profiles?type=cpu&name=demo")[1]["data"]
        to = rows[-1]["endUnixNano"]
        sel = f"type=cpu&name=demo&to={to // 10**9}.{to % 10**9:09d}"
        whole = save(f"/api/v1/profile?{sel}", "whole.pb.gz")

        def tag_filters():
            out = []
            for ours, flags in TAGS:
                q = "".join(f"&tag={quote(x)}" for x in ours)
                st, r = get_json(f"/api/v1/render?{sel}{q}&top=20000&max_nodes=20")
                theirs = go_top(whole, flags)
                top = {e["name"]: (e["flat"], e["cum"]) for e in r["data"]["top"]} if st == 200 else {}
                d = compare_maps(top, theirs)
                if st != 200 or d or r["data"]["total"] != flat_sum(theirs) or not theirs:
                    out.append(f"render {ours}: HTTP {st}, total {r.get('data', {}).get('total')} go {flat_sum(theirs)}\n{d[:600]}")
                f = save(f"/api/v1/profile?{sel}{q}", "tag-" + "-".join(re.sub(r"\W", "_", x) for x in ours) + ".pb.gz")
                d = compare_maps(go_top(f), theirs)
                if d:
                    out.append(f"profile {ours}: go reads the served profile as\n{d[:600]}")
            return not out, "\n".join(out)
        check(t, "collector labels: tag= on render and profile == go tool pprof -tagfocus/-tagignore of the merge", tag_filters)

        def base_tag():
            upto = sel.split("&to=")[1]
            st, r = get_json(f"/api/v1/render?{sel}&tag=tenant%3Dacme&base_tag=tenant%3Dglobex&base_to={upto}&top=20000")
            acme, globex = go_top(whole, ["-tagfocus=tenant=^acme$"]), go_top(whole, ["-tagfocus=tenant=^globex$"])
            d = r.get("data", {})
            base = {e["name"]: (e["baseFlat"], e["baseCum"]) for e in d.get("top", []) if e["baseFlat"] or e["baseCum"]}
            ok = st == 200 and d["total"] == flat_sum(acme) and d["baseTotal"] == flat_sum(globex) and compare_maps(base, globex) == ""
            # without base_tag the base keeps the main selection's filters (as labels do)
            st2, r2 = get_json(f"/api/v1/render?{sel}&tag=tenant%3Dacme&base_to={upto}")
            ok = ok and st2 == 200 and r2["data"]["baseTotal"] == flat_sum(acme)
            return ok, f"{st} total {d.get('total')}/{flat_sum(acme)} base {d.get('baseTotal')}/{flat_sum(globex)} " \
                       f"{compare_maps(base, globex)[:500]}; default base {st2} {r2.get('data', {}).get('baseTotal')}"
        check(t, "collector labels: base_tag= filters the base (go -tagfocus totals); without it the base keeps tag=", base_tag)

        def tags_route():
            st, r = get_json(f"/api/v1/tags?{sel}")
            d = r.get("data", {})
            out = [] if st == 200 else [f"HTTP {st} {r}"]
            keys = [k["key"] for k in d.get("keys", [])]
            if keys != sorted(keys) or not {"handler", "tenant", "worker"} <= set(keys):
                out.append(f"keys {keys}")
            if d.get("total") != flat_sum(go_top(whole)):
                out.append(f"total {d.get('total')}, go {flat_sum(go_top(whole))}")
            for k in d.get("keys", []):
                totals = [v["total"] for v in k["values"]]
                if totals != sorted(totals, reverse=True):
                    out.append(f"{k['key']}: values not by total {totals}")
                for v in k["values"]:
                    g = flat_sum(go_top(whole, [f"-tagfocus={k['key']}={rx(v['value'])}"]))
                    if g != v["total"] or g <= 0:
                        out.append(f"{k['key']}={v['value']}: {v['total']}, go -tagfocus {g}")
            # with a filter, the listing is of the samples it keeps
            st, r = get_json(f"/api/v1/tags?{sel}&tag=handler%3D/hash")
            hs = {k["key"]: {v["value"] for v in k["values"]} for k in r["data"]["keys"]}
            if hs.get("handler") != {"/hash"} or "team" in hs or r["data"]["total"] != flat_sum(go_top(whole, ["-tagfocus=handler=^/hash$"])):
                out.append(f"tag=handler=/hash: {hs} total {r['data']['total']}")
            return not out and d["truncated"] is False, "\n".join(out)
        check(t, "collector labels: /api/v1/tags lists every key (sorted) and value (by total) with go -tagfocus's totals", tags_route)

        def single_ids():
            st, tl = get_json(f"/api/v1/timeline?{sel}&sample=cpu")
            e = tl["data"][0]
            out = []
            if e["ids"] != [r["id"] for r in rows if r["endUnixNano"] <= to]:
                out.append(f"timeline ids {e['ids']}, records {[r['id'] for r in rows]}")
            for (s0, e0, total), rid in list(zip(e["points"], e["ids"]))[:4]:
                f = save(f"/api/v1/profile?id={rid}", f"id-{rid}.pb.gz")
                st, r = get_json(f"/api/v1/render?id={rid}&top=20000")
                g = go_top(f)
                top = {x["name"]: (x["flat"], x["cum"]) for x in r["data"]["top"]}
                if st != 200 or r["data"]["profileType"] != "cpu" or r["data"]["profiles"] != 1 or compare_maps(top, g) or \
                        r["data"]["total"] != total or flat_sum(g) != total:
                    out.append(f"id {rid}: HTTP {st} total {r['data'].get('total')} point {total} go {flat_sum(g)} {compare_maps(top, g)[:300]}")
            a, b = e["ids"][0], e["ids"][1]
            st, r = get_json(f"/api/v1/render?id={b}&base_id={a}&top=20000")
            fa, fb = os.path.join(work, f"id-{a}.pb.gz"), os.path.join(work, f"id-{b}.pb.gz")
            want = {k: v[0] for k, v in go_top(fb, ["-base", fa]).items()}
            got = {x["name"]: x["flat"] - x["baseFlat"] for x in r["data"]["top"]}
            bad = {k: (got.get(k, 0), want.get(k, 0)) for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)}
            if st != 200 or bad or r["data"]["baseProfiles"] != 1:
                out.append(f"id={b}&base_id={a}: HTTP {st}, differences from go -base {list(bad.items())[:5]}")
            return not out, "\n".join(out)
        check(t, "collector labels: id= renders and serves one record (go tool pprof reads it as the timeline point says); "
                 "timeline ids are the records'; base_id= == go -base", single_ids)

        def timeline_decoded():
            out = []
            st, r = get_json(f"/api/v1/render?{sel}&top=50&tag=handler%21%3D/sort")
            fn = r["data"]["top"][0]["name"]  # the hottest leaf of what the filter keeps: flat and cum
            for func in (fn, "runtime/pprof.Do"):  # and one with cum only, twice in each stack (nested pprof.Do)
                st, tl = get_json(f"/api/v1/timeline?{sel}&sample=cpu&function={quote(func)}&tag=handler%21%3D/sort")
                e = tl["data"][0] if st == 200 else {}
                for (s0, e0, total), rid, flat, cum in list(zip(e.get("points", []), e.get("ids", []), e.get("flat", []), e.get("cum", [])))[:4]:
                    f = os.path.join(work, f"id-{rid}.pb.gz")
                    if not os.path.exists(f):
                        f = save(f"/api/v1/profile?id={rid}", f"id-{rid}.pb.gz")
                    g = go_top(f, ["-tagignore=handler=^/sort$"])
                    if (flat, cum) != g.get(func, (0, 0)) or total != flat_sum(g):
                        out.append(f"{func} in {rid}: flat/cum {flat}/{cum} total {total}; go {g.get(func)} total {flat_sum(g)}")
                if st != 200 or len(e.get("flat", [])) != len(e.get("points", [])) or len(e["points"]) < 3 or not any(e["cum"]):
                    out.append(f"function={func}: HTTP {st} {str(tl)[:300]}")
            st, tl = get_json(f"/api/v1/timeline?{sel}&sample=cpu&group_by=tenant")
            groups = {x["tag"]["tenant"]: x for x in tl["data"]} if st == 200 else {}
            if set(groups) != {"acme", "globex", "initech", ""}:
                out.append(f"group_by=tenant: groups {sorted(groups)}")
            for v, x in groups.items():
                for (s0, e0, total), rid in list(zip(x["points"], x["ids"]))[:4]:
                    f = os.path.join(work, f"id-{rid}.pb.gz")
                    if not os.path.exists(f):
                        f = save(f"/api/v1/profile?id={rid}", f"id-{rid}.pb.gz")
                    g = flat_sum(go_top(f, [f"-tagfocus=tenant={rx(v)}"] if v else ["-tagignore=tenant=.*"]))
                    if g != total:
                        out.append(f"tenant={v!r} in {rid}: {total}, go {g}")
            return not out, "\n".join(out)
        check(t, "collector labels: timeline function= (flat, cum), tag= and group_by= per point == go tool pprof of each record",
              timeline_decoded)

        def timeline_per_pod():
            # a service of two pods: one entry per pod (its series), each point that pod's record
            svc = f"type=cpu&__k8s_namespace=shop&__k8s_name=checkout&to={to // 10**9}.{to % 10**9:09d}"
            out = []
            st, r = get_json(f"/api/v1/render?{svc}&top=50")
            fn = r["data"]["top"][0]["name"]
            st, tl = get_json(f"/api/v1/timeline?{svc}&sample=cpu&function={quote(fn)}")
            entries = tl["data"] if st == 200 else []
            pods = sorted(e["labels"].get("pod", "") for e in entries)
            if st != 200 or pods != ["checkout-0", "checkout-1"]:
                return False, f"HTTP {st}: entries for pods {pods}, want one each for checkout-0 and checkout-1 {str(tl)[:300]}"
            for e in entries:
                pod = e["labels"]["pod"]
                # the entry's points are exactly that pod's records (by id)
                recs = get_json(f"/api/v1/profiles?{svc}&pod={pod}")[1]["data"]
                if e["ids"] != [x["id"] for x in recs]:
                    out.append(f"{pod}: ids {e['ids']}, the pod's records {[x['id'] for x in recs]}")
                if len(e["points"]) < 3 or not (len(e["flat"]) == len(e["cum"]) == len(e["points"])) or not any(e["cum"]):
                    out.append(f"{pod}: {len(e['points'])} points, flat {e['flat']}, cum {e['cum']}")
                for (s0, e0, total), rid, flat, cum in list(zip(e["points"], e["ids"], e["flat"], e["cum"]))[:4]:
                    f = os.path.join(work, f"id-{rid}.pb.gz")
                    if not os.path.exists(f):
                        f = save(f"/api/v1/profile?id={rid}", f"id-{rid}.pb.gz")
                    g = go_top(f)
                    if (flat, cum) != g.get(fn, (0, 0)) or total != flat_sum(g):
                        out.append(f"{pod} {fn} in {rid}: flat/cum {flat}/{cum} total {total}; go {g.get(fn)} total {flat_sum(g)}")
            return not out, "\n".join(out)
        check(t, "collector labels: timeline function= per pod: one entry per pod of the service, each point's flat, cum and total "
                 "== go tool pprof -top of that pod's record", timeline_per_pod)

        def render_group_by():
            out = []
            for key in ("handler", "tenant"):
                st, r = get_json(f"/api/v1/render?{sel}&group_by={key}&top=20000&max_nodes=100000")
                d = r["data"]
                theirs = go_top(whole, [f"-tagroot={key}"])
                top = {e["name"]: (e["flat"], e["cum"]) for e in d["top"]}
                kids = {d["names"][n[0]]: n[3] for n in d["nodes"] if n[1] == 0}
                want_kids = {k: v[1] for k, v in theirs.items() if k not in go_top(whole) or k == "<unknown>"}
                if st != 200 or compare_maps(top, theirs) or kids != want_kids:
                    out.append(f"group_by={key}: HTTP {st} root's children {kids}, go's pseudo-frames {want_kids}\n"
                               f"{compare_maps(top, theirs)[:500]}")
            return not out, "\n".join(out)
        check(t, "collector labels: render group_by=KEY == go tool pprof -tagroot=KEY (root's children one per value)", render_group_by)

        def bad_params():
            out = []
            many = "".join(f"&tag=k{i}%3Dv" for i in range(17))
            for path, want in ((f"/api/v1/render?{sel}&tag=novalue", 400), (f"/api/v1/render?{sel}&tag=%21%3Dx", 400),
                               (f"/api/v1/render?{sel}&tag=%3Dx", 400), (f"/api/v1/render?{sel}{many}", 400),
                               (f"/api/v1/profile?{sel}&base_tag=x", 400), (f"/api/v1/tags?{sel}&tag=x", 400),
                               (f"/api/v1/timeline?{sel}&tag=x", 400), ("/api/v1/render?id=0", 400), ("/api/v1/render?id=x", 400),
                               ("/api/v1/render?id=-3", 400), ("/api/v1/profile?id=99999999", 404), ("/api/v1/render?id=99999999", 404),
                               (f"/api/v1/render?{sel}&base_id=99999999", 404), (f"/api/v1/render?{sel}&group_by=", 400),
                               (f"/api/v1/timeline?{sel}&group_by=", 400), (f"/api/v1/timeline?{sel}&function=", 400),
                               (f"/api/v1/timeline?{sel}&id=1", 400), ("/api/v1/tags?name=demo", 400),
                               (f"/api/v1/tags?{sel}&sample=nope", 400)):
                st, body = get(path)
                try:
                    j = json.loads(body)
                except ValueError:
                    j = {}
                if st != want or j.get("status") != "error" or not j.get("error"):
                    out.append(f"{path}: {st} {body[:150]!r}, want {want}")
            # tag=, id=, group_by= and function= are parameters, not series labels
            st, r = get_json(f"/api/v1/series?type=cpu&name=demo&tag=handler%3D/x&group_by=a&function=f")
            if st != 200 or not r["data"]:
                out.append(f"series with the new parameters: {st} {str(r)[:200]}")
            return not out, "\n".join(out)
        check(t, "collector labels: bad tag=, id=, group_by=, function= get a clear 400 (404: no such profile)", bad_params)
    finally:
        c.stop()
        c.cleanup()
        demo.stop()
        demo2.stop()
        shutil.rmtree(work, ignore_errors=True)


# src/collector/web_labels.h
MAX_TAG_KEYS, MAX_TAG_VALUES, MAX_GROUPS = 64, 1000, 200


def label_limits(t):
    # sample i: value i + 1, its own value of "big" (1,200 of them), one of 250 values of "g",
    # and 70 more keys k00..k69 of one value each
    samples = [([i + 1], ["main.work", "main.main"], {"big": f"b{i:04d}", "g": f"g{i % 250:03d}",
                                                      **{f"k{j:02d}": "v" for j in range(70)}}) for i in range(1200)]
    srv = StaticServer(make_profile([("inuse_space", "bytes")], samples))
    c = Collector(f"monitors:\n- name: lim\n  endpoint: {srv.url}\n  heap: {{interval_seconds: 2}}\n", name="label-limits")
    try:
        def get_json(path):
            st, body, _ = http_req("GET", c.url + path)
            try:
                return st, json.loads(body)
            except ValueError:
                return st, {"body": body[:200]}
        ok = c.wait_for(lambda: len(get_json("/api/v1/profiles?type=heap&name=lim")[1].get("data") or []) >= 1, timeout=30)
        t.tool("label_limits: the collector stored a profile of the static target", ok, c.log_text()[-1500:])
        if not ok:
            return
        sel = "type=heap&name=lim"

        def tags_truncated():
            st, r = get_json(f"/api/v1/tags?{sel}")
            d = r.get("data", {})
            keys = [k["key"] for k in d.get("keys", [])]
            want_keys = sorted(["big", "g"] + [f"k{j:02d}" for j in range(70)])[:MAX_TAG_KEYS]
            big = next((k["values"] for k in d.get("keys", []) if k["key"] == "big"), [])
            want_big = [{"value": f"b{i:04d}", "total": i + 1} for i in range(1199, 1199 - MAX_TAG_VALUES, -1)]
            g = next((k["values"] for k in d.get("keys", []) if k["key"] == "g"), [])
            ok = st == 200 and d.get("truncated") is True and keys == want_keys and big == want_big and len(g) == 250
            return ok, f"HTTP {st}, truncated {d.get('truncated')}, {len(keys)} keys {keys[:3]}..{keys[-2:]}, " \
                       f"big {len(big)} values {big[:2]}..{big[-1:]}, g {len(g)} values"
        check(t, f"collector labels: /api/v1/tags lists the first {MAX_TAG_KEYS} keys by name and each key's "
                 f"{MAX_TAG_VALUES} biggest values, and says truncated", tags_truncated)

        def groups_limited():
            out = []
            for path in (f"/api/v1/render?{sel}&group_by=g", f"/api/v1/timeline?{sel}&group_by=g"):
                st, r = get_json(path)
                if st != 422 or r.get("status") != "error" or f"more than {MAX_GROUPS} values" not in r.get("error", ""):
                    out.append(f"{path}: {st} {str(r)[:200]}")
            # a key of fewer values splits as asked
            st, r = get_json(f"/api/v1/timeline?{sel}&group_by=k00")
            if st != 200 or [e["tag"] for e in r.get("data", [])] != [{"k00": "v"}]:
                out.append(f"group_by=k00: {st} {str(r)[:200]}")
            return not out, "\n".join(out)
        check(t, f"collector labels: group_by= of a key with more than {MAX_GROUPS} values gets 422 on render and timeline", groups_limited)
    finally:
        c.stop()
        c.cleanup()
        srv.stop()


PARTS = {"labels": labels, "label_limits": label_limits}
