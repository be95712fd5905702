"""The images the test kubelet can run: ours, as `make image` writes them (build/images/NAME,
tag dev, named docker.io/pprof-controller/NAME:dev as in examples/manifests), and Debian's
prometheus packed the same way (scripts/rootfs.sh + scripts/oci_image.py) as a third-party Go
program serving /debug/pprof."""
import os
import shutil
import subprocess

from harness import ROOT

IMAGES = os.path.join(ROOT, "build", "images")
COLLECTOR = "docker.io/pprof-controller/collector:dev"
OPERATOR = "docker.io/pprof-controller/operator:dev"
DEMO = "docker.io/pprof-controller/demo-target:dev"
PROMETHEUS = "pprof-controller.test/debian-prometheus:bookworm"
# the collector image under another name, as a hand-made hotfix would be: a drifted StatefulSet
# that still runs (see the operator suite's drift section)
COLLECTOR_HOTFIX = "registry.example.org/platform/collector:hotfix"


def _prometheus():
    layout = os.path.join(IMAGES, "debian-prometheus")
    if os.path.exists(os.path.join(layout, "index.json")):
        return layout
    binary = shutil.which("prometheus")
    if not binary:
        raise RuntimeError("Debian's prometheus is not installed (make deps)")
    root = os.path.join(ROOT, "build", "rootfs", "debian-prometheus")
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([os.path.join(ROOT, "scripts", "rootfs.sh"), binary, root], check=True, capture_output=True)
    subprocess.run(["python3", os.path.join(ROOT, "scripts", "oci_image.py"), root, layout, "--ref", PROMETHEUS,
                    "--entrypoint", "/usr/local/bin/prometheus", "--expose", "9090"], check=True, capture_output=True)
    return layout


def layouts():
    """{image reference: "layout:tag"} for every image the tests run; raises when one of ours
    has not been built (`make image`)."""
    out = {}
    for ref in (COLLECTOR, OPERATOR, DEMO):
        name = ref.rsplit("/", 1)[1].split(":")[0]
        layout = os.path.join(IMAGES, name)
        if not os.path.exists(os.path.join(layout, "index.json")):
            raise RuntimeError(f"{layout} missing: run `make image`")
        out[ref] = f"{layout}:dev"
    out[COLLECTOR_HOTFIX] = out[COLLECTOR]
    out[PROMETHEUS] = f"{_prometheus()}:bookworm"
    return out
