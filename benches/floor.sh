#!/usr/bin/env bash
# The CPU floor (issue 13): how close does an unthrottled import come to its stages'
# CPU, spread over the cores?
#
#   sudo benches/floor.sh [-n ROUNDS] [-i IMAGE] [--target-dir DIR] [--no-build]
#
# IMAGE (default qcow2-deflate.gzip, one of build-images.sh's) is imported from its OCI
# layout with the layer blob in the page cache, onto a new file in DIR (default a
# tmpfs, /dev/shm: the disk is not what this measures). Each round (default 5) also runs
# every stage alone on the same bytes, with the importer's own crates:
#   sha256      stage-alone sha256 BLOB          (the layer digest)
#   decompress  decompress BLOB                  (gunzip or zstd, one thread)
#   tar         stage-alone tar LAYER.tar        (the walk to the disk entry)
#   decode      convert-disk DISK /dev/null      (qcow2 tables, cluster inflate, zero scan)
#   write       stage-alone write RESULT NEW     (the same data ranges onto DIR, fdatasync)
# and takes each one's CPU seconds (user + system, /usr/bin/time).
#   floor = sum of each stage's least CPU over the rounds / cores
#   Goal: the import's median wall time <= 1.25 x floor.
# The least, not the median, because noise only adds to a floor: on this VM the kernel
# time of writing to fresh pages swings 0.3-1.3 s between identical runs (freed pages
# go back to the host and fault in again). The import is judged by its median.
# The import's own CPU over that sum says what the pipeline adds (threads, copies,
# queues). On a real disk the writes' wall time (with their fdatasync) can exceed the
# CPU floor: the report then also sets the import against that, the disk's floor.
# Every import is checked with `qemu-img compare` against the layer's disk.
# Writes benches/results/DATE-floor.md and latest-floor.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

ROUNDS=5
IMAGE=qcow2-deflate.gzip
TARGET_BASE=/dev/shm
BUILD=1
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$TARGET_DIR/release
while [ $# -gt 0 ]; do
    case $1 in
    -n) ROUNDS=$2; shift 2 ;;
    -i) IMAGE=$2; shift 2 ;;
    --target-dir) TARGET_BASE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n ROUNDS] [-i IMAGE] [--target-dir DIR] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the bench cache is root's)"
[ "$BUILD" = 0 ] || build_release
for bin in bootsource decompress convert-disk stage-alone; do
    [ -x "$BIN/$bin" ] || die "$BIN/$bin missing"
done
BLOB=$(layer_blob "$IMAGE") || die "no layout for $IMAGE: run benches/build-images.sh"
[ -f "$BLOB" ] || die "$BLOB missing: run benches/build-images.sh"

WORK=$(mktemp -d "$TARGET_BASE/bootsource-floor.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG=$WORK/log
TSV=$CACHE/floor-runs.tsv

# The stages' inputs, made once: the layer's tar and its disk file, next to the target.
log "unpacking $IMAGE's layer into $WORK"
"$BIN/decompress" "$BLOB" >/dev/null
case $(head -c2 "$BLOB" | od -An -tx1 | tr -d ' ') in
1f8b) gzip -dc <"$BLOB" >"$WORK/layer.tar" ;;
*) zstd -dcq <"$BLOB" >"$WORK/layer.tar" ;;
esac
tar -xOf "$WORK/layer.tar" --wildcards 'disk/*' >"$WORK/disk"
FORMAT=$(qemu-img info --output=json "$WORK/disk" | jq -r .format)

