#!/usr/bin/env bash
# Imports over a link of a given speed (issue 13): is bootsource as fast as the link?
#
#   sudo benches/link.sh [-n RUNS] [--rates "50 100 200"] [--images "NAME …"]
#                        [--no-cdi] [--baseline BOOTSOURCE] [--no-build]
#
# Runs build-images.sh's images from the bench registry through `link` (src/bin/link.rs),
# a TCP relay on 127.0.0.1 pacing everything the server sends to RATE MB/s, and one disk
# file over HTTP: raw.xz, the golden disk.raw compressed as vendors do (`xz -T2 -3`:
# blocks that decode on every core), served by nginx behind the same link. For each
# rate and image, RUNS rounds (default 3), cold page cache each time, of:
#   1. download: curl -o /dev/null of the layer blob (or the file) through the link
#   2. bootsource import docker://…link…/bench/IMAGE:bench (http://…/disk.raw.xz) --to FILE
#   3. CDI-style: skopeo copy through the link to dir:, extract, qemu-img convert, sync
#      (for the file: curl to scratch, xz -d -T0, qemu-img convert, sync)
# and prints the medians with bootsource's time over the download's (the goal: <= 1.05)
# and the stage bootsource's report names as its limit. Every result is checked with
# `qemu-img compare`. Writes benches/results/DATE-link.md and latest-link.md.
#
# The link is not the only physical limit, so each round also measures three more
# floors and the table sets bootsource against the highest of the four:
#   decode: when one thread decompressing the layer (src/bin/decompress.rs, the
#           importer's decoders) could end at best, fed at the link's rate — a megabyte
#           of gzip can hold a gigabyte of zeros, whose inflating can only follow it;
#   writes: the disk writing what bootsource wrote, alone (src/bin/stage-alone.rs
#           write: the same data ranges to a new file beside the target, fdatasync);
#   CPU:    the CPU the import's work needs, spread over the cores: its big stages
#           alone on the same bytes, as floor.sh measures them (sha256 of a layer, the
#           decompressing, a qcow2's decode with its cluster inflate, the writes), plus
#           what the far end of the link spent serving the download round (`link` and
#           the registry or nginx, which share these cores with the importer as no
#           real server would). A lower bound: the tar walk and a raw disk's zero scan
#           are left out, since alone they would read the decompressed bytes from a
#           file, a copy the import never makes.
#   --no-cdi             skips 3 (the slowest by far), for a quick look;
#   --baseline BINARY    adds another bootsource build as a contender in every round, to
#                        measure a change against what it changes (A/B): the two take
#                        turns going first, since the second of two imports in a row
#                        ran 0.08-0.38 s slower at 200 MB/s with identical code
#                        (benches/results/2026-12-03-link-order.md).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"
source "$REPO/benches/http-lib.sh"

