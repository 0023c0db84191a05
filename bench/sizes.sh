#!/usr/bin/env bash
# Sizes of what the appliance ships: every on-device binary (and whether
# `file` calls it statically linked), and the image mkimage builds from them:
# the kernel, the root SquashFS (one slot), the disk image (its nominal size,
# what it occupies on disk, and gzip-compressed, as it would be downloaded).
#
#   bench/sizes.sh                    # needs the kernel (kernel-config/build, cached)
#   BINS=dir KERNEL=bzImage bench/sizes.sh
#   FORMAT=kv bench/sizes.sh          # machine-readable lines (ci/budgets reads them)
set -euo pipefail
cd "$(dirname "$0")/.."

FORMAT=${FORMAT:-table}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BINS=${BINS:-$CARGO_TARGET_DIR/static/x86_64-unknown-linux-gnu/release}
[ -x "$BINS/init" ] || { echo "no static binaries in $BINS (run ci/build-static)" >&2; exit 1; }
KERNEL=${KERNEL:-$(kernel-config/build)}

# The binaries ci/build-static builds: every binary target but the host tools'.
mapfile -t names < <(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print("\n".join(t["name"] for p in m["packages"] if p["name"] not in ("mkimage","testbed") for t in p["targets"] if "bin" in t["kind"]))')

cargo build --locked -q -p mkimage
work=$(mktemp -d /tmp/r7b-sizes.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "sizes-password" >"$work/password"
"$CARGO_TARGET_DIR/debug/mkimage" build --kernel "$KERNEL" --bins "$BINS" --out "$work/router7.img" \
  --password-file "$work/password" --version bench >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; exit 1; }
read -r root kernel disk services < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["root_size"], r["kernel_size"], r["disk_size"], ",".join(r["services"]))' "$work/router7.json")
allocated=$(( $(stat -c %b "$work/router7.img") * $(stat -c %B "$work/router7.img") ))
gzipped=$(gzip -1 -c "$work/router7.img" | wc -c)

total_bins=0
if [ "$FORMAT" = kv ]; then
  for n in "${names[@]}"; do
    desc=$(file -b "$BINS/$n")
    case "$desc" in *"statically linked"*|*"static-pie linked"*) static=yes ;; *) static=no ;; esac
    echo "binary=$n bytes=$(stat -c %s "$BINS/$n") static=$static"
  done
  echo "image root_bytes=$root kernel_bytes=$kernel disk_bytes=$disk allocated_bytes=$allocated gzip_bytes=$gzipped services=$services"
  exit 0
fi

echo "### Sizes, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
echo
echo "| binary | bytes | linked |"
echo "|---|---|---|"
for n in "${names[@]}"; do
  size=$(stat -c %s "$BINS/$n")
  total_bins=$((total_bins + size))
  desc=$(file -b "$BINS/$n")
  case "$desc" in *"statically linked"*|*"static-pie linked"*) linked=static ;; *) linked="**not static**" ;; esac
  echo "| $n | $size | $linked |"
done
echo "| **all** | **$total_bins** | |"
echo
mib() { awk -v b="$1" 'BEGIN {printf "%.2f MiB", b / 1048576}'; }
echo "| image part | bytes | |"
echo "|---|---|---|"
echo "| root SquashFS (one slot; zstd) | $root | $(mib "$root") of the 12 MiB budget |"
echo "| kernel (bzImage) | $kernel | $(mib "$kernel") |"
echo "| disk image, nominal | $disk | $(mib "$disk") (partitions: boot, two root slots, /perm) |"
echo "| disk image, allocated (sparse) | $allocated | $(mib "$allocated") |"
echo "| disk image, gzip -1 | $gzipped | $(mib "$gzipped") |"
echo
echo "Services in the image: $services."
