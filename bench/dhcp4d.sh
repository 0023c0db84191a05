#!/usr/bin/env bash
# DHCPv4 server benchmark: perfdhcp against dhcp4d, dnsmasq and kea-dhcp4
# (memfile, persisting) on the same veth pair, in the same run, at several
# offered rates. Reports DORA exchanges per second, drop ratios and peak RSS,
# and dhcp4d's and each peer's figures as ratios. Then it checks that dhcp4d,
# stopped (SIGTERM) right after a run, lost no acknowledged lease: every ACK
# captured on the wire must be in leases.json.
#
#   bench/dhcp4d.sh [SECONDS_PER_RUN] [RATE...]      (as root)
#   DHCP4D=path/to/dhcp4d  to use another binary (default: a release build)
#   WRITE_INTERVAL=MS      passed to dhcp4d --write-interval
#
# Not a test: it asserts nothing about speed. Results go to stdout; copy them
# to bench/RESULTS.md with the machine, the date and how loaded it was.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(1000 4000 8000 12000)
clients=60000

for tool in perfdhcp dnsmasq kea-dhcp4 tcpdump tshark ip; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (namespaces)" >&2; exit 1; }

if [ -z "${DHCP4D:-}" ]; then
  cargo build --release -p dhcp4d >&2
  DHCP4D="${CARGO_TARGET_DIR:-target}/release/dhcp4d"
fi

tag="r7b-$$"
srv="$tag-s"
cli="$tag-c"
work=$(mktemp -d /tmp/r7b-dhcp4d.XXXXXX)
server_pid=""

