#!/usr/bin/env bash
# The disk-format bench of issue 11: the importer's stream decoder against
# `qemu-img convert -O raw`, on the same local file, in the same run.
#
#   sudo benches/formats.sh [-n RUNS] [--no-build]
#
# Builds (once, cached in benches/cache/formats/) a raw disk of 1.5 GiB and 28 KiB — no
# multiple of any format's block — holding an ext4 file system filled from /usr/share
# (`mkfs.ext4 -d`), and converts it with `qemu-img convert -O FMT -o subformat=…` to
# every subformat the importer reads. Then RUNS rounds (default 3) of three contenders
# in alternation per file, each starting with a cold page cache:
#   1. convert-disk FILE OUT (src/bin/convert-disk.rs: the decoder fed 1 MiB reads,
#      zero blocks skipped, fsync)
#   2. bootsource import file:FILE --to OUT (the whole import: sha256 of the file,
#      chunk pool, writer threads, fsync)
#   3. qemu-img convert -t writeback -O raw FILE OUT, sync -f OUT
# Each is timed by /usr/bin/time: wall and CPU seconds and peak RSS (its "Maximum
# resident set size", as `time -v` prints it). Every result of (1) and (2) is checked
# against qemu-img's own reading of the file: same size, and `qemu-img compare`
# identical.
#
# Writes benches/results/DATE-formats.md and latest-formats.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

RUNS=3
BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n RUNS] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root: every run drops the page cache"

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CONVERT=$TARGET_DIR/release/convert-disk
BOOTSOURCE=$TARGET_DIR/release/bootsource
if [ "$BUILD" = 1 ]; then
    log "cargo build --release --bin convert-disk --bin bootsource"
    (cd "$REPO" && cargo build --release --quiet -p bootsource-benches --bin convert-disk)
    (cd "$REPO" && cargo build --release --quiet --bin bootsource)
fi
[ -x "$CONVERT" ] || die "$CONVERT missing: build it (cargo build --release -p bootsource-benches)"
[ -x "$BOOTSOURCE" ] || die "$BOOTSOURCE missing: build it (cargo build --release --bin bootsource)"

DIR=$CACHE/formats
DISK_BYTES=$((1536 * 1024 * 1024 + 28 * 1024))
# NAME (a fixed VHD is known by its .vhd)  qemu-img -O FORMAT  -o OPTIONS
FILES=(
    "monolithicSparse.vmdk vmdk subformat=monolithicSparse"
    "streamOptimized.vmdk vmdk subformat=streamOptimized"
    "fixed.vhd vpc subformat=fixed"
    "dynamic.vhd vpc subformat=dynamic"
    "fixed.vhdx vhdx subformat=fixed"
    "dynamic.vhdx vhdx subformat=dynamic"
    "static.vdi vdi static=on"
    "dynamic.vdi vdi static=off"
    "plain.qcow2 qcow2 cluster_size=65536"
)

build_files() {
    mkdir -p "$DIR"
    if [ ! -e "$DIR/disk.raw" ]; then
        log "building disk.raw: ext4 from /usr/share"
        truncate -s "$DISK_BYTES" "$DIR/disk.raw.tmp"
        mkfs.ext4 -q -F -d /usr/share "$DIR/disk.raw.tmp"
        mv "$DIR/disk.raw.tmp" "$DIR/disk.raw"
    fi
    local line name format options
    for line in "${FILES[@]}"; do
        read -r name format options <<<"$line"
        [ -e "$DIR/$name" ] && continue
        log "qemu-img convert -O $format -o $options → $name"
        qemu-img convert -f raw -O "$format" -o "$options" "$DIR/disk.raw" "$DIR/$name.tmp"
        mv "$DIR/$name.tmp" "$DIR/$name"
    done
}

cold() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# timed OUTFILE COMMAND...: runs COMMAND cold under /usr/bin/time, prints "wall cpu rss_kib".
timed() {
    local out=$1
    shift
    rm -f "$out"
    cold
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >/dev/null
    awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$WORK/time"
}