printf 'round\tstage\twall_s\tcpu_s\tload1\n' >"$TSV"
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
for round in $(seq "$ROUNDS"); do
    load1=$(cut -d' ' -f1 /proc/loadavg)
    cat "$BLOB" >/dev/null
    rm -f "$WORK/target"
    measure import "$BIN/bootsource" import "oci:$(layout_dir "$IMAGE"):$TAG" --to "$WORK/target"
    qemu-img compare -q -f raw -F "$FORMAT" "$WORK/target" "$WORK/disk" || die "round $round: the import differs from the layer's disk"
    printf '%s\timport\t%s\t%s\t%s\n' "$round" "$WALL" "$USED" "$load1" >>"$TSV"
    log "round $round: import $WALL s, $USED s CPU (load $load1)"
    rm -f "$WORK/written"
    for stage in \
        "sha256 $BIN/stage-alone sha256 $BLOB" \
        "decompress $BIN/decompress $BLOB" \
        "tar $BIN/stage-alone tar $WORK/layer.tar" \
        "decode $BIN/convert-disk $WORK/disk /dev/null" \
        "write $BIN/stage-alone write $WORK/target $WORK/written"; do
        # shellcheck disable=SC2086 # the stage's words
        measure $stage
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "${stage%% *}" "$WALL" "$USED" "$load1" >>"$TSV"
    done
    rm -f "$WORK/written"
done
LOAD_AFTER=$(uptime | sed 's/.*load average: //')

median() { # STAGE COLUMN
    awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$TSV" | sort -n |
        awk '{ v[++n] = $1 } END { printf "%.2f", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
least() { # STAGE COLUMN
    awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$TSV" | sort -n | head -1
}
spread() { # STAGE COLUMN
    awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$TSV" | sort -n | sed -n '1p;$p' | paste -sd'-' | sed 's/-/–/'
}
CORES=$(nproc)
SUM=0
for stage in sha256 decompress tar decode write; do
    SUM=$(awk -v a="$SUM" -v b="$(least "$stage" 4)" 'BEGIN { printf "%.2f", a + b }')
done
FLOOR=$(awk -v s="$SUM" -v c="$CORES" 'BEGIN { printf "%.2f", s / c }')
WRITE_WALL=$(median write 3)
IMPORT_WALL=$(median import 3)
IMPORT_CPU=$(median import 4)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

DATE=$(date +%F)
RESULTS=$BENCH_DIR/results
OUT=$RESULTS/$DATE-floor.md
mkdir -p "$RESULTS"
{
    printf '# The CPU floor: %s, %s\n\n' "$IMAGE" "$(date '+%F %H:%M %Z')"
    printf '%s CPUs, load average before %s, after %s; bootsource %s; %s rounds.\n' \
        "$CORES" "$LOAD_BEFORE" "$LOAD_AFTER" "$(git -C "$REPO" describe --always --dirty)" "$ROUNDS"
    printf 'Layer blob in the page cache; target a new file on %s (%s).\n\n' \
        "$TARGET_BASE" "$(stat -f -c %T "$TARGET_BASE")"
    printf '| stage, alone on the same bytes | least CPU s | median | spread |\n|---|---:|---:|---|\n'
    for stage in sha256 decompress tar decode write; do
        printf '| %s | %s | %s | %s |\n' "$stage" "$(least "$stage" 4)" "$(median "$stage" 4)" "$(spread "$stage" 4)"
    done
    printf '| **sum** | **%s** | | |\n\n' "$SUM"
    printf '| figure | measured | goal |\n|---|---:|---|\n'
    printf '| CPU floor: sum / %s cores | %s s | |\n' "$CORES" "$FLOOR"
    printf '| import wall time, median (spread %s) | %s s | |\n' "$(spread import 3)" "$IMPORT_WALL"
    printf '| **import / floor** | **%s** | <= 1.25 |\n' "$(ratio "$IMPORT_WALL" "$FLOOR")"
    printf '| the target'"'"'s floor: the writes alone, wall time with fdatasync, median | %s s | |\n' "$WRITE_WALL"
    printf '| import / the larger floor | %s | |\n' \
        "$(ratio "$IMPORT_WALL" "$(awk -v a="$FLOOR" -v b="$WRITE_WALL" 'BEGIN { print (a > b ? a : b) }')")"
    printf '| import CPU (spread %s) / sum of the stages alone | %s s / %s s = %s | |\n\n' \
        "$(spread import 4)" "$IMPORT_CPU" "$SUM" "$(ratio "$IMPORT_CPU" "$SUM")"
    printf 'Every run (seconds):\n\n```\n'
    cat "$TSV"
    printf '```\n'
} >"$OUT"
cp "$OUT" "$RESULTS/latest-floor.md"
cat "$OUT"
