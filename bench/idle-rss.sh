#!/usr/bin/env bash
# Idle memory of the appliance's processes, measured in network namespaces on
# this machine: the static binaries (ci/build-static) started by the real init
# (--supervise-only, PID 1 of its own PID namespace) from a manifest made from
# mkimage's service table (same uids, groups and capabilities as on the
# device), with an "ISP" namespace giving uplink0 a DHCPv4 lease (dnsmasq) and
# a LAN namespace on lan0. After every service has run for $SETTLE seconds,
# each process's memory is read from /proc (host side):
#
#   RSS      VmRSS: resident pages mapped by the process, file-backed and
#            anonymous. A static binary's pages count in full in the process
#            that maps it (nothing else maps them).
#   anon     RssAnon: heap, stacks, written data.
#   file     RssFile: the binary's own pages in the page tables (the kernel
#            maps up to fault_around_bytes around every page fault).
#   PSS      Pss from smaps_rollup (shared pages divided among their users).
#   HWM      VmHWM, the peak RSS since start.
#   threads  from /proc/PID/status.
#
#   bench/idle-rss.sh                 # needs root, ip, unshare, dnsmasq, curl
#   BINS=dir SETTLE=30 bench/idle-rss.sh
#   FORMAT=kv bench/idle-rss.sh       # machine-readable: name=… rss_kib=… lines
#   SMAPS=dir bench/idle-rss.sh       # also copies each process's /proc/PID/smaps there
#
# This is what ci/budgets checks against the RSS budget (see ci/README.md): a
# proxy for the device, where the same binaries run under the same init; the
# QEMU end-to-end boot reports its own figures (bench/qemu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SETTLE=${SETTLE:-30}
FORMAT=${FORMAT:-table}
[ "$(id -u)" = 0 ] || { echo "bench/idle-rss.sh needs root (namespaces)" >&2; exit 1; }
for t in ip unshare dnsmasq curl python3; do
  command -v "$t" >/dev/null || { echo "bench/idle-rss.sh needs $t" >&2; exit 1; }
done
BINS=${BINS:-${CARGO_TARGET_DIR:-$PWD/target}/static/x86_64-unknown-linux-gnu/release}
[ -x "$BINS/init" ] || { echo "no static binaries in $BINS (run ci/build-static)" >&2; exit 1; }

tag=$$
ns_rt=r7b-rt-$tag
ns_isp=r7b-isp-$tag
ns_lan=r7b-lan-$tag
work=$(mktemp -d /tmp/r7b-idle.XXXXXX)
chmod 755 "$work"
unshare_pid=""
cleanup() {
  disown -a 2>/dev/null || true
  [ -n "$unshare_pid" ] && kill "$unshare_pid" 2>/dev/null || true
  for ns in $ns_rt $ns_isp $ns_lan; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

for ns in $ns_rt $ns_isp $ns_lan; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip -n $ns_rt link add uplink0 address 52:54:00:72:37:01 type veth peer name isp0 netns $ns_isp
ip -n $ns_rt link add lan0 address 52:54:00:72:37:02 type veth peer name cli0 netns $ns_lan
ip -n $ns_isp addr add 192.0.2.1/24 dev isp0
ip -n $ns_isp link set isp0 up
ip -n $ns_lan link set cli0 up
ip -n $ns_rt link set uplink0 up
ip -n $ns_rt link set lan0 up
ip netns exec $ns_isp dnsmasq -k --no-resolv --port=0 --bind-interfaces --interface=isp0 \
  --dhcp-range=192.0.2.10,192.0.2.100,255.255.255.0,1h --dhcp-option=option:dns-server,192.0.2.1 \
  --dhcp-leasefile="$work/isp.leases" --log-facility="$work/isp.log" &

mkdir -p "$work/perm" "$work/run"
cat >"$work/perm/interfaces.json" <<'EOF'
{"interfaces":[{"hardware_addr":"52:54:00:72:37:01","name":"uplink0"},
               {"hardware_addr":"52:54:00:72:37:02","name":"lan0","addr":"192.168.42.1/24"}]}
EOF
echo "idle-bench-password" >"$work/password"
echo '{"version":"bench","build_time":"2026-01-01T00:00:00Z"}' >"$work/version"

# The manifest from mkimage's table (src/services.rs), pointing at $BINS.
python3 - "$BINS" mkimage/src/services.rs >"$work/services.json" <<'PY'
import json, os, re, sys
bins, table = sys.argv[1], open(sys.argv[2]).read()
consts = {f"{m.group(1)}.1": int(m.group(2))
          for m in re.finditer(r'pub const (\w+): \(&str, u32\) = \("[\w-]+", (\d+)\);', table)}
shared = consts.get("SHARED_GROUP.1", 1000)  # init's default shared_gid
out = []
for block in re.findall(r'ServiceSpec\s*\{([^{}]*)\}', table):
    name = re.search(r'name:\s*"(\w+)"', block)
    uid = re.search(r'uid:\s*(\d+)', block)
    if not (name and uid) or not os.path.exists(os.path.join(bins, name.group(1))):
        continue
    field = lambda f: (re.search(f + r':\s*&\[([^\]]*)\]', block) or [None, ""])[1]
    groups = [shared] + [consts.get(g.strip(), None) or int(g) for g in field("groups").split(",") if g.strip()]
    out.append({"name": name.group(1), "path": os.path.join(bins, name.group(1)),
                "args": re.findall(r'"([^"]*)"', field("args")), "env": {},
                "uid": int(uid.group(1)), "gid": int(uid.group(1)), "groups": sorted(set(groups)),
                "capabilities": re.findall(r'"(\w+)"', field("capabilities"))})
if len(out) < 9:
    sys.exit(f"found {len(out)} services in {sys.argv[2]} with binaries in {bins}; expected 9")
print(json.dumps({"services": out, "shared_gid": shared}))
PY
services=$(python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(open(sys.argv[1]))["services"]))' "$work/services.json")

