#!/usr/bin/env bash
# Build benchmark: `linuxkit build --format kernel+initrd` of the
# linuxkit.yml-shaped config in ../shared/bench (about 260 MB of root
# filesystem over Debian-made images in a loopback registry), printing wall
# time and peak RSS for
#   - cold: empty cache, images pulled from the registry;
#   - first: images cached, no cached initrd parts;
#   - warm: nothing changed since the last build;
# plus the initrd size, and `pigz -6` over the plain tar as a floor.
#
# usage: bench/build.sh [RUNS]    (env: PORT=5000, BENCH_DIR=~/.cache/lk-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
runs=${1:-3}
port=${PORT:-5000}
export BENCH_DIR=${BENCH_DIR:-$HOME/.cache/lk-bench}
command -v pigz >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pigz >/dev/null

sh "$shared/bench/bench-images.sh" "$port"
cargo build --release --locked -q -p linuxkit --manifest-path "$root/Cargo.toml"
lk=$root/target/release/linuxkit

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
sed "s/127.0.0.1:5000/127.0.0.1:$port/" "$shared/bench/bench.yml" > "$work/bench.yml"
mkdir -p "$work/out"
measure() { # label
  /usr/bin/time -f "%e %M" -o "$work/t" "$lk" -q --cache "$work/cache" build --format kernel+initrd \
    --dir "$work/out" --name bench "$work/bench.yml"
  read -r secs kib < "$work/t"
  printf '%-8s %6.2f s wall  %6.1f MiB peak RSS\n' "$1" "$secs" "$(echo "$kib / 1024" | bc -l)"
}

echo "linuxkit build --format kernel+initrd ($(nproc) cores)"
for r in $(seq "$runs"); do
  rm -rf "$work/cache"; measure "cold"
done
for r in $(seq "$runs"); do
  rm -rf "$work/cache/.segments"; measure "first"
done
for r in $(seq "$runs"); do
  measure "warm"
done
printf 'initrd: %s MB (gzip), root filesystem: %s MB\n' \
  "$(( $(stat -c %s "$work/out/bench-initrd.img") / 1000000 ))" \
  "$("$lk" -q --cache "$work/cache" build --o - "$work/bench.yml" | wc -c | awk '{print int($1/1000000)}')"
"$lk" -q --cache "$work/cache" build --o "$work/bench.tar" "$work/bench.yml"
/usr/bin/time -f "%e" -o "$work/t" sh -c "pigz -6 < '$work/bench.tar' > '$work/bench.tar.gz'"
printf 'floor: pigz -6 of the tar %6.2f s wall, %s MB\n' "$(cat "$work/t")" "$(( $(stat -c %s "$work/bench.tar.gz") / 1000000 ))"
