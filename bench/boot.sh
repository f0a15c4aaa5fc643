#!/usr/bin/env bash
# Boot-time benchmark under QEMU TCG (the issue 6/8 budget): for each
# example, when init starts and when the system is up (all services
# started, or boot complete), as kernel-clock times from the console, next
# to the floor: the same kernel with a trivial initrd whose init (our
# `poweroff` applet as rdinit) powers off at once. Also the initrd sizes.
#
# Needs the package set in the cache (`linuxkit pkg build --platforms
# linux/amd64,linux/arm64 pkg/*/`, same LINUXKIT_CACHE) and `linuxkit` on
# PATH (or LINUXKIT=...).
# Usage: [COMPRESSION=gzip|zstd|lz4|none[:LEVEL]] [CPUS=N] [ARCHES="amd64 arm64"] bench/boot.sh [RUNS]
# (COMPRESSION is `build --initrd-compression`, gzip by default; CPUS is
# `run qemu --cpus`, 1 by default as in the reference; ARCHES are the
# `build --arch` values, amd64 by default: arm64 runs under
# qemu-system-aarch64 through its UEFI firmware, whose time is before the
# kernel's clock starts and shows only in the last column, the run's wall
# time.)
set -euo pipefail
runs="${1:-1}"
lk="${LINUXKIT:-linuxkit}"
comp="${COMPRESSION:-gzip}"
cpus="${CPUS:-1}"
arches="${ARCHES:-amd64}"
echo "initrd compression: $comp, $cpus vCPU(s)"
root="$(cd "$(dirname "$0")/.." && pwd)"
top="$(mktemp -d)"
trap 'rm -rf "$top"' EXIT

stamp() { # the kernel-clock seconds of the first console line containing $2 in file $1
  grep -a -m1 -F "$2" "$1" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'
}
now() { date +%s.%N; }
boot() { # image, text to wait for (then power off); prints the console to $work/NAME.log
  "$lk" run qemu --accel tcg --cpus "$cpus" --mem 1024 --expect "$2" --powerdown-after "$2" --timeout 1200 \
    "$work/$1" > "$work/$1.log" 2>/dev/null || true
}

printf '%-6s %-10s %12s %14s %14s %12s %10s\n' arch image "initrd MB" "init starts" "system up" "up - floor" "wall s"
for arch in $arches; do
work="$top/$arch"
mkdir -p "$work"

# The floor: kernel + init image only, booted with rdinit=/sbin/poweroff.
cat > "$work/floor.yml" <<YML
kernel:
  image: "@pkg:$root/pkg/kernel"
  cmdline: "console=ttyS0 console=ttyAMA0"
init:
  - "@pkg:$root/pkg/init"
YML
build() { "$lk" -q build --arch "$arch" --initrd-compression "$comp" --dir "$work" "$@"; }
build "$work/floor.yml"
echo "console=ttyS0 console=ttyAMA0 rdinit=/sbin/poweroff" > "$work/floor-cmdline"
# The examples name `console=tty0 console=ttyS0`: on arm64, which has no
# ttyS0, /dev/console would be the virtual terminal, so its serial console
# goes last there (on amd64 a last console that does not exist does the
# same: see docs/run.md).
serial=ttyS0; [ "$arch" = arm64 ] && serial="ttyS0 console=ttyAMA0"
for y in minimal linuxkit; do
  sed -e "s/console=ttyS0\"/console=$serial\"/" -e "s|@pkg:\.\./pkg/|@pkg:$root/pkg/|" \
    "$root/examples/$y.yml" > "$work/$y.yml"
  build "$work/$y.yml"
done

for r in $(seq 1 "$runs"); do
  t0=$(now)
  "$lk" run qemu --accel tcg --cpus "$cpus" --mem 1024 --timeout 1200 "$work/floor" > "$work/floor.log" 2>/dev/null || true
  floor=$(stamp "$work/floor.log" "Run /sbin/poweroff as init process")
  printf '%-6s %-10s %12.1f %14s %14s %12s %10.1f\n' "$arch" floor "$(echo "scale=1; $(stat -c %s "$work/floor-initrd.img")/1000000" | bc)" "$floor" "-" "-" "$(echo "$(now) - $t0" | bc)"
  # minimal's getty is its last onboot container and never exits, so the
  # machine never reaches the point where it powers off: watch its console
  # and kill it.
  rm -rf "$work/minimal-state"
  "$lk" -q run qemu --accel tcg --cpus "$cpus" --mem 1024 --detached "$work/minimal" >/dev/null 2>&1
  for _ in $(seq 1 600); do
    grep -q "onboot 000-getty: starting" "$work/minimal-state/console.log" 2>/dev/null && break
    sleep 0.5
  done
  kill "$(cat "$work/minimal-state/qemu.pid")" 2>/dev/null || true
  cp "$work/minimal-state/console.log" "$work/minimal.log"
  t0=$(now)
  boot linuxkit "all services started"
  wall=$(echo "$(now) - $t0" | bc)
  for y in minimal linuxkit; do
    init=$(stamp "$work/$y.log" "linuxkit: init starting")
    case $y in
      minimal) up=$(stamp "$work/$y.log" "onboot 000-getty: starting");;
      linuxkit) up=$(stamp "$work/$y.log" "all services started");;
    esac
    printf '%-6s %-10s %12.1f %14s %14s %12s %10s\n' "$arch" "$y" \
      "$(echo "scale=1; $(stat -c %s "$work/$y-initrd.img")/1000000" | bc)" "${init:-?}" "${up:-?}" \
      "$( [ -n "${up:-}" ] && [ -n "$floor" ] && echo "scale=2; $up - $floor" | bc || echo '?')" \
      "$( [ "$y" = linuxkit ] && printf '%.1f' "$wall" || echo -)"
  done
done
done