# qemu-img convert -t writeback -f FORMAT -O raw FILE OUT, then sync -f OUT: a command
# /usr/bin/time can run.
QEMU_CONVERT=(sh -c 'qemu-img convert -t writeback -f "$0" -O raw "$1" "$2" && sync -f "$2"')

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }

build_files
WORK=$CACHE/formats-run
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
TSV=$WORK/runs.tsv

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for line in "${FILES[@]}"; do
    read -r name format _ <<<"$line"
    file=$DIR/$name
    for run in $(seq "$RUNS"); do
        read -r wall cpu rss < <(timed "$WORK/ours.raw" "$CONVERT" "$file" "$WORK/ours.raw")
        printf '%s\tbootsource\t%s\t%s\t%s\n' "$name" "$wall" "$cpu" "$rss" >>"$TSV"
        read -r wall cpu rss < <(timed "$WORK/import.raw" "$BOOTSOURCE" import "file:$file" --to "$WORK/import.raw")
        printf '%s\timport\t%s\t%s\t%s\n' "$name" "$wall" "$cpu" "$rss" >>"$TSV"
        read -r wall cpu rss < <(timed "$WORK/qemu.raw" "${QEMU_CONVERT[@]}" "$format" "$file" "$WORK/qemu.raw")
        printf '%s\tqemu-img\t%s\t%s\t%s\n' "$name" "$wall" "$cpu" "$rss" >>"$TSV"
        for out in ours import; do
            [ "$(stat -c %s "$WORK/$out.raw")" = "$(stat -c %s "$WORK/qemu.raw")" ] ||
                die "$name: $out size $(stat -c %s "$WORK/$out.raw") differs from qemu-img's"
            qemu-img compare -q -f raw -F raw "$WORK/$out.raw" "$WORK/qemu.raw" ||
                die "$name: $out content differs from qemu-img's"
        done
        log "$name run $run: identical"
    done
done

STAMP=$(date -u +%F)
REPORT=$BENCH_DIR/results/$STAMP-formats.md
{
    echo "# Disk formats: the stream decoder against qemu-img convert, $(date -u '+%F %H:%M') UTC"
    echo
    echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), load average at the start $LOAD_START and before the last run $(cut -d' ' -f1-3 /proc/loadavg); $(qemu-img --version | head -1); commit $(git -C "$REPO" rev-parse --short HEAD)."
    echo "Disk: raw $DISK_BYTES bytes, ext4 filled from /usr/share ($(du -sm "$DIR/disk.raw" | cut -f1) MB allocated)."
    echo "Median of $RUNS cold-cache runs each, alternating; every output identical to qemu-img's."
    echo
    echo "| file | file MB | decoder s | spread | CPU s | RSS MiB | import s | spread | CPU s | RSS MiB | qemu-img s | spread | CPU s | RSS MiB | decoder/qemu | import/qemu |"
    echo "|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|"
    for line in "${FILES[@]}"; do
        read -r name _ <<<"$line"
        row() { awk -v n="$name" -v c="$1" -F'\t' '$1 == n && $2 == c { print $'"$2"' }' "$TSV"; }
        # contender: "wall | spread | CPU | RSS MiB" cells
        cells() {
            printf '**%s** | %s | %s | %s' "$(row "$1" 3 | median)" "$(row "$1" 3 | spread)" \
                "$(row "$1" 4 | median)" "$(($(row "$1" 5 | median) / 1024))"
        }
        ours=$(row bootsource 3 | median)
        import=$(row import 3 | median)
        theirs=$(row qemu-img 3 | median)
        printf '| %s | %s | %s | %s | %s | %.2f | %.2f |\n' \
            "$name" "$(($(stat -c %s "$DIR/$name") / 1000000))" \
            "$(cells bootsource)" "$(cells import)" "$(cells qemu-img)" \
            "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { print a / b }')" \
            "$(awk -v a="$import" -v b="$theirs" 'BEGIN { print a / b }')"
    done
} >"$REPORT"
cp "$REPORT" "$BENCH_DIR/results/latest-formats.md"
cat "$REPORT"
