#!/usr/bin/env bash
# Keeps the replace block of tools/k8s/go.mod equal to what the required k8s.io/kubernetes tag
# itself implies, so the list of staging modules cannot drift when the version changes.
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...) at v0.0.0 and
# replaces each with ./staging/src/k8s.io/NAME; a module that depends on it has to replace each
# of them with the published module k8s.io/NAME v0.MINOR.PATCH instead. The list is read from the
# tag's own go.mod (the lines `k8s.io/NAME => ./staging/...`) in the module cache.
#
#   tools/k8s/sync.sh          rewrite the replace block from the required tag, then go mod tidy
#                              (to bump: edit the k8s.io/kubernetes version in go.mod, run this)
#   tools/k8s/sync.sh --check  exit 1 and print the difference when go.mod's replaces are not
#                              exactly the derived list (the k8s test suite runs this)
set -euo pipefail
cd "$(dirname "$0")"
GO=${GO:-/usr/local/go/bin/go}
export GOTOOLCHAIN=local GOFLAGS=

mode=${1:-sync}
case $mode in sync|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

# the required version, from the require lines (block or single-line form)
ver=$($GO mod edit -print | awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }')
[ -n "$ver" ] || { echo "sync: go.mod requires no k8s.io/kubernetes v1.x" >&2; exit 1; }
staging_ver=v0.${ver#v1.}   # v1.37.2 -> v0.37.2, v1.38.0-beta.0 -> v0.38.0-beta.0

modfile=$($GO env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$ver.mod
if [ ! -s "$modfile" ]; then
  $GO mod download -json "k8s.io/kubernetes@$ver" >/dev/null
fi
[ -s "$modfile" ] || { echo "sync: $modfile missing after go mod download" >&2; exit 1; }

# "k8s.io/NAME => k8s.io/NAME vX" for every staging replace of the tag, sorted
derived=$(awk -v v="$staging_ver" '
  { sub(/^replace[ \t]+/, "") }
  $2 == "=>" && $3 ~ /^\.\/staging\// { print $1 " => " $1 " " v }' "$modfile" | LC_ALL=C sort)
[ -n "$derived" ] || { echo "sync: no staging replaces in $modfile" >&2; exit 1; }

# every replace of our go.mod in the same form (go mod edit -print normalises the layout)
current() {
  $GO mod edit -print | awk '
    /^replace[ \t]*\($/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    /^replace[ \t]/ { sub(/^replace[ \t]+/, ""); print_it = 1 }
    inblock || print_it { if ($2 == "=>") print $1 " => " $3 (NF >= 4 ? " " $4 : ""); print_it = 0 }' | LC_ALL=C sort
}

if [ "$mode" = --check ]; then
  if [ "$(current)" != "$derived" ]; then
    echo "sync: tools/k8s/go.mod replaces differ from those derived from k8s.io/kubernetes $ver (run tools/k8s/sync.sh):" >&2
    diff <(current) <(printf '%s\n' "$derived") | sed 's/^</  go.mod: /; s/^>/  derived:/' >&2 || true
    exit 1
  fi
  echo "sync: $(printf '%s\n' "$derived" | wc -l) replaces match k8s.io/kubernetes $ver"
  exit 0
fi

# go.mod without its replace statements (block or single-line), then the derived block
tmp=$(mktemp go.mod.XXXXXX)
trap 'rm -f "$tmp"' EXIT
awk '
  /^\/\/ sync\.sh:/ { next }
  /^replace[ \t]*\($/ { inblock = 1; next }
  inblock { if (/^\)/) inblock = 0; next }
  /^replace[ \t]/ { next }
  { print }' go.mod | cat -s > "$tmp"
{
  echo
  echo "// sync.sh: the staging modules of k8s.io/kubernetes $ver at their published version; do not edit"
  echo "replace ("
  printf '%s\n' "$derived" | sed 's/^/\t/'
  echo ")"
} >> "$tmp"
mv "$tmp" go.mod
$GO mod tidy
echo "sync: $(printf '%s\n' "$derived" | wc -l) replaces from k8s.io/kubernetes $ver"
