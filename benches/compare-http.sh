#!/usr/bin/env bash
# Issue 10's bench: an xz and a gzip disk file over HTTP, bootsource against the
# CDI-style path for http (download to scratch, decompress to scratch, qemu-img
# convert), in the same run.
#
#   sudo benches/compare-http.sh [-n RUNS] [--virtual SIZE] [--data SIZE] [--bootsource PATH]
#
# The image is a raw disk of --virtual bytes (default 16G) holding --data bytes
# (default 1G) of real files (a tar of /usr) in 64 MiB pieces spread over it, the rest
# zeros: CoreOS-style `.raw.xz` and a `.raw.gz`. nginx serves them on 127.0.0.1. Each
# run starts with a cold page cache; every result is checked with `qemu-img compare`.
# Contenders:
#   bootsource  bootsource import http://127.0.0.1:PORT/disk.raw.EXT --to FILE (fsyncs)
#   cdi         curl -o scratch; xz -d / gunzip to scratch (sparse); qemu-img convert
#               -O raw; sync -f
# Prints a markdown table (median wall time, CPU time, peak scratch) and writes it to
# benches/results/DATE-http.md. Scratch lives in benches/cache/http/ and is removed at
# the end (the images are kept for the next run unless --clean).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
VIRTUAL=16G
DATA=1G
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
CLEAN=0
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --virtual) VIRTUAL=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --bootsource) BOOTSOURCE=$2; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    *) echo "usage: $0 [-n RUNS] [--virtual SIZE] [--data SIZE] [--bootsource PATH] [--clean]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root: every run drops the page cache" >&2; exit 1; }
[ -x "$BOOTSOURCE" ] || { echo "$BOOTSOURCE missing: cargo build --release -p bootsource" >&2; exit 1; }
source "$REPO/benches/http-lib.sh"

CACHE=$REPO/benches/cache/http
IMAGES=$CACHE/images-$VIRTUAL-$DATA
WORK=$CACHE/run
mkdir -p "$IMAGES"
rm -rf "$WORK"
mkdir -p "$WORK/www" "$WORK/scratch"

if [ ! -s "$IMAGES/disk.raw.xz" ] || [ ! -s "$IMAGES/disk.raw.gz" ]; then
    log "building a $VIRTUAL raw disk holding $DATA of /usr"
    data_of "$DATA" "$IMAGES/data"
    spread "$IMAGES/data" "$VIRTUAL" "$IMAGES/disk.raw"
    rm "$IMAGES/data"
    log "xz -T0 and gzip (the tools vendors use)"
    xz -T0 -k -c "$IMAGES/disk.raw" >"$IMAGES/disk.raw.xz"
    gzip -c "$IMAGES/disk.raw" >"$IMAGES/disk.raw.gz"
fi
ln -sf "$IMAGES/disk.raw.xz" "$IMAGES/disk.raw.gz" "$WORK/www/"

serve "$WORK/www" "$WORK"
TSV=$WORK/runs.tsv
: >"$TSV"

run() { # EXT CONTENDER ROUND
    local ext=$1 who=$2 round=$3 target=$WORK/target.img scratch=$WORK/scratch peak=0
    rm -rf "$target" "$scratch" && mkdir -p "$scratch"
    cold
    local start end cpu
    start=$(date +%s.%N)
    if [ "$who" = bootsource ]; then
        /usr/bin/time -f '%U %S' -o "$WORK/time" "$BOOTSOURCE" import \
            "http://127.0.0.1:$PORT/disk.raw.$ext" --to "$target" --json >"$WORK/out" 2>&1 ||
            { cat "$WORK/out" >&2; exit 1; }
        cpu=$(awk '{ print $1 + $2 }' "$WORK/time")
    else
        local tool=gunzip
        [ "$ext" = xz ] && tool="xz -d -T0"
        /usr/bin/time -f '%U %S' -o "$WORK/time" bash -c "
            curl -s -o '$scratch/disk.raw.$ext' 'http://127.0.0.1:$PORT/disk.raw.$ext' &&
            $tool '$scratch/disk.raw.$ext' &&
            qemu-img convert -t writeback -f raw -O raw '$scratch/disk.raw' '$target' &&
            sync -f '$target'" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }
        cpu=$(awk '{ print $1 + $2 }' "$WORK/time")
        peak=$(du -sB1 "$scratch" | cut -f1)
    fi
    end=$(date +%s.%N)
    qemu-img compare -q -f raw -F raw "$IMAGES/disk.raw" "$target" ||
        { log "$who $ext: the result differs from the source"; exit 1; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$ext" "$who" "$round" \
        "$(awk -v a="$end" -v b="$start" 'BEGIN { printf "%.2f", a - b }')" "$cpu" "$peak" >>"$TSV"
    log "$ext $who #$round: $(tail -1 "$TSV" | cut -f4)s"
}

for ((r = 1; r <= RUNS; r++)); do
    for ext in xz gz; do
        for who in bootsource cdi; do run "$ext" "$who" "$r"; done
    done
done

OUT=$REPO/benches/results/$(date +%F)-http.md
{
    echo "# HTTP sources: bootsource vs the CDI-style path ($(date +%F))"
    echo
    echo "Raw disk of $VIRTUAL holding $DATA of /usr; $RUNS runs each, cold page cache, $(nproc) CPUs."
    echo "xz file $(du -h --apparent-size "$IMAGES/disk.raw.xz" | cut -f1), gzip file $(du -h --apparent-size "$IMAGES/disk.raw.gz" | cut -f1)."
    echo
    echo "| file | contender | median wall s | median CPU s | peak scratch | wall vs bootsource |"
    echo "|---|---|---|---|---|---|"
    for ext in xz gz; do
        b=$(awk -v e="$ext" '$1 == e && $2 == "bootsource" { print $4 }' "$TSV" | median)
        for who in bootsource cdi; do
            w=$(awk -v e="$ext" -v c="$who" '$1 == e && $2 == c { print $4 }' "$TSV" | median)
            c=$(awk -v e="$ext" -v c="$who" '$1 == e && $2 == c { print $5 }' "$TSV" | median)
            s=$(awk -v e="$ext" -v c="$who" '$1 == e && $2 == c { print $6 }' "$TSV" | median)
            printf '| .raw.%s | %s | %s | %s | %s | %sx |\n' "$ext" "$who" "$w" "$c" \
                "$(numfmt --to=iec "${s%.*}")" "$(awk -v a="$w" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
        done
    done
} | tee "$OUT"
if [ "$CLEAN" = 1 ]; then rm -rf "$IMAGES"; fi