cleanup() {
  disown -a 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  for ns in "$srv" "$cli"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv"
ip netns add "$cli"
ip -n "$srv" link set lo up
ip -n "$cli" link set lo up
ip -n "$srv" link add srv0 type veth peer name cli0 netns "$cli"
ip -n "$srv" addr add 10.0.0.1/16 dev srv0
ip -n "$cli" addr add 10.0.0.2/16 dev cli0
ip -n "$srv" link set srv0 up
ip -n "$cli" link set cli0 up
mkdir -p /run/kea

# The same /16 pool for everyone.
pool_start=10.0.0.10
pool_end=10.0.250.250

wait_port67() {
  for _ in $(seq 200); do
    ip netns exec "$srv" ss -lun | grep -q ':67 ' && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on port 67" >&2
  return 1
}

start_dhcp4d() {
  rm -rf "$work/perm" "$work/run"
  mkdir -p "$work/perm/dhcp4d" "$work/run"
  echo '{"interfaces":[{"name":"srv0","addr":"10.0.0.1/16"}]}' >"$work/perm/interfaces.json"
  echo "{\"pool\":{\"start\":\"$pool_start\",\"end\":\"$pool_end\"}}" >"$work/perm/dhcp4d/config.json"
  local extra=()
  [ -n "${WRITE_INTERVAL:-}" ] && extra+=(--write-interval "$WRITE_INTERVAL")
  ip netns exec "$srv" "$DHCP4D" --perm "$work/perm" --run "$work/run" --lan srv0 \
    --http 127.0.0.1:18067 "${extra[@]}" 2>"$work/dhcp4d.log" &
  server_pid=$!
  wait_port67
}

start_dnsmasq() {
  rm -f "$work/dnsmasq.leases"
  ip netns exec "$srv" dnsmasq -k --no-resolv --port=0 --bind-interfaces --interface=srv0 \
    --dhcp-range="$pool_start,$pool_end,255.255.0.0,20m" --dhcp-leasefile="$work/dnsmasq.leases" \
    --dhcp-authoritative --no-ping --quiet-dhcp --dhcp-lease-max=70000 --log-facility="$work/dnsmasq.log" \
    --pid-file="$work/dnsmasq.pid" &
  server_pid=$!
  wait_port67
}

start_kea() {
  rm -f "$work/kea.csv"*
  cat >"$work/kea.json" <<EOF
{"Dhcp4":{"interfaces-config":{"interfaces":["srv0"],"dhcp-socket-type":"udp"},
"lease-database":{"type":"memfile","persist":true,"name":"$work/kea.csv","lfc-interval":0},
"valid-lifetime":1200,
"subnet4":[{"id":1,"subnet":"10.0.0.0/16","pools":[{"pool":"$pool_start-$pool_end"}]}],
"loggers":[{"name":"kea-dhcp4","output_options":[{"output":"$work/kea.log"}],"severity":"WARN"}]}}
EOF
  ip netns exec "$srv" kea-dhcp4 -c "$work/kea.json" >/dev/null 2>&1 &
  server_pid=$!
  wait_port67
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 400); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.025
  done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

peak_rss_kib() {
  awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0
}

# perfdhcp output → "discovers offers requests acks"
parse_perfdhcp() {
  awk '
    /Statistics for: DISCOVER-OFFER/ {s = "do"} /Statistics for: REQUEST-ACK/ {s = "ra"}
    /^sent packets:/ {sent[s] = $3} /^received packets:/ {recv[s] = $3}
    END {printf "%d %d %d %d\n", sent["do"], recv["do"], sent["ra"], recv["ra"]}' "$1"
}

printf '%-8s %7s %9s %9s %9s %9s %8s %9s\n' server offered discovers offers acks "DORA/s" drops "RSS KiB"
declare -A dora drops rss
for rate in "${rates[@]}"; do
  for server in dhcp4d kea dnsmasq; do
    "start_$server"
    capture=()
    if [ "$server" = dhcp4d ]; then
      ip netns exec "$cli" tcpdump -i cli0 -n -B 65536 -s 400 -w "$work/acks-$rate.pcap" 'udp src port 67' \
        >/dev/null 2>&1 &
      capture=($!)
      sleep 0.5
    fi
    ip netns exec "$cli" perfdhcp -4 -l cli0 -r "$rate" -R "$clients" -p "$seconds" 10.0.0.1 \
      >"$work/perf-$server-$rate.txt" 2>&1 || true
    peak=$(peak_rss_kib)
    stop_server
    if [ ${#capture[@]} -gt 0 ]; then
      sleep 0.5
      kill -INT "${capture[0]}" 2>/dev/null || true
      wait "${capture[0]}" 2>/dev/null || true
    fi
    read -r d o r a < <(parse_perfdhcp "$work/perf-$server-$rate.txt")
    per_s=$(awk -v a="$a" -v s="$seconds" 'BEGIN {printf "%.0f", a / s}')
    drop=$(awk -v d="$d" -v a="$a" 'BEGIN {if (d > 0) printf "%.4f", 1 - a / d; else print "nan"}')
    dora[$server,$rate]=$per_s
    drops[$server,$rate]=$drop
    rss[$server,$rate]=$peak
    printf '%-8s %7s %9s %9s %9s %9s %8s %9s\n' "$server" "$rate" "$d" "$o" "$a" "$per_s" "$drop" "$peak"
    if [ "$server" = dhcp4d ]; then
      # Every ACK seen on the wire must be in leases.json: dhcp4d wrote it
      # before sending the ACK, and flushed on SIGTERM.
      tshark -r "$work/acks-$rate.pcap" -Y 'dhcp.option.dhcp == 5' -T fields \
        -e dhcp.hw.mac_addr -e dhcp.ip.your 2>/dev/null | sort -u >"$work/acked-$rate.txt"
      python3 - "$work/perm/dhcp4d/leases.json" "$work/acked-$rate.txt" <<'PY'
import json, sys
leases = {(l["hardware_addr"], l["addr"]) for l in json.load(open(sys.argv[1]))}
acked = [tuple(line.split()) for line in open(sys.argv[2]) if line.strip()]
# A MAC acknowledged twice keeps only its latest address; count per MAC.
by_mac = {}
for mac, addr in acked:
    by_mac.setdefault(mac, set()).add(addr)
missing = [m for m, addrs in by_mac.items() if not any((m, a) in leases for a in addrs)]
print(f"         leases.json after SIGTERM: {len(leases)} leases; {len(by_mac)} clients ACKed on the wire; "
      f"{len(missing)} missing" + (f" e.g. {missing[:3]}" if missing else ""))
sys.exit(1 if missing else 0)
PY
    fi
  done
done

echo
echo "ratios (dhcp4d / peer): DORA/s, and drop ratio difference"
printf '%-8s %12s %12s %14s %14s\n' offered "vs kea" "vs dnsmasq" "drops-kea" "drops-dnsmasq"
for rate in "${rates[@]}"; do
  awk -v r="$rate" -v d="${dora[dhcp4d,$rate]}" -v k="${dora[kea,$rate]}" -v m="${dora[dnsmasq,$rate]}" \
    -v dd="${drops[dhcp4d,$rate]}" -v dk="${drops[kea,$rate]}" -v dm="${drops[dnsmasq,$rate]}" \
    'BEGIN {printf "%-8s %12.2f %12.2f %+14.4f %+14.4f\n", r, (k ? d / k : 0), (m ? d / m : 0), dd - dk, dd - dm}'
done
echo
echo "peak RSS (KiB) dhcp4d / kea / dnsmasq at the highest rate: ${rss[dhcp4d,${rates[-1]}]} / ${rss[kea,${rates[-1]}]} / ${rss[dnsmasq,${rates[-1]}]}"
