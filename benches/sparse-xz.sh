#!/usr/bin/env bash
# Issue 10's "time ∝ data": a CoreOS-style raw.xz whose virtual size is 16 times its
# data imports in about the time of one holding the same data without holes.
#
#   sudo benches/sparse-xz.sh [-n RUNS] [--virtual SIZE] [--data SIZE] [--bootsource PATH]
#
# One piece of real data (a tar of /usr, --data bytes, default 1G) is laid out twice:
# packed into a raw disk of exactly --data bytes, and spread in 64 MiB pieces over a
# raw disk of --virtual bytes (default 16G), zeros between. Both are compressed with
# `xz -T2 -0` (quick to build; the index records the length) and served by nginx on
# 127.0.0.1. Each run imports one with `bootsource import http://… --to FILE` from a
# cold page cache; the result is checked with `qemu-img compare` and its allocated
# bytes are counted. Prints a markdown table (median wall time, CPU time, allocated
# bytes, `uptime` before the runs) and writes it to benches/results/DATE-sparse-xz.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=1
VIRTUAL=16G
DATA=1G
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --virtual) VIRTUAL=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --bootsource) BOOTSOURCE=$2; shift 2 ;;
    *) echo "usage: $0 [-n RUNS] [--virtual SIZE] [--data SIZE] [--bootsource PATH]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root: every run drops the page cache" >&2; exit 1; }
[ -x "$BOOTSOURCE" ] || { echo "$BOOTSOURCE missing: cargo build --release -p bootsource" >&2; exit 1; }
source "$REPO/benches/http-lib.sh"

CACHE=$REPO/benches/cache/sparse-xz
IMAGES=$CACHE/images-$VIRTUAL-$DATA
WORK=$CACHE/run
mkdir -p "$IMAGES"
rm -rf "$WORK"
mkdir -p "$WORK/www"

if [ ! -s "$IMAGES/packed.raw.xz" ] || [ ! -s "$IMAGES/spread.raw.xz" ]; then
    log "building $DATA of /usr, packed and spread over $VIRTUAL"
    data_of "$DATA" "$IMAGES/packed.raw"
    spread "$IMAGES/packed.raw" "$VIRTUAL" "$IMAGES/spread.raw"
    for disk in packed spread; do
        log "xz -T2 -0 $disk.raw"
        xz -T2 -0 -k -c "$IMAGES/$disk.raw" >"$IMAGES/$disk.raw.xz"
    done
fi
ln -sf "$IMAGES/packed.raw.xz" "$IMAGES/spread.raw.xz" "$WORK/www/"

serve "$WORK/www" "$WORK"
TSV=$WORK/runs.tsv
: >"$TSV"
LOAD=$(uptime)

run() { # DISK ROUND
    local disk=$1 round=$2 target=$WORK/target.img start end cpu allocated
    rm -f "$target"
    cold
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$WORK/time" "$BOOTSOURCE" import \
        "http://127.0.0.1:$PORT/$disk.raw.xz" --to "$target" --json >"$WORK/out" 2>&1 ||
        { cat "$WORK/out" >&2; exit 1; }
    end=$(date +%s.%N)
    cpu=$(awk '{ print $1 + $2 }' "$WORK/time")
    qemu-img compare -q -f raw -F raw "$IMAGES/$disk.raw" "$target" ||
        { log "$disk: the result differs from the source"; exit 1; }
    allocated=$(($(stat -c '%b * %B' "$target")))
    printf '%s\t%s\t%s\t%s\t%s\n' "$disk" "$round" \
        "$(awk -v a="$end" -v b="$start" 'BEGIN { printf "%.2f", a - b }')" "$cpu" "$allocated" >>"$TSV"
    log "$disk #$round: $(tail -1 "$TSV" | cut -f3)s"
}

for ((r = 1; r <= RUNS; r++)); do
    for disk in packed spread; do run "$disk" "$r"; done
done

col() { awk -v d="$1" -v c="$2" '$1 == d { print $c }' "$TSV" | median; }
OUT=$REPO/benches/results/$(date +%F)-sparse-xz.md
{
    echo "# A sparse raw.xz: time ∝ data ($(date +%F))"
    echo
    echo "$DATA of /usr, packed into a $DATA raw disk and spread over a $VIRTUAL one; \`xz -T2 -0\`;"
    echo "$RUNS run(s) each, cold page cache, $(nproc) CPUs. Before the runs: \`$LOAD\`"
    echo
    echo "| file | virtual | xz file | median wall s | median CPU s | allocated |"
    echo "|---|---|---|---|---|---|"
    for disk in packed spread; do
        virtual=$(numfmt --to=iec "$(stat -c %s "$IMAGES/$disk.raw")")
        printf '| %s.raw.xz | %s | %s | %s | %s | %s |\n' "$disk" "$virtual" \
            "$(du -h --apparent-size "$IMAGES/$disk.raw.xz" | cut -f1)" "$(col "$disk" 3)" \
            "$(col "$disk" 4)" "$(numfmt --to=iec "$(col "$disk" 5 | cut -d. -f1)")"
    done
    packed=$(col packed 3) spread=$(col spread 3)
    echo
    echo "spread / packed wall time: $(awk -v a="$spread" -v b="$packed" 'BEGIN { printf "%.2f", a / b }')x"
} | tee "$OUT"
