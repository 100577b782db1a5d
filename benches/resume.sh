#!/usr/bin/env bash
# What a dropped connection costs (issue 13: at 50%, <= 5% extra bytes, <= 10% extra time).
#
#   sudo benches/resume.sh [-n RUNS] [--rate MB/s] [--images "NAME …"] [--no-build]
#
# Imports build-images.sh's images through `link` (src/bin/link.rs) at RATE MB/s
# (default 100), RUNS rounds (default 3) of: an uncut import, and one whose layer
# download is cut once, mid-answer, when half the layer has crossed the link (bootsource
# resumes it with a Range request). Reports the medians, the cut import's bytes
# downloaded over the layer's size, and its time over the uncut one's. Every result is
# checked with `qemu-img compare`. Writes benches/results/DATE-resume.md and
# latest-resume.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

RUNS=3
RATE=100
ONLY=
BUILD=1
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
LINK=$TARGET_DIR/release/link
while [ $# -gt 0 ]; do
    case $1 in
    -n) RUNS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --images) ONLY=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n RUNS] [--rate MB/s] [--images \"NAME …\"] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root: every run drops the page cache"
[ "$BUILD" = 0 ] || build_release
"$BENCH_DIR/build-images.sh"
start_registry
WORK=$CACHE/resume-run
rm -rf "$WORK"
mkdir -p "$WORK"
TSV=$WORK/runs.tsv
printf 'image\tcut\tround\twall_s\tdownloaded\tlayer\tverified\tload1\n' >"$TSV"

trap 'stop_link; stop_registry' EXIT

run_one() { # NAME CUT(0|1) ROUND
    local name=$1 cut=$2 round=$3 layer target=$WORK/target.img start wall report verified
    layer=$(stat -c %s "$(layer_blob "$name")")
    # shellcheck disable=SC2046 # no cut: no third argument
    start_link "$RATE" $([ "$cut" = 1 ] && echo $((layer / 2)))
    rm -f "$target"
    cold
    start=$(now)
    report=$("$BOOTSOURCE" import "$(registry_ref "$name")" --to "$target" --tls-verify=false --json 2>"$WORK/log") ||
        { log "import failed: $(tail -3 "$WORK/log")"; report='{}'; }
    wall=$(awk -v a="$(now)" -v b="$start" 'BEGIN { print a - b }')
    stop_link
    qemu-img compare -q -f raw -F raw "$GOLDEN/disk.raw" "$target" 2>/dev/null && verified=ok || verified=DIFFERENT
    rm -f "$target"
    printf '%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\n' "$name" "$cut" "$round" "$wall" \
        "$(jq -r '.downloaded // 0' <<<"$report")" "$layer" "$verified" "$(cut -d' ' -f1 /proc/loadavg)" >>"$TSV"
    log "$name cut=$cut round $round: $wall s, $verified"
}

LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
for spec in "${IMAGES[@]}"; do
    read -r name _ _ <<<"$spec"
    [ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]] || continue
    for round in $(seq "$RUNS"); do
        run_one "$name" 0 "$round"
        run_one "$name" 1 "$round"
    done
done
LOAD_AFTER=$(uptime | sed 's/.*load average: //')

DATE=$(date +%F)
OUT=$BENCH_DIR/results/$DATE-resume.md
{
    printf '# A connection cut at 50%% of the layer, at %s MB/s, %s\n\n' "$RATE" "$(date '+%F %H:%M %Z')"
    printf '%s CPUs, load average before %s, after %s; bootsource %s; median of %s runs, cold page cache.\n\n' \
        "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$(git -C "$REPO" describe --always --dirty)" "$RUNS"
    printf '| image | uncut s | cut s | time cut / uncut | bytes downloaded / layer (cut) | verified |\n|---|---:|---:|---:|---:|---|\n'
    awk -F'\t' 'NR > 1 {
        k = $1; keys[k] = 1; n[k, $2]++; t[k, $2, n[k, $2]] = $4
        if ($2 == 1) { d[k] += $5 / $6; nd[k]++ }
        if ($7 != "ok") bad[k] = "NO"
    }
    function median(k, c,   m, i, j, v, x) {
        m = n[k, c]; for (i = 1; i <= m; i++) v[i] = t[k, c, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
        return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END { for (k in keys) { u = median(k, 0); c = median(k, 1)
        printf "| %s | %.2f | %.2f | %.3f | %.3f | %s |\n", k, u, c, c / u, d[k] / nd[k], (k in bad) ? "NO" : "all" } }' "$TSV" | sort
} >"$OUT"
cp "$OUT" "$BENCH_DIR/results/latest-resume.md"
cat "$OUT"
