"""Image suite (issue 6): `make image` builds the collector, operator and demo-target images
without a container engine; each is unpacked with umoci and run with chroot as the non-root
user (the collector scrapes the demo target from its own image on loopback and serves
/readyz; the operator prints its help); `make push` to Debian's docker-registry on loopback,
pulled back by digest and compared; `make manifests` renders deploy/ and examples/ for another
registry/tag, which load with `kubectl apply --server-side --dry-run=server` against the real API server,
and the operator run against it puts that collector image in the StatefulSet."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from harness import OUT, ROOT, free_port, run

IMAGES = ("collector", "operator", "demo-target")


def layout_manifest(layout, tag):
    idx = json.load(open(os.path.join(layout, "index.json")))
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            d = m["digest"]
            return d, json.load(open(os.path.join(layout, "blobs", "sha256", d.split(":")[1])))
    return None, None


def wait_http(url, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read()
        except OSError:
            time.sleep(0.2)
    return None, None


def run_suite(t):
    missing = [c for c in ("skopeo", "umoci", "docker-registry", "chroot") if not shutil.which(c)]
    if missing:
        t.record("image: tools installed (make deps)", False, f"missing: {missing}")
        return
    if os.geteuid() != 0:
        t.record("image: runs as root (chroot needs it; CI runs as root)", False, "not root")
        return
    d = tempfile.mkdtemp(prefix="image-suite-", dir=OUT if os.path.isdir(OUT) else None)
    reg_port = free_port()
    reg = f"127.0.0.1:{reg_port}"
    env = {"REGISTRY": reg, "REPO": "itest", "TAG": "t1"}
    mk = ["make", "-s", "--no-print-directory", "-C", ROOT]
    p = run(mk + ["image", f"REGISTRY={reg}", "REPO=itest", "TAG=t1"], timeout=600)
    t.record("image: make image builds collector, operator and demo-target", p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:])
    if p.returncode != 0:
        return
    layouts = {i: os.path.join(ROOT, "build", "images", i) for i in IMAGES}
    digests = {i: layout_manifest(layouts[i], "t1")[0] for i in IMAGES}
    # sizes
    sizes = {}
    for i in IMAGES:
        _, man = layout_manifest(layouts[i], "t1")
        cfg = json.load(open(os.path.join(layouts[i], "blobs", "sha256", man["config"]["digest"].split(":")[1])))
        layer = man["layers"][0]
        sizes[i] = (layer["size"], sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(ROOT, "build", "rootfs", i)) for f in fs))
        labels = cfg["config"].get("Labels", {})
        t.record(f"image {i}: non-root user, entrypoint, OCI labels for source, version, revision and licence",
                 cfg["config"]["User"] == "65532:65532" and cfg["config"]["Entrypoint"] == [f"/usr/local/bin/{i}"] and
                 all(k in labels for k in ("org.opencontainers.image.source", "org.opencontainers.image.version",
                                           "org.opencontainers.image.revision", "org.opencontainers.image.licenses")), cfg["config"])
    mb = 1024 * 1024
    t.record(f"image: collector image {sizes['collector'][0] / mb:.1f} MiB compressed, {sizes['collector'][1] / mb:.1f} MiB unpacked "
             f"(goal < 30 MB); operator {sizes['operator'][0] / mb:.1f}/{sizes['operator'][1] / mb:.1f} MiB; "
             f"demo-target {sizes['demo-target'][0] / mb:.1f}/{sizes['demo-target'][1] / mb:.1f} MiB",
             sizes["collector"][1] < 30 * 1000 * 1000, sizes)
    p = run(mk + ["image-collector", f"REGISTRY={reg}", "REPO=itest", "TAG=t1"], timeout=300)
    t.record("image: rebuilding gives the same manifest digest (reproducible layers)",
             p.returncode == 0 and digests["collector"] is not None and
             layout_manifest(layouts["collector"], "t1")[0] == digests["collector"],
             [digests["collector"], layout_manifest(layouts["collector"], "t1")[0]])

    # unpack with umoci and run inside with chroot, as the image's user
    roots = {}
    for i in IMAGES:
        bundle = os.path.join(d, f"bundle-{i}")
        p = run(["umoci", "unpack", "--image", f"{layouts[i]}:t1", bundle])
        roots[i] = os.path.join(bundle, "rootfs")
        t.record(f"image {i}: umoci unpacks it", p.returncode == 0 and os.path.exists(os.path.join(roots[i], "usr/local/bin", i)),
                 p.stdout + p.stderr)
    rev = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    for i in ("collector", "operator"):
        p = run(["chroot", "--userspec=65532:65532", roots[i], f"/usr/local/bin/{i}", "--version"])
        t.record(f"image {i}: --version inside the image prints version and the git revision",
                 p.returncode == 0 and f"revision {rev}" in p.stdout, p.stdout + p.stderr)
    p = run(["chroot", "--userspec=65532:65532", roots["operator"], "/usr/local/bin/operator", "--help"])
    t.record("image operator: --help inside the image", p.returncode == 0 and "--leader-elect" in p.stdout, p.stdout + p.stderr)
    demo_port, web_port = free_port(), free_port()
    demo = subprocess.Popen(["chroot", "--userspec=65532:65532", roots["demo-target"], "/usr/local/bin/demo-target",
                             f"-addr=127.0.0.1:{demo_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cr = roots["collector"]
    os.makedirs(os.path.join(cr, "etc/pprof-collector"), exist_ok=True)
    with open(os.path.join(cr, "etc/pprof-collector/config.yaml"), "w") as f:
        f.write(f"monitors:\n- name: demo\n  endpoint: http://127.0.0.1:{demo_port}\n  heap: {{interval_seconds: 1}}\n"
                f"  goroutine: {{interval_seconds: 1}}\n")
    coll = subprocess.Popen(["chroot", "--userspec=65532:65532", cr, "/usr/local/bin/collector", "--config",
                             "/etc/pprof-collector/config.yaml", "--data-dir", "/var/lib/pprof-collector", "--web-port", str(web_port),
                             "--web-listen-address", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "collector.log"), "w"))
    try:
        st, _ = wait_http(f"http://127.0.0.1:{web_port}/readyz", 20)
        up = None
        end = time.time() + 20
        while time.time() < end and not up:
            _, body = wait_http(f"http://127.0.0.1:{web_port}/api/v1/targets", 5)
            try:
                data = json.loads(body or b"{}").get("data", [])
                ts = data.get("activeTargets", []) if isinstance(data, dict) else data
                up = [x for x in ts if x.get("health") == "up"]
            except ValueError:
                pass
            time.sleep(0.5)
        t.record("image collector: runs as 65532 in its root, scrapes the demo-target image's process on loopback, /readyz 200",
                 st == 200 and bool(up), [st, open(os.path.join(d, "collector.log")).read()[-2000:]])
    finally:
        coll.terminate()
        demo.terminate()
        coll.wait(10)
        demo.wait(10)

    # a real registry on loopback: push, then pull back by digest
    regdir = os.path.join(d, "registry")
    os.makedirs(regdir)
    cfg = os.path.join(d, "registry.yml")
    open(cfg, "w").write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {regdir}\n"
                         f"http:\n  addr: {reg}\n")
    registry = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "registry.log"), "w"))
    try:
        st, _ = wait_http(f"http://{reg}/v2/", 20)
        t.record("registry: Debian's docker-registry answers /v2/ on loopback", st == 200, open(os.path.join(d, "registry.log")).read()[-1000:])
        p = run(mk + ["push", f"REGISTRY={reg}", "REPO=itest", "TAG=t1", "SKOPEO_FLAGS=--dest-tls-verify=false"], timeout=600)
        t.record("registry: make push pushes all three images", p.returncode == 0 and p.stdout.count("push ") == 3,
                 p.stdout[-1500:] + p.stderr[-2000:])
        for i in IMAGES:
            p = run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reg}/itest/{i}:t1"])
            remote = "sha256:" + hashlib.sha256(p.stdout.encode()).hexdigest() if p.returncode == 0 else None
            pulled = os.path.join(d, f"pulled-{i}")
            q = run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{reg}/itest/{i}@{digests[i]}", f"oci:{pulled}:x"])
            pd, pman = layout_manifest(pulled, "x") if q.returncode == 0 else (None, None)
            _, lman = layout_manifest(layouts[i], "t1")
            same_layers = pman is not None and [l["digest"] for l in pman["layers"]] == [l["digest"] for l in lman["layers"]] and \
                open(os.path.join(pulled, "blobs", "sha256", pman["layers"][0]["digest"].split(":")[1]), "rb").read() == \
                open(os.path.join(layouts[i], "blobs", "sha256", lman["layers"][0]["digest"].split(":")[1]), "rb").read()
            t.record(f"registry {i}: the pushed manifest has our digest; pulled back by digest, layers are byte for byte ours",
                     remote == digests[i] and pd == digests[i] and same_layers, [remote, digests[i], pd, p.stderr, q.stderr])
    finally:
        registry.terminate()
        registry.wait(10)

    # rendered manifests against the real API server, and the operator's StatefulSet image
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests", "operator"))
    from cluster import ControlPlane
    from kenv import NS, Operator, wait_for
    p = run(mk + ["manifests", "REGISTRY=registry.example:5000", "REPO=team", "TAG=v1.2.3"])
    man = os.path.join(ROOT, "build", "manifests")
    t.record("manifests: make manifests renders deploy/ and examples/ for REGISTRY/REPO/TAG",
             p.returncode == 0 and "registry.example:5000/team/operator:v1.2.3" in open(os.path.join(man, "deploy/operator/20-deployment.yaml")).read(),
             p.stdout + p.stderr)
    kd = os.path.join(d, "kube")
    cp = ControlPlane(os.path.join(kd, "control-plane"))
    try:
        cp.start()

        class Env:  # what the operator wrapper needs: a place for its log and the cluster
            dir = kd
        Env.cp = cp
        cp.kubectl("create", "namespace", NS)
        p1 = cp.kubectl("apply", "--server-side", "-f", os.path.join(man, "deploy/crds"))
        p2 = cp.kubectl("apply", "--server-side", "--dry-run=server", "-f", os.path.join(man, "deploy/operator"), "-f",
                        os.path.join(man, "examples/manifests"))
        t.record("manifests: the rendered files pass the real API server's validation (kubectl apply --server-side --dry-run=server)",
                 p1.returncode == 0 and p2.returncode == 0 and p2.stdout.count("(server dry run)") >= 10, p1.stderr + p2.stdout + p2.stderr)
        cp.kubectl("apply", "--server-side", "-f", os.path.join(man, "examples/manifests"))
        op = Operator(Env, name="manifests")
        try:
            def image():
                st, sts = cp.api("GET", f"/apis/apps/v1/namespaces/{NS}/statefulsets/pprof-operator-collector")
                return sts["spec"]["template"]["spec"]["containers"][0]["image"] if st == 200 else None
            img = wait_for(image, 60)
            t.record("manifests: the operator (out of cluster) puts the rendered collector image in the StatefulSet",
                     img == "registry.example:5000/team/collector:v1.2.3", [img, op.tail()])
        finally:
            op.stop()
    finally:
        cp.stop()
