#!/usr/bin/env bash
# bench/compare.sh: whole-process comparison of `dojob get` with curl, over
# loopback only, printed as a markdown table.
#
# It builds the dojob command and bench/fileserver (a Go file server with
# Range support, run as a separate process on 127.0.0.1), creates the source
# files on tmpfs, and downloads them to two destinations:
#
#   tmpfs  a directory under $BENCH_TMPFS_DIR (default /dev/shm)
#   disk   a directory under $BENCH_DISK_DIR (default: bench/ in the repository)
#
# (the filesystem of each is printed with df -T). Workloads, per destination:
#
#   big file   each size of $BENCH_SIZES: `dojob get -o FILE URL` against
#              `curl -o FILE URL` and `curl -o FILE URL && sync FILE DIR`
#   small      $BENCH_SMALL_COUNT files of $BENCH_SMALL_SIZE in one
#              `dojob get -d DIR URL...` against `curl -Z --parallel-max
#              $BENCH_PARALLEL` and sequential curl (one process, all URLs),
#              and against `curl -Z` followed by a sync of every file and DIR
#
# A big file is also fetched by dojob-sha256: `dojob get --checksum
# sha256:…`, the file checked as it arrives; its speed ratio is its wall
# time ÷ plain dojob's (the cost of the checksum, read as 1/ratio).
#
# Every workload also runs go-floor (bench/gofloor): the same downloads by
# a bare Go program on net/http with dojob's copy buffer and --parallel, but
# nothing else — no temporary file, no checks, no rename, no fsync, no
# record. It is the floor of any Go download manager on this machine, so
# the gap between dojob and curl splits into what Go's HTTP client costs
# (go-floor against curl) and what dojob's own work costs (dojob against
# go-floor).
#
# dojob fsyncs every file before renaming it into place; plain curl leaves
# the data in the page cache, so the "+ sync" rows are the like-for-like
# (durable) comparison. Before each timed run the destination filesystem is
# synced (untimed), so no run pays for the previous one's write-back.
#
# Rounds are interleaved: each round runs every contender of every workload
# once, in an order that rotates from round to round. The table gives the
# median wall time and CPU time (user + system, of the timed processes and
# their children; the server is not one of them) and the medians of the
# per-round ratios: dojob's speed ÷ the contender's (> 1: dojob is faster)
# and dojob's CPU ÷ the contender's. Without curl only dojob's and
# go-floor's rows are printed.
#
# Environment (defaults in brackets):
#   BENCH_SIZES        sizes of the big files, KiB/MiB/GiB or bytes ["1GiB 100MiB"]
#   BENCH_SIZE         a single big-file size; used when BENCH_SIZES is unset
#   BENCH_SMALL_COUNT  number of small files [1000]; 0 skips the workload
#   BENCH_SMALL_SIZE   size of each small file [64KiB]
#   BENCH_PARALLEL     curl --parallel-max [8]
#   BENCH_ROUNDS       rounds [5]
#   BENCH_TMPFS_DIR    parent of the tmpfs directory [/dev/shm]
#   BENCH_DISK_DIR     parent of the real-disk directory [bench/ in the repo]
#
# Everything it creates (binaries, files, the server) is removed or stopped
# on exit, also on Ctrl-C.
#
# Example, a quick check:  BENCH_SIZES=64MiB BENCH_ROUNDS=2 BENCH_SMALL_COUNT=100 bench/compare.sh
# The measurement:         bench/compare.sh > results.md
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

sizes=${BENCH_SIZES:-${BENCH_SIZE:-1GiB 100MiB}}
small_count=${BENCH_SMALL_COUNT:-1000}
small_size=${BENCH_SMALL_SIZE:-64KiB}
parallel=${BENCH_PARALLEL:-8}
rounds=${BENCH_ROUNDS:-5}
tmpfs_parent=${BENCH_TMPFS_DIR:-/dev/shm}
disk_parent=${BENCH_DISK_DIR:-$repo/bench}

log() { printf '%s\n' "$*" >&2; }
die() { log "compare.sh: $*"; exit 1; }

