#!/usr/bin/env bash
# Pull benchmark: cold pull of the linuxkit.yml-shaped benchmark images
# (Debian-made, ~100 MB of gzip layers; see ../shared/bench/README.md) from a
# loopback docker-registry into an empty cache, then a warm re-pull, printing
# wall time and peak RSS of `linuxkit cache pull`.
#
# usage: bench/pull.sh [RUNS]    (env: PORT=5000, BENCH_DIR=~/.cache/lk-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
runs=${1:-3}
port=${PORT:-5000}
export BENCH_DIR=${BENCH_DIR:-$HOME/.cache/lk-bench}

sh "$shared/bench/bench-images.sh" "$port"
cargo build --release --locked -q -p linuxkit --manifest-path "$root/Cargo.toml"
lk=$root/target/release/linuxkit

images=()
for i in kernel:6.1 init:1 runc:1 containerd:1 ca-certificates:1 sysctl:1 dhcpcd:1 getty:1 rngd:1 nginx:1; do
  images+=("127.0.0.1:$port/bench/$i")
done

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
measure() { # label cache-dir
  /usr/bin/time -f "%e %M" -o "$work/t" "$lk" -q --cache "$2" cache pull "${images[@]}"
  read -r secs kib < "$work/t"
  printf '%-10s %6.2f s wall  %6.1f MiB peak RSS\n' "$1" "$secs" "$(echo "$kib / 1024" | bc -l)"
}

echo "linuxkit cache pull of ${#images[@]} images from 127.0.0.1:$port"
for r in $(seq "$runs"); do
  rm -rf "$work/cache"
  measure "cold #$r" "$work/cache"
done
measure "warm" "$work/cache"
printf 'blobs: %s MB\n' "$(du -sm "$work/cache/blobs" | cut -f1)"
