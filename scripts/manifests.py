#!/usr/bin/env python3
"""manifests.py --registry R --repo P --tag T --out DIR: deploy/ and examples/manifests/ with
their image references rendered for R/P/...:T (the defaults in the repository are
docker.io/pprof-controller/<image>:dev). No kustomize: the files are plain YAML and the
replacements are exact, so a default that is not found is an error rather than a silent
miss."""
import argparse
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ("docker.io", "pprof-controller", "dev")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", default=DEFAULT[0])
    ap.add_argument("--repo", default=DEFAULT[1])
    ap.add_argument("--tag", default=DEFAULT[2])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for v in (a.registry, a.repo, a.tag):
        if not re.fullmatch(r"[A-Za-z0-9._:/-]+", v):
            sys.exit(f"manifests: bad value {v!r}")
    shutil.rmtree(a.out, ignore_errors=True)
    for sub in ("deploy/crds", "deploy/operator", "examples/manifests"):
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(a.out, sub))
    old = f"{DEFAULT[0]}/{DEFAULT[1]}/"
    new = f"{a.registry}/{a.repo}/"
    done = 0
    for sub in ("deploy/operator", "examples/manifests"):
        d = os.path.join(a.out, sub)
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            text = open(p).read()
            # full references: image: docker.io/pprof-controller/<name>:dev
            text2 = re.sub(re.escape(old) + r"([a-z-]+):" + re.escape(DEFAULT[2]) + r"\b", lambda m: f"{new}{m.group(1)}:{a.tag}", text)
            # the stack's collectorImage fields
            if "kind: PprofCollectorStack" in text2:
                for key, val in (("registry", a.registry), ("repo", a.repo), ("tag", a.tag)):
                    text2, n_sub = re.subn(rf"(\n    {key}: ).*", lambda m: m.group(1) + val, text2, count=1)
                    if n_sub != 1:
                        sys.exit(f"manifests: {p}: no collectorImage.{key} to set")
            if text2 != text:
                done += 1
                open(p, "w").write(text2)
    if done < 3:
        sys.exit(f"manifests: expected image references in the operator Deployment, the stack and the target; changed {done} files")
    print(f"manifests: {a.out} for {a.registry}/{a.repo}/*:{a.tag}")


if __name__ == "__main__":
    main()
