#!/usr/bin/env bash
# Output format benchmark: the wall time of `linuxkit build --format F` of
# examples/linuxkit.yml for every bootable format, next to kernel+initrd's
# (the ratio column; the goal is at most 1.5), with the CPU time (user +
# system, all threads) and its ratio, and the file sizes.
#
# Every build is warm: the images are cached and so are the initrd's
# compressed parts (the first kernel+initrd build makes them), which is
# what a rebuild after an edit costs. The median of RUNS builds is shown.
#
# Needs examples/linuxkit.yml's package set and pkg/bootloader in the cache
# (LINUXKIT_CACHE, default ~/.linuxkit/cache):
#   linuxkit pkg build pkg/*
#
# usage: bench/formats.sh [RUNS]    (default 5)
# The binary: LINUXKIT_BIN, or a release build (in CARGO_TARGET_DIR if set).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
cache=${LINUXKIT_CACHE:-$HOME/.linuxkit/cache}
# BENCH_YML: another configuration (for example one whose images are pinned
# while pkg/ is being edited).
yml=${BENCH_YML:-$root/examples/linuxkit.yml}
name=$(basename "$yml" .yml)
formats=(iso-bios iso-efi iso-efi-initrd raw-bios raw-efi qcow2-bios qcow2-efi vhd dynamic-vhd vmdk gcp aws azure)

# The release binary: LINUXKIT_BIN when given (no build), otherwise built
# here, in CARGO_TARGET_DIR when set.
if [ -n "${LINUXKIT_BIN:-}" ]; then
  lk=$LINUXKIT_BIN
else
  cargo build --release --locked -q -p linuxkit --manifest-path "$root/Cargo.toml"
  lk=${CARGO_TARGET_DIR:-$root/target}/release/linuxkit
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

if ! "$lk" -q --cache "$cache" build --dir "$work" --format kernel+initrd,iso-bios "$yml" 2>"$work/err"; then
  cat "$work/err" >&2
  echo "formats.sh: build the package set into $cache first: linuxkit pkg build pkg/*" >&2
  exit 1
fi

# The builds go in rounds, every format once a round, so that a burst of
# load from elsewhere on the machine slows every format alike instead of
# the few that happen to run during it. Each build's wall and CPU
# (user + system) seconds go to $work/times/FORMAT, its sizes to
# $work/sizes/FORMAT.
mkdir -p "$work/times" "$work/sizes"
build() {
  rm -f "$work/$name"*
  /usr/bin/time -f "%e %U %S" -o "$work/t" "$lk" -q --cache "$cache" build --dir "$work" --format "$1" "$yml"
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/t" >>"$work/times/$1"
  size_of >"$work/sizes/$1"
}

size_of() { # the size of the files the last build wrote, in MB: apparent/allocated
  local total=0 alloc=0 f
  for f in "$work/$name"*; do
    total=$((total + $(stat -c %s "$f")))
    alloc=$((alloc + $(stat -c '%b * %B' "$f")))
  done
  echo "$((total / 1000000))/$((alloc / 1000000))"
}

# median FORMAT COLUMN: the median of a column (1: wall, 2: CPU)
median() {
  awk -v c="$2" '{ print $c }' "$work/times/$1" | sort -n |
    awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

for _ in $(seq "$runs"); do
  for f in kernel+initrd "${formats[@]}"; do build "$f"; done
done

base=$(median kernel+initrd 1)
cbase=$(median kernel+initrd 2)
printf 'linuxkit build --format F %s.yml (%s cores, median of %s warm builds)\n' "$name" "$(nproc)" "$runs"
printf '%-16s %7s %7s %7s %7s  %s\n' format time ratio cpu ratio 'size MB (apparent/allocated)'
for f in kernel+initrd "${formats[@]}"; do
  t=$(median "$f" 1)
  c=$(median "$f" 2)
  printf '%-16s %6.2fs %6.2fx %6.2fs %6.2fx  %s\n' "$f" "$t" "$(echo "$t / $base" | bc -l)" \
    "$c" "$(echo "$c / $cbase" | bc -l)" "$(cat "$work/sizes/$f")"
done
