#!/usr/bin/env bash
# Regression guard for build cost, independent of wall time: the work of a
# `linuxkit build --format kernel+initrd` per MB of root filesystem, for
#   - first: images cached, no cached initrd parts (what a cold build adds to
#     the pull: reading, flattening and compressing every image);
#   - warm: nothing changed since the last build;
# compared with the checked-in baseline (bench/guard.baseline), one line each:
#   first   12.34 M instructions/MB  baseline 12.00  +2.8%  ok (tolerance 5%)
#   first   14.20 M instructions/MB  baseline 12.00  regressed by 18.3% (tolerance 5%)
# and a non-zero exit on any regression. Work is counted two ways:
#   - default: instructions, counted by valgrind's callgrind on a small generated
#     input (bench/guard-images.py, ~4 MB of root filesystem, imported: no
#     registry, no network); the count is the same from run to run whatever else
#     the machine does, so the tolerance can be tight. scripts/test runs this.
#   - --bench: bench.yml (../shared/bench, the loopback registry bench/build.sh
#     sets up), release binary: what a developer runs before stopping. The first
#     build in user+system CPU time, the median of RUNS (3) builds (under
#     callgrind it would take minutes); CPU time moves with load (shared caches,
#     frequency), hence the wider tolerance. The warm build (0.1 s of CPU, below
#     what time(1) resolves) in instructions, as above.
# Faster is never an error: after an improvement, record the new baseline
# (--record) and commit it with the change, so the next regression is measured
# from there.
#
# usage: bench/guard.sh [--bench] [--record]
#   env: PROFILE=debug|release (instructions; default debug, the binary
#        scripts/test has built), RUNS=3, PORT=5000 (--bench), LINUXKIT_BIN
#        (a binary to measure instead of building one; its profile is PROFILE's)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=instructions record=0
for a in "$@"; do
  case $a in
    --bench) mode=cpu ;;
    --record) record=1 ;;
    *) echo "usage: bench/guard.sh [--bench] [--record]" >&2; exit 2 ;;
  esac
done
baseline=$root/bench/guard.baseline
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

command -v valgrind >/dev/null || { echo "guard: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ "$mode" = cpu ]; then
  profile=release input=bench.yml
  shared=${SHARED:-$root/../shared}
  port=${PORT:-5000}
  export BENCH_DIR=${BENCH_DIR:-$HOME/.cache/lk-bench}
  sh "$shared/bench/bench-images.sh" "$port"
  sed "s/127.0.0.1:5000/127.0.0.1:$port/" "$shared/bench/bench.yml" > "$work/in.yml"
else
  profile=${PROFILE:-debug} input=small
fi
if [ -n "${LINUXKIT_BIN:-}" ]; then
  lk=$LINUXKIT_BIN
else
  flag=(); [ "$profile" = release ] && flag=(--release)
  cargo build "${flag[@]}" --locked -q -p linuxkit --manifest-path "$root/Cargo.toml"
  lk=$root/target/$profile/linuxkit
fi
cache=$work/cache out=$work/out
mkdir -p "$out"
if [ "$mode" = instructions ]; then
  python3 "$root/bench/guard-images.py" "$work/images.tar"
  "$lk" -q --cache "$cache" cache import "$work/images.tar" >/dev/null
  cat > "$work/in.yml" <<'YML'
kernel:
  image: 127.0.0.1:9/guard/kernel:1
  cmdline: "console=ttyS0"
init:
  - 127.0.0.1:9/guard/init:1
  - 127.0.0.1:9/guard/runc:1
  - 127.0.0.1:9/guard/big:1
onboot:
  - name: tool
    image: 127.0.0.1:9/guard/svc:1
services:
  - name: svc
    image: 127.0.0.1:9/guard/svc:1
YML
fi
build() { "$lk" -q --cache "$cache" build --format kernel+initrd --dir "$out" --name g "$work/in.yml"; }
# Pull (--bench) and make the initrd once, so that every measured build is a
# first (segments removed) or warm one.
build
mb=$("$lk" -q --cache "$cache" build --o - "$work/in.yml" | wc -c | awk '{printf "%.3f", $1 / 1e6}')

measure() { # phase method -> prints the work per MB
  if [ "$2" = instructions ]; then
    [ "$1" = first ] && rm -rf "$cache/.segments"
    # On one CPU: the initrd's parts are then read in one order, so the
    # count does not depend on how threads interleave.
    taskset -c "$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')" \
      valgrind --tool=callgrind --callgrind-out-file="$work/cg" -q \
      "$lk" -q --cache "$cache" build --format kernel+initrd --dir "$out" --name g "$work/in.yml"
    awk -v mb="$mb" '/^(summary|totals):/ {print $2 / 1e6 / mb; exit}' "$work/cg"
  else
    for _ in $(seq "${RUNS:-3}"); do
      [ "$1" = first ] && rm -rf "$cache/.segments"
      /usr/bin/time -f "%U %S" -o "$work/t" "$lk" -q --cache "$cache" build --format kernel+initrd \
        --dir "$out" --name g "$work/in.yml"
      awk -v mb="$mb" '{print ($1 + $2) * 1000 / mb}' "$work/t"
    done | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
  fi
}

echo "linuxkit build --format kernel+initrd of $input ($mb MB of root filesystem), $profile build"
status=0
for phase in first warm; do
  method=instructions tolerance=5 unit="M instructions/MB"
  [ "$mode" = cpu ] && [ "$phase" = first ] && method=cpu tolerance=15 unit="ms CPU/MB"
  value=$(measure "$phase" "$method")
  key="$method $profile $input $phase"
  if [ "$record" = 1 ]; then
    { grep -v "^$key " "$baseline" 2>/dev/null || true; echo "$key $value"; } | sort > "$work/b"
    mv "$work/b" "$baseline"
    printf '%-6s %10.3f %s  recorded\n' "$phase" "$value" "$unit"
    continue
  fi
  base=$(awk -v k="$key" 'index($0, k " ") == 1 {print $NF}' "$baseline" 2>/dev/null || true)
  if [ -z "$base" ]; then
    printf '%-6s %10.3f %s  no baseline for "%s" (bench/guard.sh %s--record)\n' "$phase" "$value" "$unit" \
      "$key" "$([ "$mode" = cpu ] && echo '--bench ')"
    status=1
    continue
  fi
  verdict=$(awk -v v="$value" -v b="$base" -v t="$tolerance" 'BEGIN {
    d = (v - b) * 100 / b
    if (d > t) printf "regressed by %.1f%% (tolerance %d%%)", d, t
    else printf "%+.1f%%  ok (tolerance %d%%)", d, t
  }')
  printf '%-6s %10.3f %s  baseline %.3f  %s\n' "$phase" "$value" "$unit" "$base" "$verdict"
  case $verdict in regressed*) status=1 ;; esac
done
exit $status
