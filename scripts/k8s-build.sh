#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run against: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kubectl from the Go module in tools/k8s
# (k8s.io/kubernetes at the tag its go.mod requires, etcd from the same module graph), into
# build/k8s/bin. `make k8s` and `make test` call it.
#
# Cached by content: build/k8s/stamp holds a hash of tools/k8s/{go.mod,go.sum,etcd/main.go},
# this script and the Go version; when it matches and every binary is there, nothing is built
# (a fraction of a second). Modules come from the Go module proxy, checked against the committed
# go.sum (-mod=readonly: a build never edits go.mod). GOMODCACHE and GOCACHE are the
# environment's (point them elsewhere to measure a cold build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/tools/k8s
OUT=${K8S_OUT:-$ROOT/build/k8s}
GO=${GO:-/usr/local/go/bin/go}
BINS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

[ -x "$GO" ] || { echo "k8s-build: no Go at $GO (set GO=...)" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

hash=$( { cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/etcd/main.go" "$0"; "$GO" version; } | sha256sum | cut -d' ' -f1)
fresh=1
for b in "${BINS[@]}"; do [ -x "$OUT/bin/$b" ] || fresh=0; done
if [ $fresh = 1 ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$hash" ]; then
  touch "$OUT/stamp"   # make compares times: the inputs may be newer after a checkout
  exit 0
fi

cd "$SRC"
# the version the binaries report: the tag's own (buildDate is the tag's time, so a rebuild of
# the same inputs gives the same binaries). The module zip carries no git commit: gitCommit is
# empty (instead of the unexpanded "$Format:%H$" placeholder) and the tree state says "archive",
# as for Kubernetes built from a source archive.
read -r ver vtime < <("$GO" list -m -f '{{.Version}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
[[ $ver =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "k8s-build: unexpected k8s.io/kubernetes version $ver" >&2; exit 1; }
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=archive -X $pkg.buildDate=$vtime"
done

echo "k8s-build: building etcd and Kubernetes $ver into $OUT/bin (minutes on a cold cache)" >&2
start=$(date +%s)
tmp=$OUT/bin.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
"$GO" build -trimpath -buildvcs=false -ldflags="$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ./etcd
for b in "${BINS[@]}"; do [ -x "$tmp/$b" ] || { echo "k8s-build: $b was not built" >&2; exit 1; }; done
rm -rf "$OUT/bin" && mv "$tmp" "$OUT/bin"
echo "$hash" > "$OUT/stamp"
echo "k8s-build: done in $(( $(date +%s) - start ))s" >&2
