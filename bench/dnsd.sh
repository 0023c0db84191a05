#!/usr/bin/env bash
# dnsd against dnsmasq and unbound as caching forwarders, in front of the same
# upstream, on this machine, in one run. Not a test: it reports figures and
# ratios, it asserts nothing.
#
#   bench/dnsd.sh                       # needs root, dnsperf, dnsmasq, unbound
#   DURATION=20 RATE=10000 ROUNDS=5 bench/dnsd.sh
#   DNSD=path/to/dnsd bench/dnsd.sh     # another build (default: the static release build)
#
# Namespaces: `cli` (dnsperf, 10.9.1.100) — `fw` (the three forwarders on
# 10.9.1.1 dnsd, 10.9.1.2 dnsmasq, 10.9.1.3 unbound) — `up` (the upstream,
# dnsmasq answering every name under zone.example with TTL 3600, 10.9.0.53).
# Also in `fw`, on 10.9.1.4: the floor (svc/dnsd/examples/udp_floor.rs), dnsd's
# receive/send loop with no DNS work, answering every query with a fixed record:
# its CPU per query is what the kernel costs here, the part no forwarder avoids.
# On 10.9.1.5 the same floor reads its socket on a timer of dnsd's moderation
# period instead of waking per datagram: the least a moderated responder costs.
#
# For each forwarder, two query mixes:
#   cache hit:  100 names, asked in a loop after a warm-up pass;
#   cache miss: names never asked before (each forwarder its own), so every
#               query is forwarded.
# and two loads:
#   saturation: dnsperf with 10 clients and up to 200 outstanding queries:
#               queries/s and average latency;
#   fixed rate: dnsperf -Q $RATE: latency (average, median and 99th
#               percentile of every answer, from dnsperf -v), and the
#               forwarder's CPU time (all its threads, from
#               /proc/PID/task/*/schedstat: user and kernel time in ns) per
#               1,000 answered queries.
# Everything is measured $ROUNDS times, the forwarders in turn, and the median
# reported (the machine may be shared: medians of interleaved rounds are what
# survives other load); the cache-hit CPU ratio to dnsmasq is also given as
# the median of the per-round ratios, which cancels load that drifts between
# rounds. Peak RSS is VmHWM at the end. Settings are matched where the programs
# allow: 10,000 cache entries, 1,024 queries in flight, one thread each. dnsd
# is the static binary the appliance ships (ci/build-static; DNSD= overrides).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATE=${RATE:-10000}
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "bench/dnsd.sh needs root (namespaces)" >&2; exit 1; }
for t in dnsperf dnsmasq unbound ip; do
  command -v "$t" >/dev/null || { echo "bench/dnsd.sh needs $t" >&2; exit 1; }
done

target=${CARGO_TARGET_DIR:-$PWD/target}/static
if [ -z "${DNSD:-}" ]; then
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -q --locked --target x86_64-unknown-linux-gnu \
    --target-dir "$target" -p dnsd
  DNSD=$target/x86_64-unknown-linux-gnu/release/dnsd
fi
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -q --locked --target x86_64-unknown-linux-gnu \
  --target-dir "$target" -p dnsd --example udp_floor
FLOOR=$target/x86_64-unknown-linux-gnu/release/examples/udp_floor