ip netns exec $ns_rt unshare --pid --fork --mount-proc --kill-child "$BINS/init" --supervise-only \
  --manifest "$work/services.json" --perm "$work/perm" --run "$work/run" \
  --image-password "$work/password" --version-file "$work/version" --console "$work/console.log" \
  >"$work/init.log" 2>&1 &
unshare_pid=$!

ctl() { curl -sf --max-time 5 --unix-socket "$work/run/router/init.sock" "http://init$1"; }
# Every service running, none restarted, for SETTLE seconds.
deadline=$((SECONDS + 120))
while :; do
  if overview=$(ctl /v1/services 2>/dev/null) && python3 - "$SETTLE" "$overview" <<'PY'; then break; fi
import json, sys
settle, doc = float(sys.argv[1]), json.loads(sys.argv[2])
svcs = doc["services"]
sys.exit(0 if svcs and all(s["state"] == "Running" and (s.get("uptime_seconds") or 0) >= settle for s in svcs) else 1)
PY
  if [ $SECONDS -gt $deadline ]; then
    echo "bench/idle-rss.sh: services did not all run for ${SETTLE}s within 120 s:" >&2
    ctl /v1/services >&2 || true
    tail -n 40 "$work/console.log" >&2 || true
    exit 1
  fi
  sleep 1
done
restarts=$(python3 -c 'import json,sys; print(sum(s["restarts"] for s in json.loads(sys.argv[1])["services"]))' "$overview")

# Host pids of init and every service, by executable name.
init_pid=$(cut -d' ' -f1 "/proc/$unshare_pid/task/$unshare_pid/children")
declare -A pid_of
pid_of[init]=$init_pid
for child in $(cat /proc/"$init_pid"/task/*/children); do
  name=$(basename "$(readlink "/proc/$child/exe")")
  pid_of[$name]=$child
done

field() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
pss() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup"; }
total_rss=0 total_anon=0 total_file=0 total_pss=0 total_threads=0
rows=()
for name in init $services; do
  pid=${pid_of[$name]:-}
  [ -n "$pid" ] || { echo "bench/idle-rss.sh: $name is not running" >&2; exit 1; }
  rss=$(field "$pid" VmRSS) anon=$(field "$pid" RssAnon) file=$(field "$pid" RssFile)
  hwm=$(field "$pid" VmHWM) threads=$(field "$pid" Threads) p=$(pss "$pid")
  size=$(stat -c %s "$BINS/$name")
  if [ -n "${SMAPS:-}" ]; then mkdir -p "$SMAPS" && cat "/proc/$pid/smaps" >"$SMAPS/$name.smaps"; fi
  total_rss=$((total_rss + rss)) total_anon=$((total_anon + anon)) total_file=$((total_file + file))
  total_pss=$((total_pss + p)) total_threads=$((total_threads + threads))
  rows+=("$name $rss $anon $file $p $hwm $threads $size")
done

if [ "$FORMAT" = kv ]; then
  for r in "${rows[@]}"; do
    set -- $r
    echo "name=$1 rss_kib=$2 anon_kib=$3 file_kib=$4 pss_kib=$5 hwm_kib=$6 threads=$7 size_bytes=$8"
  done
  echo "name=TOTAL rss_kib=$total_rss anon_kib=$total_anon file_kib=$total_file pss_kib=$total_pss threads=$total_threads restarts=$restarts"
  exit 0
fi

echo "### Idle memory, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), after ${SETTLE} s running"
echo
echo "| process | RSS KiB | anon KiB | file KiB | PSS KiB | peak RSS KiB | threads | binary bytes |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
  set -- $r
  echo "| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 |"
done
echo "| **total** | **$total_rss** | $total_anon | $total_file | $total_pss | | $total_threads | |"
echo
awk -v t="$total_rss" 'BEGIN {printf "Total RSS %.2f MiB of the 16 MiB budget (%.0f%%).\n", t / 1024, t / 1024 / 16 * 100}'
[ "$restarts" = 0 ] || echo "Note: $restarts restarts during the run (a service failed; see its log)."