RUNS=3
LINK_CPU=0
RATES="50 100 200"
ONLY=
CONTENDERS="download bootsource cdi"
BASELINE=
BUILD=1
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
LINK=$TARGET_DIR/release/link
DECOMPRESS=$TARGET_DIR/release/decompress
STAGE_ALONE=$TARGET_DIR/release/stage-alone
CONVERT_DISK=$TARGET_DIR/release/convert-disk
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --images) ONLY=$2; shift 2 ;;
    --no-cdi) CONTENDERS=${CONTENDERS% cdi}; shift ;;
    --baseline) BASELINE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n RUNS] [--rates \"MB/s …\"] [--images \"NAME …\"] [--no-cdi] [--baseline BOOTSOURCE] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root: every run drops the page cache"
if [ -n "$BASELINE" ]; then
    [ -x "$BASELINE" ] || die "$BASELINE is not an executable"
    CONTENDERS="download baseline bootsource ${CONTENDERS#download bootsource}"
fi
[ "$BUILD" = 0 ] || build_release
"$BENCH_DIR/build-images.sh"
start_registry

WORK=$CACHE/link-run
rm -rf "$WORK"
mkdir -p "$WORK/logs"
TSV=$WORK/runs.tsv
printf 'rate\timage\tcontender\tround\twall_s\tcpu_s\trss_kib\tverified\tlimited_by\tload1\n' >"$TSV"

trap 'stop_link; stop_registry' EXIT

# The disk file over HTTP (NAME DISK COMPRESSION, as IMAGES), and nginx serving it.
HTTP_IMAGES=("raw.xz disk.raw xz")
XZ_FILE=$GOLDEN/disk.raw.xz
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
if wanted raw.xz; then
    if [ ! -s "$XZ_FILE" ]; then
        log "xz -T2 -3 of disk.raw, once"
        xz -T2 -3 -c "$GOLDEN/disk.raw" >"$XZ_FILE.part"
        mv "$XZ_FILE.part" "$XZ_FILE"
    fi
    mkdir -p "$WORK/nginx/www"
    ln -s "$XZ_FILE" "$WORK/nginx/www/disk.raw.xz"
    serve "$WORK/nginx/www" "$WORK/nginx"
    trap 'stop_link; stop_registry; kill "$NGINX" 2>/dev/null' EXIT
fi
is_file() { [ "$1" = raw.xz ]; }
# The far end of the link for IMAGE: the relay and the server, whose CPU ticks
# (utime + stime of each and its live children, e.g. nginx's workers) are summed.
far_end_ticks() { # NAME
    local server=$REGISTRY_PID pid
    if is_file "$1"; then server=$NGINX; fi
    for pid in "$LINK_PID" "$server" $(pgrep -P "$server" || true); do
        awk '{ print $14 + $15 }' "/proc/$pid/stat"
    done | awk '{ t += $1 } END { print t }'
}
# The bytes IMAGE's source serves: its layer blob, or the file.
source_bytes() { if is_file "$1"; then echo "$XZ_FILE"; else layer_blob "$1"; fi; }

blob_url() { # NAME
    if is_file "$1"; then
        echo "http://127.0.0.1:$REF_PORT/disk.raw.xz"
        return
    fi
    local digest
    digest=$(basename "$(layer_blob "$1")")
    echo "http://127.0.0.1:$REF_PORT/v2/bench/$1/blobs/sha256:$digest"
}

# The source bootsource imports IMAGE from, through the link.
source_ref() { if is_file "$1"; then blob_url "$1"; else registry_ref "$1"; fi; }

run_cdi_file() { # TARGET: the CDI-style path for the file over HTTP
    local scratch=$WORK/scratch
    mkdir -p "$scratch"
    timed download curl -fsS -o "$scratch/disk.raw.xz" "$(blob_url raw.xz)" || return
    timed extract xz -d -T0 "$scratch/disk.raw.xz" || return
    SCRATCH=$(du -sB1 "$scratch" | cut -f1)
    timed convert qemu-img convert -t writeback -f raw -O raw "$scratch/disk.raw" "$1" || return
    timed sync sync -f "$1"
}

# row RATE NAME CONTENDER ROUND WALL VERIFIED LIMITED LOAD1: one line of runs.tsv.
row() {
    printf '%s\t%s\t%s\t%s\t%.3f\t%.2f\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$CPU" "$RSS" "$6" "$7" "$8" >>"$TSV"
    log "$(printf '%s MB/s %s round %s %s: %.2f s %s %s' "$1" "$2" "$4" "$3" "$5" "$6" "$7")"
}

# The CPU seconds of the stages that do not depend on the link or the target: the
# layer's sha256 and a qcow2's decode (convert-disk: tables and cluster inflate), once
# per image, the least of two runs (noise only adds to a floor). STAGES_CPU[NAME].
declare -A STAGES_CPU
stages_cpu() { # NAME DISK
    [ -z "${STAGES_CPU[$1]:-}" ] || return 0
    STAGES_CPU[$1]=$(least_of_two stages_alone "$1" "$2")
    log "$1: its sha256 and decode alone take ${STAGES_CPU[$1]} s of CPU"
}
stages_alone() { # NAME DISK: prints their CPU seconds
    local sha=0 decode=0
    if ! is_file "$1"; then
        measure sha256 "$STAGE_ALONE" sha256 "$(layer_blob "$1")"
        sha=$USED
    fi
    if [ "$2" != disk.raw ]; then
        measure decode "$CONVERT_DISK" "$GOLDEN/$2" /dev/null
        decode=$USED
    fi
    awk -v a="$sha" -v b="$decode" 'BEGIN { printf "%.3f\n", a + b }'
}
least_of_two() { local a b; a=$("$@"); b=$("$@"); awk -v a="$a" -v b="$b" 'BEGIN { print (a < b ? a : b) }'; }

# floors RATE NAME DISK ROUND TARGET: the decode floor of the layer at RATE, the disk
# writing TARGET's data alone (cold cache), and the CPU floor (LINK_CPU is the far
# end's CPU in this round's download).
floors() {
    local rate=$1 name=$2 disk=$3 round=$4 like=$5 written=$WORK/written.img decode_cpu
    RSS=0
    rm -f "$WORK/decode-floor"
    MEASURE_OUT=$WORK/decode-floor measure decompress "$DECOMPRESS" "$(source_bytes "$name")" --rates "$rate"
    CPU=$USED decode_cpu=$USED
    row "$rate" "$name" decode "$round" "$(awk 'NR == 2 { print $2 }' "$WORK/decode-floor")" - - "$(cut -d' ' -f1 /proc/loadavg)"
    rm -f "$written"
    cold
    measure write "$STAGE_ALONE" write "$like" "$written"
    CPU=$USED
    row "$rate" "$name" writes "$round" "$WALL" - - "$(cut -d' ' -f1 /proc/loadavg)"
    rm -f "$written"
    stages_cpu "$name" "$disk"
    CPU=$(awk -v a="${STAGES_CPU[$name]}" -v b="$decode_cpu" -v c="$CPU" -v d="$LINK_CPU" 'BEGIN { print a + b + c + d }')
    row "$rate" "$name" cpu "$round" "$(awk -v s="$CPU" -v n="$(nproc)" 'BEGIN { print s / n }')" - - "$(cut -d' ' -f1 /proc/loadavg)"
}

run_one() { # RATE NAME DISK COMPRESSION CONTENDER ROUND
    local rate=$1 name=$2 disk=$3 comp=$4 contender=$5 round=$6
    local format=qcow2 target=$WORK/target.img start wall verified=- limited=-
    [ "$disk" = disk.raw ] && format=raw
    LOG=$WORK/logs/$rate.$name.$contender.$round.log
    CPU=0 RSS=0 SCRATCH=0 STEPS=
    rm -rf "$target" "$WORK/scratch"
    cold
    local load1
    load1=$(cut -d' ' -f1 /proc/loadavg)
    start=$(now)
    case $contender in
    download)
        local ticks
        ticks=$(far_end_ticks "$name")
        timed download curl -fsS -o /dev/null "$(blob_url "$name")" &&
            LINK_CPU=$(awk -v a="$(far_end_ticks "$name")" -v b="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (a - b) / hz }') &&
            log "the far end of the link spent $LINK_CPU s of CPU serving it" ;;
    bootsource | baseline)
        local binary=$BOOTSOURCE
        [ "$contender" = bootsource ] || binary=$BASELINE
        timed import "$binary" import "$(source_ref "$name")" --to "$target" --tls-verify=false --json
        limited=$(grep -o '"limited_by": *"[a-z]*"' "$LOG" | tail -1 | sed 's/.*"\([a-z]*\)"$/\1/') ;;
    cdi) if is_file "$name"; then run_cdi_file "$target"; else run_cdi "$name" "$format" "$comp" "$target"; fi ;;
    esac || verified=FAILED
    wall=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
    if [ "$verified" = - ] && [ "$contender" != download ]; then
        qemu-img compare -q -f raw -F raw "$GOLDEN/disk.raw" "$target" && verified=ok || verified=DIFFERENT
    fi
    row "$rate" "$name" "$contender" "$round" "$wall" "$verified" "$limited" "$load1"
    [ "$contender:$verified" != bootsource:ok ] || floors "$rate" "$name" "$disk" "$round" "$target"
    rm -rf "$target" "$WORK/scratch"
}

