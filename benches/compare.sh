#!/usr/bin/env bash
# The end-to-end comparison of issue 5: bootsource against the CDI-style pipeline.
#
#   sudo benches/compare.sh [-n RUNS] [--bootsource PATH] [--images "NAME …"] [--no-build]
#
# On a machine shared with other work, `sudo nice -n -10 benches/compare.sh` gives every
# contender the same head start over the other load (the niceness is recorded).
#
# For each image of build-images.sh (run first; it skips what is cached), RUNS rounds
# (default 3) of four contenders in alternation, each starting with a cold page cache:
#   1. bootsource import docker://127.0.0.1:PORT/bench/IMAGE:bench --to FILE (fsyncs)
#   2. CDI-style: skopeo copy to dir:, extract the layer's disk to scratch (tar),
#      qemu-img convert -t writeback -O raw, sync -f
#   3. qemu-img convert -O raw of the disk file already on local disk, sync -f
#   4. the limit: decompress the layer blob alone (src/bin/decompress.rs)
# Each run records wall time, CPU time and peak RSS (/usr/bin/time), the scratch space
# at its peak, the allocated bytes of the result, the growth of Cached: in
# /proc/meminfo, and the result's pages left in the page cache (fincore); every result
# is checked with `qemu-img compare` against the source raw image.
#
# Writes benches/results/DATE-compare.md (+ DATE-runs.tsv) and latest.md, latest.png.
# Scratch and targets live in benches/cache/run/, on the disk the cache is on.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

RUNS=3
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
BUILD=1
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --bootsource) BOOTSOURCE=$2; shift 2 ;;
    --images) ONLY=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n RUNS] [--bootsource PATH] [--images \"NAME …\"] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root: every run drops the page cache"

[ "$BUILD" = 0 ] || build_release
DECOMPRESS=$TARGET_DIR/release/decompress
REPORT=$TARGET_DIR/release/bench-report
for bin in "$BOOTSOURCE" "$DECOMPRESS" "$REPORT"; do
    [ -x "$bin" ] || die "$bin missing: build it (cargo build --release) or pass --bootsource"
done
command -v gnuplot >/dev/null || {
    log "installing gnuplot-nox for the chart"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
}

"$BENCH_DIR/build-images.sh"
start_registry

WORK=$CACHE/run
rm -rf "$WORK"
mkdir -p "$WORK/logs"
RUNS_TSV=$WORK/runs.tsv
printf '%s\n' "image	contender	run	wall_s	cpu_s	rss_kib	scratch_bytes	written_bytes	cache_growth_kib	target_cached_bytes	verified	load1	layer_bytes	input_bytes	virtual_bytes	steps" >"$RUNS_TSV"

# run_contender CONTENDER NAME DISK FORMAT COMPRESSION TARGET BLOB
run_contender() {
    local contender=$1 name=$2 disk=$3 format=$4 comp=$5 target=$6 blob=$7
    case $contender in
    bootsource)
        timed import "$BOOTSOURCE" import "$(registry_ref "$name")" --to "$target" --tls-verify=false --json ;;
    cdi) run_cdi "$name" "$format" "$comp" "$target" ;;
    qemu-img)
        timed convert qemu-img convert -t writeback -f "$format" -O raw "$GOLDEN/$disk" "$target" || return
        timed sync sync -f "$target" ;;
    decompress) timed decompress "$DECOMPRESS" "$blob" ;;
    esac
}

# run_one NAME DISK COMPRESSION CONTENDER ROUND
run_one() {
    local name=$1 disk=$2 comp=$3 contender=$4 round=$5
    local format=qcow2 target=$WORK/target.img blob
    [ "$disk" = disk.raw ] && format=raw
    blob=$(layer_blob "$name")
    LOG=$WORK/logs/$name.$contender.$round.log
    CPU=0 RSS=0 SCRATCH=0 STEPS=
    rm -rf "$target" "$WORK/scratch"
    cold
    local load1 before start wall after failed=0
    load1=$(cut -d' ' -f1 /proc/loadavg)
    before=$(cached_kib)
    start=$(now)
    run_contender "$contender" "$name" "$disk" "$format" "$comp" "$target" "$blob" || failed=1
    wall=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
    after=$(cached_kib)
    local written cached=0 verified=-
    written=$(allocated "$target")
    if [ "$failed" = 1 ]; then
        verified=FAILED
    elif [ -e "$target" ]; then
        cached=$(fincore -bno RES "$target" | tr -d ' ')
        if qemu-img compare -q -f raw -F raw "$GOLDEN/disk.raw" "$target"; then
            verified=ok
        else
            verified=DIFFERENT
            log "$name/$contender: the result differs from the source"
        fi
    elif [ "$contender" != decompress ]; then
        verified=MISSING
    fi
    rm -rf "$target" "$WORK/scratch"
    printf '%s\t%s\t%s\t%.3f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$name" "$contender" "$round" "$wall" "$CPU" "$RSS" "$SCRATCH" "$written" \
        $((after - before)) "$cached" "$verified" "$load1" "$(stat -c %s "$blob")" \
        "$(stat -c %s "$GOLDEN/$disk")" "$(stat -c %s "$GOLDEN/disk.raw")" "${STEPS:--}" >>"$RUNS_TSV"
    log "$(printf '%s round %s %s: %.2f s, %s MiB RSS, %s' "$name" "$round" "$contender" "$wall" $((RSS / 1024)) "$verified")"
}

LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
for spec in "${IMAGES[@]}"; do
    read -r name disk comp <<<"$spec"
    [ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]] || continue
    for round in $(seq "$RUNS"); do
        for contender in bootsource cdi qemu-img decompress; do
            run_one "$name" "$disk" "$comp" "$contender" "$round"
        done
    done
done
LOAD_AFTER=$(uptime | sed 's/.*load average: //')
stop_registry

# Machine and context, without paths of this machine.
DATE=$(date +%F)
META=$WORK/meta.tsv
fs_source=$(findmnt -no SOURCE -T "$CACHE")
disk_dev=$(lsblk -no PKNAME "$fs_source" 2>/dev/null | head -1)
disk_dev=${disk_dev:-$(basename "$fs_source")}
used=$(debugfs -R stats "$GOLDEN/disk.raw" 2>/dev/null | awk -F: '/^Free blocks/ { free = $2 } /^Block count/ { total = $2 } /^Block size/ { bs = $2 } END { if (bs) printf "%.2f", (total - free) * bs / 2^30 }')
{
    printf 'date\t%s\n' "$(date '+%F %H:%M %Z')"
    printf 'cpu\t%s\n' "$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'memory\t%s\n' "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 2^20 }' /proc/meminfo)"
    printf 'disk\t%s\n' "$(lsblk -dno NAME,SIZE,MODEL "/dev/$disk_dev" 2>/dev/null | xargs) ($(findmnt -no FSTYPE -T "$CACHE"); rotational=$(cat "/sys/block/$disk_dev/queue/rotational" 2>/dev/null))"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'load_before\t%s\n' "$LOAD_BEFORE"
    printf 'load_after\t%s\n' "$LOAD_AFTER"
    printf 'niceness\t%s\n' "$(nice)"
    printf 'commit\t%s (bootsource binary %s)\n' "$(git -C "$REPO" describe --always --dirty)" "$(sha256sum "$BOOTSOURCE" | cut -c1-12)"
    printf 'tools\t%s; %s; %s; GNU tar %s\n' "$(qemu-img --version | head -1)" "$(skopeo --version)" \
        "$(dpkg-query -W -f 'docker-registry ${Version}' docker-registry 2>/dev/null)" "$(tar --version | head -1 | awk '{ print $NF }')"
    printf 'runs\t%s\n' "$RUNS"
    printf 'golden\t`debootstrap --variant=minbase %s` + %s, ext4 of %s (%s GiB used), recipe key %s; gzip level 6 (pigz), zstd level 3' \
        "$SUITE" "${PACKAGES//,/, }" "$DISK_SIZE" "${used:-?}" "$KEY"
    printf '\n'
    for spec in "${IMAGES[@]}"; do
        read -r name disk comp <<<"$spec"
        printf 'disk.%s\t%s\n' "$name" "$disk"
    done
} >"$META"

RESULTS=$BENCH_DIR/results
mkdir -p "$RESULTS"
cp "$RUNS_TSV" "$RESULTS/$DATE-runs.tsv"
"$REPORT" "$RUNS_TSV" "$META" "$RESULTS/$DATE-compare.md" "$WORK/chart.dat"
cp "$RESULTS/$DATE-compare.md" "$RESULTS/latest.md"
gnuplot -e "data='$WORK/chart.dat'; out='$RESULTS/latest.png'; stamp='$DATE, $(nproc) CPUs, median of $RUNS, bars: min–max'" \
    "$BENCH_DIR/chart.gp"
log "results: ${RESULTS#"$REPO"/}/$DATE-compare.md, latest.md, latest.png"
