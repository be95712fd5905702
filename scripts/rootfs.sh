#!/usr/bin/env bash
# rootfs.sh BINARY ROOT: the smallest root file system that runs BINARY: the binary itself as
# /usr/local/bin/<name>, every shared library `ldd` resolves for it (and the loader) at the
# paths the loader looks for them, the CA bundle for TLS, and a non-root user 65532 in
# /etc/passwd and /etc/group. No shell, no package manager. Used by `make image` and by the
# Containerfiles' build stage, so both produce the same files.
set -euo pipefail
bin=$1
root=$2
name=$(basename "$bin")
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
install -m 0755 "$bin" "$root/usr/local/bin/$name"
# "libx.so => /lib/.../libx.so (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
{ ldd "$bin" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
  install -D -m 0644 "$(readlink -f "$lib")" "$root$lib"
done
chmod 0755 "$root"/lib64/ld-linux-* 2>/dev/null || true
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
