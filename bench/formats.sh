#!/usr/bin/env bash
# Output format benchmark: the wall time of `linuxkit build --format F` of
# examples/linuxkit.yml for every bootable format, next to kernel+initrd's
# (the ratio column; the goal is at most 1.5), with the file size.
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
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
cache=${LINUXKIT_CACHE:-$HOME/.linuxkit/cache}
yml=$root/examples/linuxkit.yml
formats=(iso-bios iso-efi iso-efi-initrd raw-bios raw-efi qcow2-bios qcow2-efi vhd dynamic-vhd vmdk gcp aws azure)

cargo build --release --locked -q -p linuxkit --manifest-path "$root/Cargo.toml"
lk=$root/target/release/linuxkit
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

if ! "$lk" -q --cache "$cache" build --dir "$work" --format kernel+initrd,iso-bios "$yml" 2>"$work/err"; then
  cat "$work/err" >&2
  echo "formats.sh: build the package set into $cache first: linuxkit pkg build pkg/*" >&2
  exit 1
fi

# median FORMAT: the median wall time of RUNS builds, in seconds
median() {
  for _ in $(seq "$runs"); do
    rm -f "$work"/linuxkit*
    /usr/bin/time -f "%e" -o "$work/t" "$lk" -q --cache "$cache" build --dir "$work" --format "$1" "$yml"
    cat "$work/t"
  done | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

size_of() { # the size of the files the last build wrote, in MB: apparent/allocated
  local total=0 alloc=0 f
  for f in "$work"/linuxkit*; do
    total=$((total + $(stat -c %s "$f")))
    alloc=$((alloc + $(stat -c '%b * %B' "$f")))
  done
  echo "$((total / 1000000))/$((alloc / 1000000))"
}

base=$(median kernel+initrd)
printf 'linuxkit build --format F examples/linuxkit.yml (%s cores, median of %s warm builds)\n' "$(nproc)" "$runs"
printf '%-16s %7s %7s  %s\n' format time ratio 'size MB (apparent/allocated)'
printf '%-16s %6.2fs %6.2fx  %s\n' kernel+initrd "$base" 1 "$(size_of)"
for f in "${formats[@]}"; do
  t=$(median "$f")
  printf '%-16s %6.2fs %6.2fx  %s\n' "$f" "$t" "$(echo "$t / $base" | bc -l)" "$(size_of)"
done