# bytes_of prints the number of bytes of a size like 64KiB, 100MiB, 1GiB or 4096.
bytes_of() {
  local s=$1
  case $s in
    *KiB) echo $(( ${s%KiB} << 10 )) ;;
    *MiB) echo $(( ${s%MiB} << 20 )) ;;
    *GiB) echo $(( ${s%GiB} << 30 )) ;;
    *[!0-9]* | '') die "bad size $s (want e.g. 64KiB, 100MiB, 1GiB or a number of bytes)" ;;
    *) echo "$s" ;;
  esac
}

[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS=$rounds is not a positive number"
[[ $small_count =~ ^[0-9]+$ ]] || die "BENCH_SMALL_COUNT=$small_count is not a number"
[[ $parallel =~ ^[1-9][0-9]*$ ]] || die "BENCH_PARALLEL=$parallel is not a positive number"
small_bytes=$(bytes_of "$small_size")
big_bytes=()
for s in $sizes; do big_bytes+=("$(bytes_of "$s")"); done
command -v go >/dev/null || die "go is not installed"
have_curl=false
if command -v curl >/dev/null; then have_curl=true; else log "curl is not installed: only dojob is measured"; fi
[ -d "$tmpfs_parent" ] || die "$tmpfs_parent does not exist (set BENCH_TMPFS_DIR)"
[ -d "$disk_parent" ] || die "$disk_parent does not exist (set BENCH_DISK_DIR)"

# Everything lives in these two directories and the server is the one
# background process; cleanup runs on every exit.
tmpfs_root= disk_root= server_pid=
cleanup() {
  local status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ -z "$tmpfs_root" ] || rm -rf "$tmpfs_root"
  [ -z "$disk_root" ] || rm -rf "$disk_root"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
tmpfs_root=$(mktemp -d "$tmpfs_parent/dojob-compare.XXXXXX")
disk_root=$(mktemp -d "$disk_parent/.compare.XXXXXX")

fstype() { df -T -P "$1" | awk 'NR == 2 { print $2 }'; }
[ "$(fstype "$tmpfs_root")" = tmpfs ] || log "warning: $tmpfs_root is on $(fstype "$tmpfs_root"), not tmpfs"
case $(fstype "$disk_root") in tmpfs | ramfs) log "warning: $disk_root is on $(fstype "$disk_root"), not a disk" ;; esac

# Room: the sources and one destination copy of the largest workload, on
# tmpfs; one copy on the disk.
need=$(( small_count * small_bytes ))
largest=$need
for b in "${big_bytes[@]}"; do need=$(( need + b )); (( b > largest )) && largest=$b; done
avail() { df -P -B1 "$1" | awk 'NR == 2 { print $4 }'; }
(( $(avail "$tmpfs_root") > need + largest + (64 << 20) )) || die "not enough room in $tmpfs_root for $(( (need + largest) >> 20 )) MiB"
(( $(avail "$disk_root") > largest + (64 << 20) )) || die "not enough room in $disk_root for $(( largest >> 20 )) MiB"

log "building dojob and bench/fileserver"
bin=$tmpfs_root/bin
go build -o "$bin/dojob" ./cmd/dojob
go build -o "$bin/fileserver" ./bench/fileserver
go build -o "$bin/gofloor" ./bench/gofloor

log "creating the source files"
src=$tmpfs_root/src
mkdir -p "$src/small"
declare -A big_sum # bytes → the file's SHA-256, for the dojob-sha256 contender
for b in "${big_bytes[@]}"; do
  head -c "$b" /dev/urandom > "$src/big-$b"
  big_sum[$b]=$(sha256sum "$src/big-$b" | cut -d' ' -f1)
done
if (( small_count > 0 )); then
  # One random stream cut into small_count files f0000, f0001, ...
  head -c $(( small_count * small_bytes )) /dev/urandom | split -b "$small_bytes" -a 6 -d - "$src/small/f"
fi

"$bin/fileserver" -dir "$src" > "$tmpfs_root/server.url" &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$tmpfs_root/server.url" ] && break
  kill -0 "$server_pid" 2>/dev/null || die "the file server did not start"
  sleep 0.05
