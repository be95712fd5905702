#!/usr/bin/env bash
# Installs the Debian bookworm packages needed to build and test pprof-controller, skipping
# those already installed. Used by `make deps` (explicitly) and by `make build`/`make test`
# (implicitly, when something is missing). Needs root for apt-get; as another user it only
# reports what is missing.
set -euo pipefail

PACKAGES=(
  gcc make pkg-config             # toolchain
  clang libclang-rt-14-dev        # libFuzzer and the sanitizer runtimes
  protobuf-c-compiler libprotobuf-c-dev  # the wire format: protoc-c and its runtime
  zlib1g-dev libdeflate-dev       # gzip: libdeflate for whole buffers, zlib for streaming and encoding
  libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev libjansson-dev libcrypt-dev libpcre2-dev libexpat1-dev  # collector (expat: S3 listings)
  python3                         # the test runner and conformance checks
  valgrind                        # memcheck runs
  prometheus                      # a real third-party Go program serving /debug/pprof (collector tests)
  openssl                         # certificates for the collector's TLS tests
  apache2-utils                   # htpasswd -B: bcrypt hashes for the web auth tests
  chromium                        # UI tests: Debian's browser, driven by playwright-core from npm
  skopeo umoci docker-registry     # images without a daemon: push (skopeo), unpack (umoci), a real registry
  ca-certificates                 # the CA bundle the images carry
)
# Node.js for the UI tests: the machine image ships one; Debian's otherwise.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# kubectl and the control plane for the operator tests are built from Go modules (make k8s).

# Go: the machine's own toolchain (/usr/local/go, 1.26) builds everything that is Go (demo and
# load targets, the in-process bench, the Kubernetes control plane) and is the conformance oracle
# (`go tool pprof`). Debian's golang-go (1.19) is too old for any of that and is not used.
[ -x /usr/local/go/bin/go ] && case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) export PATH=/usr/local/go/bin:$PATH ;; esac
gov=$(go env GOVERSION 2>/dev/null || true)
case "$gov" in
  go1.2[6-9]*|go1.[3-9][0-9]*) ;;
  *) echo "deps: needs Go >= 1.26 on the PATH (found '${gov:-none}'); this machine kind ships it in /usr/local/go" >&2
     exit 1 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run 'make deps' as root)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
