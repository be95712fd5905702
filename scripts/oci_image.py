#!/usr/bin/env python3
"""oci_image.py ROOTFS OUT --ref REPO:TAG [options]: writes an OCI image layout (one layer made
from ROOTFS) without a container engine. The layer is reproducible: entries sorted, owner root
(or 65532 for --owned-by-user paths), times set to SOURCE_DATE_EPOCH (0 by default), gzip
without a timestamp; the same inputs give the same digests. `skopeo copy oci:OUT:TAG
docker://...` pushes it; `umoci unpack` or a plain untar of the layer unpacks it.

Options: --entrypoint PATH (repeatable: the argv), --cmd ARG (repeatable), --user UID:GID,
--expose PORT, --volume PATH, --workdir PATH, --label KEY=VALUE, --owned-by-user PATH (a
directory created in the image and owned by --user)."""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def blob(out, data):
    d = sha(data)
    p = os.path.join(out, "blobs", "sha256", d.split(":")[1])
    with open(p, "wb") as f:
        f.write(data)
    return d


def layer(root, owned, uid, gid, mtime):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                entries.append(os.path.join(dirpath, n))
        extra = set()
        for o in owned:  # the owned directory and its parents, so nothing is left to the unpacker
            parts = o.strip("/").split("/")
            extra |= {os.path.join(root, *parts[:i]) for i in range(1, len(parts) + 1)}
        for path in sorted(set(entries) | extra):
            rel = os.path.relpath(path, root)
            if os.path.lexists(path):
                ti = tar.gettarinfo(path, arcname=rel)
            else:
                ti = tarfile.TarInfo(rel)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o750 if any(rel == o.strip("/") for o in owned) else 0o755
            is_owned = any(rel == o.strip("/") or rel.startswith(o.strip("/") + "/") for o in owned)
            ti.uid, ti.gid = (uid, gid) if is_owned else (0, 0)
            ti.uname = ti.gname = ""
            ti.mtime = mtime
            if ti.isreg():
                with open(path, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rootfs")
    ap.add_argument("out")
    ap.add_argument("--ref", required=True, help="the image's name:tag (the tag names it in the layout)")
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--user", default="65532:65532")
    ap.add_argument("--expose", action="append", default=[])
    ap.add_argument("--volume", action="append", default=[])
    ap.add_argument("--workdir", default="/")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--owned-by-user", action="append", default=[])
    a = ap.parse_args()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    uid, gid = (int(x) for x in a.user.split(":"))
    os.makedirs(os.path.join(a.out, "blobs", "sha256"), exist_ok=True)
    tar = layer(a.rootfs, a.owned_by_user, uid, gid, mtime)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(tar)
    gzb = gz.getvalue()
    layer_digest = blob(a.out, gzb)
    created = "1970-01-01T00:00:00Z" if mtime == 0 else __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime(mtime))
    labels = dict(kv.split("=", 1) for kv in a.label)
    config = {
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"User": a.user, "Entrypoint": a.entrypoint, "Cmd": a.cmd or None, "WorkingDir": a.workdir,
                   "Env": ["PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
                   "ExposedPorts": {f"{p}/tcp": {} for p in a.expose} or None,
                   "Volumes": {v: {} for v in a.volume} or None, "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
        "history": [{"created": created, "created_by": "scripts/rootfs.sh + scripts/oci_image.py"}],
    }
    config["config"] = {k: v for k, v in config["config"].items() if v is not None}
    cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    cfg_digest = blob(a.out, cfg)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(cfg)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(gzb)}],
                "annotations": {k: v for k, v in labels.items() if k.startswith("org.opencontainers.image.")}}
    mb = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    m_digest = blob(a.out, mb)
    tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.rsplit("/", 1)[-1] else "latest"
    index_path = os.path.join(a.out, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": len(mb),
                               "annotations": {"org.opencontainers.image.ref.name": tag, "io.containerd.image.name": a.ref}})
    with open(index_path, "w") as f:
        json.dump(index, f, indent=1)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(json.dumps({"ref": a.ref, "manifest": m_digest, "layer_bytes": len(tar), "compressed_bytes": len(gzb)}))


if __name__ == "__main__":
    main()