done
base=$(head -n 1 "$tmpfs_root/server.url")
[[ $base == http://127.0.0.1:* ]] || die "the file server printed no URL"
small_urls=()
for f in "$src"/small/f*; do [ -e "$f" ] && small_urls+=("$base/small/${f##*/}"); done

# The contenders. Each takes the destination directory ($1) and the
# workload ($2: big-BYTES or small) and leaves its files in $1/out.
dojob_get() { # dojob's own state directory lives beside the destination, as it would
  if [ "$2" = small ]; then
    "$bin/dojob" --quiet --state-dir "$1/state" get --no-progress-timeout 1m -d "$1/out" "${small_urls[@]}"
  else
    "$bin/dojob" --quiet --state-dir "$1/state" get --no-progress-timeout 1m -o "$1/out/$2" "$base/$2"
  fi
}
curl_get() {
  if [ "$2" = small ]; then
    (cd "$1/out" && curl -sS --fail --remote-name-all "${small_urls[@]}")
  else
    curl -sS --fail -o "$1/out/$2" "$base/$2"
  fi
}
dojob_get_sha256() { # the same big file, checked against its SHA-256 as it arrives
  "$bin/dojob" --quiet --state-dir "$1/state" get --no-progress-timeout 1m \
    --checksum "sha256:${big_sum[${2#big-}]}" -o "$1/out/$2" "$base/$2"
}
gofloor_get() { # the floor of a Go downloader on net/http (bench/gofloor)
  if [ "$2" = small ]; then
    "$bin/gofloor" -parallel "$parallel" -d "$1/out" "${small_urls[@]}"
  else
    "$bin/gofloor" -o "$1/out/$2" "$base/$2"
  fi
}
curl_parallel() { (cd "$1/out" && curl -sS --fail -Z --parallel-max "$parallel" --remote-name-all "${small_urls[@]}"); }
curl_get_sync() { curl_get "$@" && sync "$1"/out/* "$1/out"; }
curl_parallel_sync() { curl_parallel "$@" && sync "$1"/out/* "$1/out"; }

# contenders WORKLOAD prints "label function" lines for a workload.
contenders() {
  echo "dojob-get dojob_get"
  [ "$1" = small ] || echo "dojob-sha256 dojob_get_sha256"
  echo "go-floor gofloor_get"
  $have_curl || return 0
  if [ "$1" = small ]; then
    echo "curl-Z curl_parallel"
    echo "curl-sequential curl_get"
    echo "curl-Z+sync curl_parallel_sync"
  else
    echo "curl curl_get"
    echo "curl+sync curl_get_sync"
  fi
}

# check DIR WORKLOAD FULL: the downloaded files are those of the source
# (compared byte for byte when FULL is 1, by size otherwise).
check() {
  local out=$1/out
  if [ "$2" = small ]; then
    diff -rq "$src/small" "$out" >/dev/null || die "$out differs from the source"
  elif [ "$3" = 1 ]; then
    cmp -s "$src/$2" "$out/$2" || die "$out/$2 differs from the source"
    [ "$(ls -A "$out")" = "$2" ] || die "$out holds more than $2"
  else
    [ "$(stat -c %s "$out/$2")" = "${2#big-}" ] || die "$out/$2 has the wrong size"
  fi
}

results=$tmpfs_root/results # lines: fs workload contender round wall cpu
: > "$results"
workloads=()
for b in "${big_bytes[@]}"; do workloads+=("big-$b"); done
(( small_count > 0 )) && workloads+=(small)
declare -A dest=([tmpfs]=$tmpfs_root/dst [disk]=$disk_root/dst)

# timed LABEL FS WORKLOAD ROUND FUNCTION: one run, appended to $results.
timed() {
  local label=$1 fs=$2 w=$3 round=$4 fn=$5 d=${dest[$2]} t
  rm -rf "$d"
  mkdir -p "$d/out"
  sync -f "$d"
  t=$( { TIMEFORMAT='%3R %3U %3S'; time "$fn" "$d" "$w" >/dev/null 2>"$tmpfs_root/stderr"; } 2>&1 ) ||
    { cat "$tmpfs_root/stderr" >&2; die "$label failed on $fs ($w)"; }
  check "$d" "$w" "$([ "$round" = 1 ] && echo 1 || echo 0)"
  read -r wall user sys <<<"$t"
  echo "$fs $w $label $round $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')" >> "$results"
  rm -rf "$d"
}

for round in $(seq "$rounds"); do
  log "round $round of $rounds"
  for fs in tmpfs disk; do
    for w in "${workloads[@]}"; do
      mapfile -t cs < <(contenders "$w")
      n=${#cs[@]}
      for k in $(seq 0 $(( n - 1 ))); do
        read -r label fn <<<"${cs[$(( (round - 1 + k) % n ))]}"
        timed "$label" "$fs" "$w" "$round" "$fn"
      done
    done
  done
done

# median: the median of the numbers on stdin.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# field FS W LABEL COLUMN: that column (5 wall, 6 cpu) of every round, one a line.
field() { awk -v f="$1" -v w="$2" -v l="$3" -v c="$4" '$1 == f && $2 == w && $3 == l { print $4, $c }' "$results" | sort -n | cut -d' ' -f2; }
# ratios FS W LABEL COLUMN: per round, dojob's figure over LABEL's ... as
# speed (LABEL wall ÷ dojob wall) for column 5, as dojob cpu ÷ LABEL cpu for 6.
ratios() {
  paste -d' ' <(field "$1" "$2" dojob-get "$4") <(field "$1" "$2" "$3" "$4") |
    awk -v c="$4" '{ if (c == 5) print ($1 > 0 ? $2 / $1 : "nan"); else print ($2 > 0 ? $1 / $2 : "nan") }'
}
human() { # bytes as MiB or GiB
  if (( $1 >= 1 << 30 && $1 % (1 << 30) == 0 )); then echo "$(( $1 >> 30 )) GiB"
  elif (( $1 >= 1 << 20 && $1 % (1 << 20) == 0 )); then echo "$(( $1 >> 20 )) MiB"
  else echo "$(( $1 >> 10 )) KiB"; fi
}

echo "## dojob get vs curl, whole processes, loopback"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs, $(go version | cut -d' ' -f3)$($have_curl && echo ", $(curl --version | head -n 1 | cut -d' ' -f1-2)")."
echo "$rounds interleaved rounds; medians; ratios are medians of per-round ratios."
echo "Speed ratio: the contender's wall time ÷ dojob's (> 1: dojob is faster). CPU ratio: dojob's ÷ the contender's."
echo
for fs in tmpfs disk; do
  echo "- $fs: ${dest[$fs]%/dst}, $(df -T -P "${dest[$fs]%/dst}" | awk 'NR == 2 { print $2 " (" $1 ", mounted on " $7 ")" }')"
done
echo
echo "| destination | workload | contender | wall s | MB/s | CPU s | speed ratio | CPU ratio |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for fs in tmpfs disk; do
  for w in "${workloads[@]}"; do
    if [ "$w" = small ]; then
      bytes=$(( small_count * small_bytes ))
      desc="$small_count × $(human "$small_bytes")"
    else
      bytes=${w#big-}
      desc="1 × $(human "$bytes")"
    fi
    while read -r label _; do
      wall=$(field "$fs" "$w" "$label" 5 | median | awk '{ printf "%.3f", $1 }')
      cpu=$(field "$fs" "$w" "$label" 6 | median | awk '{ printf "%.3f", $1 }')
      mbs=$(awk -v b="$bytes" -v t="$wall" 'BEGIN { printf "%.0f", (t > 0 ? b / t / 1e6 : 0) }')
      if [ "$label" = dojob-get ]; then
        sr="—" cr="—"
      else
        sr=$(ratios "$fs" "$w" "$label" 5 | median | awk '{ printf "%.2f", $1 }')
        cr=$(ratios "$fs" "$w" "$label" 6 | median | awk '{ printf "%.2f", $1 }')
      fi
      echo "| $fs | $desc | $label | $wall | $mbs | $cpu | $sr | $cr |"
    done < <(contenders "$w")
  done
done