# in_turn ROUND CONTENDER...: the contenders, baseline and bootsource swapped in even
# rounds.
in_turn() {
    local round=$1
    shift
    if [ $((round % 2)) = 0 ]; then
        echo "$*" | sed 's/baseline bootsource/bootsource baseline/'
    else
        echo "$*"
    fi
}

LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
for rate in $RATES; do
    for spec in "${IMAGES[@]}" "${HTTP_IMAGES[@]}"; do
        read -r name disk comp <<<"$spec"
        wanted "$name" || continue
        if is_file "$name"; then UPSTREAM_PORT=$PORT; else UPSTREAM_PORT=$REGISTRY_PORT; fi
        start_link "$rate"
        for round in $(seq "$RUNS"); do
            for contender in $(in_turn "$round" $CONTENDERS); do
                run_one "$rate" "$name" "$disk" "$comp" "$contender" "$round"
            done
        done
        stop_link
    done
done
LOAD_AFTER=$(uptime | sed 's/.*load average: //')

DATE=$(date +%F)
RESULTS=$BENCH_DIR/results
OUT=$RESULTS/$DATE-link.md
mkdir -p "$RESULTS"
{
    printf '# bootsource over a rate-limited link, %s\n\n' "$(date '+%F %H:%M %Z')"
    printf '%s CPUs, load average before %s, after %s; bootsource %s; median of %s runs, cold page cache.\n' \
        "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$(git -C "$REPO" describe --always --dirty)" "$RUNS"
    printf 'The link: `link` (benches/src/bin/link.rs) relaying the bench registry on 127.0.0.1.\n'
    [ -z "$BASELINE" ] || printf 'Baseline: %s (%s), in every round, first in odd rounds and second in even ones.\n' "$BASELINE" "$(sha256sum "$BASELINE" | cut -c1-12)"
    printf '\n| MB/s | image | download only s | decode floor s | writes alone s | CPU floor s | bootsource s | / download | / highest floor | limited by | baseline / download | CDI-style s | CDI-style / download | verified |\n'
    printf '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n'
    awk -F'\t' 'NR > 1 {
        key = $1 "\t" $2; keys[key] = 1
        n[key, $3]++; t[key, $3, n[key, $3]] = $5
        if ($3 == "bootsource") lim[key] = $9
        if ($8 != "ok" && $8 != "-") bad[key] = bad[key] " " $3 ":" $8
    }
    function median(key, c,   m, i, j, v, tmp) {
        m = n[key, c]
        if (!m) return -1
        for (i = 1; i <= m; i++) v[i] = t[key, c, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { tmp = v[i]; v[i] = v[j]; v[j] = tmp }
        return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    function opt(x, y) { return x < 0 ? "–" : sprintf("%.2f", y) }
    END {
        for (key in keys) {
            split(key, k, "\t")
            d = median(key, "download"); b = median(key, "bootsource"); a = median(key, "baseline"); c = median(key, "cdi")
            f1 = median(key, "decode"); f2 = median(key, "writes"); f3 = median(key, "cpu"); f = d
            if (f1 > f) f = f1
            if (f2 > f) f = f2
            if (f3 > f) f = f3
            printf "| %s | %s | %.2f | %s | %s | %s | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s |\n", k[1], k[2], d, opt(f1, f1), opt(f2, f2), opt(f3, f3),
                b, b / d, b / f, lim[key], opt(a, a / d), opt(c, c), opt(c, c / d), (key in bad) ? bad[key] : "all"
        }
    }' "$TSV" | sort -t'|' -k2,2n -k3,3
} >"$OUT"
cp "$OUT" "$RESULTS/latest-link.md"
cp "$TSV" "$RESULTS/$DATE-link-runs.tsv"
cat "$OUT"
