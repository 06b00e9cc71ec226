#!/usr/bin/env bash
# bench/throttled.sh: `dojob get` against aria2c and curl over an emulated
# far server that caps each connection (bench/fileserver -delay -conn-rate),
# on loopback only, printed as a markdown table.
#
# Workloads (each round runs every contender once, in an order that rotates
# from round to round; the bytes of every download are checked):
#
#   big    one file of $BENCH_SIZE: `dojob get --connections N` against
#          `aria2c -x N -s N -k 1M` and `curl` (one connection)
#   small  $BENCH_SMALL_COUNT files of $BENCH_SMALL_SIZE: `dojob get
#          --parallel 8` against `curl -Z --parallel-max 8` and `aria2c -Z -j 8`
#
# The table gives the median wall time of each contender and the median of
# the per-round ratios dojob ÷ contender (< 1: dojob is faster).
#
# Environment (defaults in brackets):
#   BENCH_SIZE         size of the big file [100MiB]
#   BENCH_CONNECTIONS  connections for dojob and aria2c [8]
#   BENCH_SMALL_COUNT  small files [100]; 0 skips the workload
#   BENCH_SMALL_SIZE   size of each [256KiB]
#   BENCH_DELAY        one-way delay [20ms]
#   BENCH_CONN_RATE    bytes/s per connection [5000000]
#   BENCH_ROUNDS       rounds [5]
#   BENCH_TMPFS_DIR    where files go [/dev/shm]
#
# Example: BENCH_ROUNDS=3 bench/throttled.sh
set -euo pipefail
cd "$(dirname "$0")/.."

size=${BENCH_SIZE:-100MiB}
conns=${BENCH_CONNECTIONS:-8}
small_count=${BENCH_SMALL_COUNT:-100}
small_size=${BENCH_SMALL_SIZE:-256KiB}
delay=${BENCH_DELAY:-20ms}
rate=${BENCH_CONN_RATE:-5000000}
rounds=${BENCH_ROUNDS:-5}
tmpfs=${BENCH_TMPFS_DIR:-/dev/shm}

log() { printf '%s\n' "$*" >&2; }
die() { log "throttled.sh: $*"; exit 1; }
bytes_of() {
  case $1 in
    *KiB) echo $(( ${1%KiB} << 10 )) ;;
    *MiB) echo $(( ${1%MiB} << 20 )) ;;
    *GiB) echo $(( ${1%GiB} << 30 )) ;;
    *[!0-9]* | '') die "bad size $1" ;;
    *) echo "$1" ;;
  esac
}
command -v aria2c >/dev/null || die "aria2c is not installed (apt-get install aria2)"
command -v curl >/dev/null || die "curl is not installed"

work=$(mktemp -d "$tmpfs/dojob-throttled.XXXXXX")
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

log "building dojob and bench/fileserver"
go build -o "$work/dojob" ./cmd/dojob
go build -o "$work/fileserver" ./bench/fileserver

mkdir -p "$work/src/small" "$work/out"
head -c "$(bytes_of "$size")" /dev/urandom >"$work/src/big"
big_sum=$(sha256sum <"$work/src/big" | cut -d' ' -f1)
small_urls=()
for ((i = 0; i < small_count; i++)); do
  head -c "$(bytes_of "$small_size")" /dev/urandom >"$work/src/small/f$i"
done
(cd "$work/src/small" && sha256sum f* | sort -k2 >"$work/small.sums") 2>/dev/null || true

"$work/fileserver" -dir "$work/src" -delay "$delay" -conn-rate "$rate" >"$work/url" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
base=$(head -1 "$work/url")
[ -n "$base" ] || die "the file server did not start"
for ((i = 0; i < small_count; i++)); do small_urls+=("$base/small/f$i"); done

# now prints the time in seconds with nanoseconds.
now() { date +%s.%N; }

declare -A times
run() { # run NAME CHECK COMMAND...: times one download, checks its bytes
  local name=$1 check=$2; shift 2
  rm -rf "$work/out" && mkdir -p "$work/out"
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; die "$name failed"; }
  t1=$(now)
  $check || die "$name: wrong bytes"
  times[$name]+="$(echo "$t1 - $t0" | bc) "
}
check_big() { [ "$(sha256sum <"$work/out/big" | cut -d' ' -f1)" = "$big_sum" ]; }
check_small() { (cd "$work/out" && sha256sum f* | sort -k2 | cmp -s - "$work/small.sums"); }

big_contenders=(dojob aria2c curl)
small_contenders=(dojob-small curl-small aria2c-small)
contend() {
  case $1 in
    dojob) run dojob check_big "$work/dojob" get --state-dir "$work/state" --connections "$conns" -o "$work/out/big" "$base/big" ;;
    aria2c) run aria2c check_big aria2c -q --allow-overwrite=true --auto-file-renaming=false -x "$conns" -s "$conns" -k 1M -d "$work/out" -o big "$base/big" ;;
    curl) run curl check_big curl -sSf -o "$work/out/big" "$base/big" ;;
    dojob-small) run dojob-small check_small "$work/dojob" get --state-dir "$work/state" --parallel 8 -d "$work/out" "${small_urls[@]}" ;;
    curl-small)
      local args=()
      for u in "${small_urls[@]}"; do args+=(-o "$work/out/${u##*/}" "$u"); done
      run curl-small check_small curl -sSf -Z --parallel-max 8 "${args[@]}" ;;
    aria2c-small) run aria2c-small check_small aria2c -q -Z -j 8 -d "$work/out" "${small_urls[@]}" ;;
  esac
}

for ((r = 0; r < rounds; r++)); do
  log "round $((r + 1)) of $rounds"
  list=("${big_contenders[@]}")
  ((small_count > 0)) && list+=("${small_contenders[@]}")
  n=${#list[@]}
  for ((k = 0; k < n; k++)); do contend "${list[$(((k + r) % n))]}"; done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.2f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio_median() { # per-round ratios of $1 over $2
  paste <(echo "${times[$1]}" | tr ' ' '\n' | grep -v '^$') <(echo "${times[$2]}" | tr ' ' '\n' | grep -v '^$') |
    awk '{print $1/$2}' | tr '\n' ' ' | median
}

echo "Link: one-way delay $delay, $rate bytes/s per connection (bench/fileserver); $rounds rounds; $(nproc) CPUs"
echo
echo "| workload | contender | median wall (s) | dojob ÷ contender (median of rounds) |"
echo "|---|---|---|---|"
echo "| $size, dojob --connections $conns | dojob | $(echo "${times[dojob]}" | median) | |"
echo "| | aria2c -x$conns -s$conns -k1M | $(echo "${times[aria2c]}" | median) | $(ratio_median dojob aria2c) |"
echo "| | curl | $(echo "${times[curl]}" | median) | $(ratio_median dojob curl) |"
if ((small_count > 0)); then
  echo "| $small_count × $small_size, dojob --parallel 8 | dojob | $(echo "${times[dojob-small]}" | median) | |"
  echo "| | curl -Z --parallel-max 8 | $(echo "${times[curl-small]}" | median) | $(ratio_median dojob-small curl-small) |"
  echo "| | aria2c -j8 | $(echo "${times[aria2c-small]}" | median) | $(ratio_median dojob-small aria2c-small) |"
fi
