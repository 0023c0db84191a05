#!/usr/bin/env bash
# The appliance under QEMU (software emulation, so every time here is slower
# than on an apu2c4):
#
#   1. boot: the end-to-end test (mkimage/tests/qemu_e2e.rs) boots the image
#      with a simulated ISP and LAN; its FIGURE lines are the boot times
#      (QEMU start → init, init start → LAN lease, init start → every
#      service running and healthy, where it reports that);
#   2. update downtime, kexec against a firmware reboot: the update end-to-end
#      test (mkimage/tests/update_e2e.rs, issue #11) prints both as FIGURE
#      lines; without `mkimage update` this says "not available yet";
#   3. idle memory on the device: a boot of its own (uplink on QEMU's user
#      network, the LAN on a tap in a namespace) until every service has run
#      for $SETTLE seconds, then each service's RSS from init's status
#      (`rss_bytes`, read from /proc/PID/statm on the device) and init's own
#      where init reports it.
#
#   bench/qemu.sh                 # as root; qemu, curl, ip
#   PARTS="boot update memory" SETTLE=60 bench/qemu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PARTS=${PARTS:-boot update memory}
SETTLE=${SETTLE:-60}
[ "$(id -u)" = 0 ] || { echo "bench/qemu.sh needs root (taps, namespaces)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
KERNEL=${ROUTER7_KERNEL:-$(kernel-config/build)}
if [ -z "${ROUTER7_BINS:-}" ]; then
  ci/build-static >&2
  ROUTER7_BINS=$(cd "$CARGO_TARGET_DIR" && pwd)/static/x86_64-unknown-linux-gnu/release
fi
export ROUTER7_KERNEL=$KERNEL ROUTER7_BINS

figures() { # a test's log → its FIGURE lines ("FIGURE name: value") as table rows
  sed -n 's/^FIGURE \(.*\): \(.*\)$/| \1 | \2 |/p' "$1" | awk '!seen[$0]++'
}

echo "### Under QEMU, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
echo

if [[ " $PARTS " == *" boot "* ]]; then
  log=$(mktemp /tmp/r7b-qemu-boot.XXXXXX)
  ROUTER7_STRICT=1 cargo test --locked --release -q -p mkimage --test qemu_e2e -- --nocapture --test-threads=1 >"$log" 2>&1 ||
    echo "(the end-to-end test failed; its figures below are from the steps that ran; log kept in $log)"
  echo "| boot (mkimage/tests/qemu_e2e.rs) | time |"
  echo "|---|---|"
  figures "$log"
  echo
  echo "qemu_e2e (ROUTER7_STRICT=1): $(grep -m1 '^test result' "$log" || echo 'no result line')"
  echo
fi

if [[ " $PARTS " == *" update "* ]]; then
  if [ -f mkimage/tests/update_e2e.rs ] && cargo run --locked -q -p mkimage -- --help 2>&1 | grep -q "mkimage update"; then
    log=$(mktemp /tmp/r7b-qemu-update.XXXXXX)
    ROUTER7_STRICT=1 cargo test --locked --release -q -p mkimage --test update_e2e -- --nocapture --test-threads=1 >"$log" 2>&1 ||
      echo "(the update test failed; its figures below are from the steps that ran; log kept in $log)"
    echo "| update (mkimage/tests/update_e2e.rs) | time |"
    echo "|---|---|"
    figures "$log"
    echo
    echo "update_e2e (ROUTER7_STRICT=1): $(grep -m1 '^test result' "$log" || echo 'no result line')"
  else
    echo "Update downtime (kexec vs firmware reboot): not available yet (no \`mkimage update\`, issue #11)."
  fi
  echo
fi

[[ " $PARTS " == *" memory "* ]] || exit 0

# 3. Idle memory on the device.
tag=$$
ns=r7b-qlan-$tag
tap=r7bq$tag
work=$(mktemp -d /tmp/r7b-qemu.XXXXXX)
qemu_pid=""
cleanup() {
  disown -a 2>/dev/null || true
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$tap" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

cargo build --locked --release -q -p mkimage
mkimage=$CARGO_TARGET_DIR/release/mkimage
password=$work/password
echo "qemu-bench-$tag" >"$password"
"$mkimage" build --kernel "$KERNEL" --bins "$ROUTER7_BINS" --out "$work/router7.img" --password-file "$password" \
  --version bench >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }

ip tuntap add dev "$tap" mode tap
"$mkimage" run "$work/router7.img" --uplink user --lan "tap:$tap" --snapshot --console stdout \
  >"$work/console.log" 2>&1 &
qemu_pid=$!
# QEMU opens the tap first; then it may move into the LAN namespace.
for _ in $(seq 300); do
  grep -qs "iff:.*$tap" /proc/"$(pgrep -P "$qemu_pid" -n || echo "$qemu_pid")"/fdinfo/* /proc/"$qemu_pid"/fdinfo/* && break
  sleep 0.1
done
ip netns add "$ns"
ip link set "$tap" netns "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link set "$tap" up
ip -n "$ns" addr add 192.168.42.250/24 dev "$tap"

overview() {
  ip netns exec "$ns" curl -sf --max-time 10 -u "router:$(cat "$password")" -H 'Accept: application/json' \
    http://192.168.42.1/
}
deadline=$((SECONDS + 900))
while :; do
  if doc=$(overview 2>/dev/null) && python3 - "$SETTLE" "$doc" <<'PY'; then break; fi
import json, sys
settle, doc = float(sys.argv[1]), json.loads(sys.argv[2])
svcs = doc.get("services") or []
sys.exit(0 if svcs and all(s["state"] == "Running" and (s.get("uptime_seconds") or 0) >= settle for s in svcs) else 1)
PY
  if [ $SECONDS -gt $deadline ]; then
    echo "bench/qemu.sh: the services did not all run for ${SETTLE} s within 15 minutes; console:" >&2
    tail -n 60 "$work/console.log" >&2
    exit 1
  fi
  sleep 5
done

python3 - "$doc" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
rows, total = [], 0
init_rss = doc.get("rss_bytes") or (doc.get("init") or {}).get("rss_bytes")
if init_rss:
    rows.append(("init", init_rss)); total += init_rss
for s in doc["services"]:
    rss = s.get("rss_bytes") or 0
    rows.append((s["name"], rss)); total += rss
print("| process (under QEMU, from init's status) | RSS KiB |")
print("|---|---|")
for name, rss in rows:
    print(f"| {name} | {rss // 1024} |")
print(f"| **total** | **{total // 1024}** |")
if not init_rss:
    print("\ninit does not report its own RSS in its status (yet): the total is the services' only.")
mem = doc.get("memory") or {}
if mem:
    print(f"\nThe VM: {json.dumps(mem)}")
PY