work=$(mktemp -d /tmp/dnsd-bench.XXXXXX)
tag=$$
ns_up=r7b-up-$tag
ns_fw=r7b-fw-$tag
ns_cli=r7b-cli-$tag
cleanup() {
  disown -a 2>/dev/null || true
  for ns in $ns_cli $ns_fw $ns_up; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

for ns in $ns_up $ns_fw $ns_cli; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add fwup netns $ns_fw type veth peer name upfw netns $ns_up
ip link add fwcli netns $ns_fw type veth peer name clifw netns $ns_cli
ip -n $ns_up addr add 10.9.0.53/24 dev upfw
ip -n $ns_fw addr add 10.9.0.1/24 dev fwup
for a in 1 2 3 4 5; do ip -n $ns_fw addr add 10.9.1.$a/24 dev fwcli; done
ip -n $ns_cli addr add 10.9.1.100/24 dev clifw
for l in "$ns_up upfw" "$ns_fw fwup" "$ns_fw fwcli" "$ns_cli clifw"; do
  set -- $l
  ip -n "$1" link set "$2" up
done

wait_port() { # ns addr
  for _ in $(seq 100); do
    ip netns exec "$1" ss -lun | grep -q "$2:53 " && return 0
    sleep 0.05
  done
  echo "nothing listens on $2:53 in $1" >&2
  exit 1
}

# The upstream.
ip netns exec $ns_up dnsmasq -k --no-resolv --no-hosts --listen-address=10.9.0.53 --bind-interfaces \
  --address=/zone.example/203.0.113.7 --local-ttl=3600 --cache-size=0 --dns-forward-max=4096 \
  --log-facility=/dev/null &
wait_port $ns_up 10.9.0.53

# The forwarders.
mkdir -p "$work/perm/dnsd" "$work/run"
echo '{"upstreams": ["10.9.0.53"], "cache_entries": 10000}' >"$work/perm/dnsd/config.json"
ip netns exec $ns_fw "$DNSD" --perm "$work/perm" --run "$work/run" --lan fwcli \
  --listen 10.9.1.1:53 --http-port 0 2>"$work/dnsd.log" &
pid_dnsd=$!
ip netns exec $ns_fw dnsmasq -k --no-resolv --no-hosts --server=10.9.0.53 --listen-address=10.9.1.2 \
  --bind-interfaces --except-interface=lo --cache-size=10000 --dns-forward-max=1024 --log-facility=/dev/null &
pid_dnsmasq=$!
cat >"$work/unbound.conf" <<EOF
server:
  interface: 10.9.1.3
  port: 53
  access-control: 10.9.1.0/24 allow
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  msg-cache-size: 4m
  rrset-cache-size: 8m
  num-queries-per-thread: 1024
  outgoing-range: 1024
  module-config: "iterator"
  do-not-query-localhost: no
  qname-minimisation: no
forward-zone:
  name: "."
  forward-addr: 10.9.0.53
EOF
ip netns exec $ns_fw unbound -c "$work/unbound.conf" &
pid_unbound=$!
ip netns exec $ns_fw "$FLOOR" 10.9.1.4:53 &
pid_floor=$!
period_us=$(sed -n 's/^pub const PERIOD: Duration = Duration::from_micros(\([0-9]*\));/\1/p' svc/dnsd/src/moderation.rs)
[ -n "$period_us" ] || { echo "no PERIOD in svc/dnsd/src/moderation.rs" >&2; exit 1; }
ip netns exec $ns_fw "$FLOOR" 10.9.1.5:53 "$period_us" &
pid_floor_timed=$!
for a in 1 2 3 4 5; do wait_port $ns_fw 10.9.1.$a; done

# Query files.
for i in $(seq 0 99); do echo "h$i.zone.example A"; done >"$work/hit.txt"
miss_lines=$(( (RATE > 40000 ? RATE : 40000) * DURATION * 12 / 10 ))
make_miss() { awk -v p="$1" -v n="$miss_lines" 'BEGIN { for (i = 0; i < n; i++) printf "%s%d.zone.example A\n", p, i }' >"$work/$1.txt"; }

ms_per_1000() { awk -v ns="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", ns / 1e6 / (n / 1000); else print 0 }'; }

cpu_ns() { # pid: nanoseconds on CPU, all threads
  local total=0 t
  for t in /proc/"$1"/task/*/schedstat; do
    total=$((total + $(cut -d' ' -f1 "$t")))
  done
  echo $total
}

perf() { # server datafile extra-args… → "qps completed avg_latency_s"
  local server=$1 data=$2
  shift 2
  ip netns exec $ns_cli dnsperf -s "$server" -d "$data" -l "$DURATION" "$@" 2>/dev/null |
    awk '/Queries completed:/ {c=$3} /Queries per second:/ {q=$4} /Average Latency/ {l=$4} END {print q, c, l}'
}

# Like perf, with every answer's latency: → "qps completed avg_s p50_s p99_s"
perf_latencies() {
  local server=$1 data=$2
  shift 2
  ip netns exec $ns_cli dnsperf -s "$server" -d "$data" -l "$DURATION" -v "$@" 2>/dev/null >"$work/verbose.txt"
  local summary
  summary=$(awk '/Queries completed:/ {c=$3} /Queries per second:/ {q=$4} /Average Latency/ {l=$4} END {print q, c, l}' "$work/verbose.txt")
  awk '$1 == ">" {print $NF}' "$work/verbose.txt" | sort -g | awk -v s="$summary" '
    {v[NR] = $1} END {
      if (NR == 0) { print s, 0, 0; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
      print s, p50, p99 }'
  rm -f "$work/verbose.txt"
}

# One value per line in $work/res/<forwarder>.<metric>; the median is reported.
mkdir -p "$work/res"
put() { echo "$3" >>"$work/res/$1.$2"; }
round() { # name addr pid round
  local name=$1 addr=$2 pid=$3 r=$4 qps n lat before after
  ip netns exec $ns_cli dnsperf -s "$addr" -d "$work/hit.txt" -n 3 >/dev/null 2>&1
  read -r qps n lat < <(perf "$addr" "$work/hit.txt" -c 10 -q 200)
  put "$name" hit_qps "$qps"; put "$name" hit_lat_sat "$lat"
  before=$(cpu_ns "$pid")
  read -r qps n lat p50 p99 < <(perf_latencies "$addr" "$work/hit.txt" -Q "$RATE")
  after=$(cpu_ns "$pid")
  put "$name" hit_lat "$lat"; put "$name" hit_cpu "$(ms_per_1000 $((after - before)) "$n")"
  put "$name" hit_p50 "$p50"; put "$name" hit_p99 "$p99"
  make_miss "${name}s$r"
  read -r qps n lat < <(perf "$addr" "$work/${name}s$r.txt" -c 10 -q 200)
  put "$name" miss_qps "$qps"; put "$name" miss_lat_sat "$lat"
  make_miss "${name}r$r"
  before=$(cpu_ns "$pid")
  read -r qps n lat p50 p99 < <(perf_latencies "$addr" "$work/${name}r$r.txt" -Q "$RATE")
  after=$(cpu_ns "$pid")
  put "$name" miss_lat "$lat"; put "$name" miss_cpu "$(ms_per_1000 $((after - before)) "$n")"
  put "$name" miss_p50 "$p50"; put "$name" miss_p99 "$p99"
  rm -f "$work/${name}s$r.txt" "$work/${name}r$r.txt"
}

round_floor() { # the cache-hit measurements only: the floor has no cache to miss
  local r=$1 qps n lat before after
  read -r qps n lat < <(perf 10.9.1.4 "$work/hit.txt" -c 10 -q 200)
  put floor hit_qps "$qps"; put floor hit_lat_sat "$lat"
  before=$(cpu_ns "$pid_floor")
  read -r qps n lat < <(perf 10.9.1.4 "$work/hit.txt" -Q "$RATE")
  after=$(cpu_ns "$pid_floor")
  put floor hit_lat "$lat"; put floor hit_cpu "$(ms_per_1000 $((after - before)) "$n")"
  before=$(cpu_ns "$pid_floor_timed")
  read -r qps n lat < <(perf 10.9.1.5 "$work/hit.txt" -Q "$RATE")
  after=$(cpu_ns "$pid_floor_timed")
  put floor_timed hit_lat "$lat"; put floor_timed hit_cpu "$(ms_per_1000 $((after - before)) "$n")"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
order=(dnsd dnsmasq unbound floor)
for r in $(seq 1 "$ROUNDS"); do
  for name in "${order[@]}"; do
    case $name in
      dnsd) round dnsd 10.9.1.1 $pid_dnsd "$r" ;;
      dnsmasq) round dnsmasq 10.9.1.2 $pid_dnsmasq "$r" ;;
      unbound) round unbound 10.9.1.3 $pid_unbound "$r" ;;
      floor) round_floor "$r" ;;
    esac
  done
  order=("${order[@]:1}" "${order[0]}")
done
for p in "dnsd $pid_dnsd" "dnsmasq $pid_dnsmasq" "unbound $pid_unbound"; do
  set -- $p
  awk '/VmHWM/ {printf "%.1f\n", $2 / 1024}' /proc/"$2"/status >"$work/res/$1.rss"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -g "$work/res/$1.$2" | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
row() { # label key scale format
  local label=$1 key=$2 scale=$3 fmt=$4 d m u
  d=$(awk -v v="$(median dnsd "$key")" -v s="$scale" -v f="$fmt" 'BEGIN { printf f, v * s }')
  m=$(awk -v v="$(median dnsmasq "$key")" -v s="$scale" -v f="$fmt" 'BEGIN { printf f, v * s }')
  u=$(awk -v v="$(median unbound "$key")" -v s="$scale" -v f="$fmt" 'BEGIN { printf f, v * s }')
  echo "| $label | $d | $m | $u | $(ratio "$d" "$m") | $(ratio "$d" "$u") |"
}

floor_row() { # label key scale format
  local out="| $1 |" n
  for n in floor floor_timed dnsd dnsmasq unbound; do
    if [ -s "$work/res/$n.$2" ]; then
      out="$out $(awk -v v="$(median $n "$2")" -v s="$3" -v f="$4" 'BEGIN { printf f, v * s }') |"
    else
      out="$out – |"
    fi
  done
  echo "$out"
}
above() { # forwarder floor
  awk -v a="$(median "$1" hit_cpu)" -v f="$(median "$2" hit_cpu)" 'BEGIN { printf "%.2f", a - f }'
}

cat <<EOF
### Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, load $load_before → $load_after

dnsd: \`$DNSD\` ($(stat -c %s "$DNSD") bytes).

dnsperf ${DURATION} s per measurement, median of ${ROUNDS} interleaved rounds; fixed rate ${RATE} q/s.
Ratios are dnsd / peer (lower is better for latency, CPU and RSS; higher for queries/s).

| | dnsd | dnsmasq | unbound | dnsd/dnsmasq | dnsd/unbound |
|---|---|---|---|---|---|
$(row "cache hit: queries/s at saturation" hit_qps 1 %.0f)
$(row "cache hit: avg latency at saturation (ms)" hit_lat_sat 1000 %.3f)
$(row "cache hit: avg latency at ${RATE} q/s (ms)" hit_lat 1000 %.3f)
$(row "cache hit: p50 latency at ${RATE} q/s (ms)" hit_p50 1000 %.3f)
$(row "cache hit: p99 latency at ${RATE} q/s (ms)" hit_p99 1000 %.3f)
$(row "cache hit: CPU ms per 1,000 queries at ${RATE} q/s" hit_cpu 1 %.2f)
$(row "cache miss: queries/s at saturation" miss_qps 1 %.0f)
$(row "cache miss: avg latency at saturation (ms)" miss_lat_sat 1000 %.3f)
$(row "cache miss: avg latency at ${RATE} q/s (ms)" miss_lat 1000 %.3f)
$(row "cache miss: p50 latency at ${RATE} q/s (ms)" miss_p50 1000 %.3f)
$(row "cache miss: p99 latency at ${RATE} q/s (ms)" miss_p99 1000 %.3f)
$(row "cache miss: CPU ms per 1,000 queries at ${RATE} q/s" miss_cpu 1 %.2f)
$(row "peak RSS (MB)" rss 1 %.1f)

Cache hit, per-round ratio dnsd/dnsmasq of CPU per query (median, and the range over the rounds):
$(paste "$work/res/dnsd.hit_cpu" "$work/res/dnsmasq.hit_cpu" | awk '$2 > 0 {print $1 / $2}' | sort -g |
  awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f (%.2f to %.2f over %d rounds)", m, v[1], v[NR], NR}')

The floor (a receive/send loop answering with a fixed record, no DNS work) for cache hits, woken
by each datagram and read every ${period_us} µs (dnsd's moderation period):

| | floor | floor, timed | dnsd | dnsmasq | unbound |
|---|---|---|---|---|---|
$(floor_row "queries/s at saturation" hit_qps 1 %.0f)
$(floor_row "avg latency at ${RATE} q/s (ms)" hit_lat 1000 %.3f)
$(floor_row "CPU ms per 1,000 queries at ${RATE} q/s" hit_cpu 1 %.2f)
| CPU ms per 1,000 queries above the floor (dnsd: the timed one) | – | – | $(above dnsd floor_timed) | $(above dnsmasq floor) | $(above unbound floor) |
EOF
