#!/usr/bin/env bash
# The idle daemon (issue 13): what do 200 sources cost while nothing changes?
#
#   sudo benches/idle.sh [-n ROUNDS] [--sources N] [--idle-seconds S] [--no-build]
#
# Pushes examples/demo-layout to the bench registry (docker-registry on 127.0.0.1)
# under N tags (default 200), writes a daemon config with N `[[source]]` entries on one
# schedule (`0 */12 * * *`, max_concurrent_imports = 1, a `dir` backend in a scratch
# directory) and runs `bootsource daemon` on it. Then measures, from outside:
#   1. the first round: start to every source imported (N imports, one at a time);
#   2. idle RSS: VmRSS (/proc/PID/status) 10 s after the first round settled;
#   3. idle CPU: time on a CPU (/proc/PID/task/*/schedstat) over S seconds (default 60) with no
#      poll due, scaled to a day;
#   4. ROUNDS (default 5) poll rounds, each started by `bootsource poll` (SIGHUP: reload
#      and poll every source now), timed until bootsource_polls_total has grown by N
#      (/metrics, read every 50 ms), with the most connections open to the registry at
#      once (`ss`, sampled as often) and the CPU the round cost.
# Goals: a round <= 2 s with bounded concurrency; idle RSS <= 32 MiB; CPU s/day printed.
# Writes benches/results/DATE-idle.md and latest-idle.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

ROUNDS=5
SOURCES=200
IDLE_SECONDS=60
BUILD=1
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BOOTSOURCE=$TARGET_DIR/release/bootsource
while [ $# -gt 0 ]; do
    case $1 in
    -n) ROUNDS=$2; shift 2 ;;
    --sources) SOURCES=$2; shift 2 ;;
    --idle-seconds) IDLE_SECONDS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) die "usage: $0 [-n ROUNDS] [--sources N] [--idle-seconds S] [--no-build]" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the bench registry and its cache are root's)"
[ "$BUILD" = 0 ] || build_release
[ -x "$BOOTSOURCE" ] || die "$BOOTSOURCE missing"

WORK=$CACHE/idle-run
rm -rf "$WORK"
mkdir -p "$WORK/state" "$WORK/storage"
CONFIG=$WORK/config.toml
DAEMON_PID=
stop_daemon() {
    [ -z "$DAEMON_PID" ] || { kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=; }
}
trap 'stop_daemon; stop_registry' EXIT

start_registry
REPO_URL=http://127.0.0.1:$REGISTRY_PORT/v2/idle/demo
log "pushing examples/demo-layout as idle/demo:t1 … t$SOURCES"
skopeo copy -q --dest-tls-verify=false "oci:$REPO/examples/demo-layout:demo" \
    "docker://127.0.0.1:$REGISTRY_PORT/idle/demo:t1"
# (an OCI manifest need not name its own media type: the registry's header does)
MEDIA_TYPE=$(curl -fsS -o "$WORK/manifest" -w '%{content_type}' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REPO_URL/manifests/t1")
for i in $(seq 2 "$SOURCES"); do
    curl -fsS -X PUT -H "Content-Type: $MEDIA_TYPE" --data-binary "@$WORK/manifest" "$REPO_URL/manifests/t$i"
done

METRICS_PORT=$((20000 + RANDOM % 30000))
{
    cat <<EOF
namespace = "idle"
metrics_address = "127.0.0.1:$METRICS_PORT"
default_schedule = "0 */12 * * *"
insecure_registries = ["127.0.0.1:$REGISTRY_PORT"]
state_dir = "$WORK/state"
max_concurrent_imports = 1
registries_conf = ""
log_format = "json"

[storage.local]
kind = "dir"
path = "$WORK/storage"
EOF
    for i in $(seq "$SOURCES"); do
        printf '\n[[source]]\nname = "s%03d"\nimage = "docker://127.0.0.1:%s/idle/demo:t%s"\nstorage = "local"\nimports_to_keep = 1\n' \
            "$i" "$REGISTRY_PORT" "$i"
    done
} >"$CONFIG"
"$BOOTSOURCE" check-config "$CONFIG" >/dev/null

metrics() { curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null || true; }
metric() { # NAME: the sum of every series of NAME
    metrics | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
# Nanoseconds on a CPU of the daemon's threads (schedstat): an idle minute is below
# utime's 10 ms ticks.
cpu_ns() { cat /proc/"$DAEMON_PID"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }
rss_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$DAEMON_PID/status"; }
connections() { ss -tnH state established "dst 127.0.0.1:$REGISTRY_PORT" | wc -l; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }
TICK=$(getconf CLK_TCK)

LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
log "starting the daemon with $SOURCES sources"
START=$(now)
"$BOOTSOURCE" daemon --config "$CONFIG" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
until [ "$(metric bootsource_imports_total)" -ge "$SOURCES" ]; do
    kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon exited: $(tail -5 "$WORK/daemon.log")"
    awk -v s="$(since "$START")" 'BEGIN { exit !(s > 900) }' && die "the first round took over 15 minutes"
    sleep 0.5
done
FIRST_ROUND=$(since "$START")
FAILED=$(metrics | awk '/^bootsource_imports_total\{.*result="failure"/ { s += $2 } END { print s + 0 }')
log "first round (every source imported, $FAILED failed): $FIRST_ROUND s"

sleep 10
IDLE_RSS=$(rss_kib VmRSS)
log "idle RSS: $IDLE_RSS KiB (peak so far $(rss_kib VmHWM) KiB)"
c0=$(cpu_ns)
sleep "$IDLE_SECONDS"
IDLE_CPU=$(awk -v a="$(cpu_ns)" -v b="$c0" 'BEGIN { printf "%.4f", (a - b) / 1e9 }')
IDLE_DAY=$(awk -v c="$IDLE_CPU" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.1f", c * 86400 / s }')
log "idle CPU: $IDLE_CPU s in $IDLE_SECONDS s = $IDLE_DAY s/day"

TSV=$WORK/rounds.tsv
printf 'round\twall_s\tcpu_s\tmax_connections\trss_kib\tload1\n' >"$TSV"
for round in $(seq "$ROUNDS"); do
    polls=$(metric bootsource_polls_total)
    c0=$(cpu_ticks)
    load1=$(cut -d' ' -f1 /proc/loadavg)
    start=$(now)
    "$BOOTSOURCE" poll --config "$CONFIG" >/dev/null 2>&1
    most=0
    while [ "$(metric bootsource_polls_total)" -lt $((polls + SOURCES)) ]; do
        n=$(connections)
        [ "$n" -gt "$most" ] && most=$n
        awk -v s="$(since "$start")" 'BEGIN { exit !(s > 120) }' && die "round $round did not finish in 120 s"
        sleep 0.05
    done
    wall=$(since "$start")
    cpu=$(awk -v a="$(cpu_ticks)" -v b="$c0" -v t="$TICK" 'BEGIN { printf "%.2f", (a - b) / t }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wall" "$cpu" "$most" "$(rss_kib VmRSS)" "$load1" >>"$TSV"
    log "round $round: $wall s, $cpu s CPU, at most $most connections to the registry (load $load1)"
    sleep 5
done
POLL_FAILED=$(metrics | awk '/^bootsource_polls_total\{.*result="failure"/ { s += $2 } END { print s + 0 }')
AFTER_RSS=$(rss_kib VmRSS)
PEAK_RSS=$(rss_kib VmHWM)
LOAD_AFTER=$(uptime | sed 's/.*load average: //')

column_median() { # COLUMN
    tail -n +2 "$TSV" | cut -f"$1" | sort -n |
        awk '{ v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
ROUND_WALL=$(column_median 2)
ROUND_CPU=$(column_median 3)
MAX_CONN=$(tail -n +2 "$TSV" | cut -f4 | sort -n | tail -1)
day() { awk -v i="$IDLE_DAY" -v r="$ROUND_CPU" -v n="$1" 'BEGIN { printf "%.0f", i + n * r }'; }

DATE=$(date +%F)
RESULTS=$BENCH_DIR/results
OUT=$RESULTS/$DATE-idle.md
mkdir -p "$RESULTS"
{
    printf '# The idle daemon: %s sources on one schedule, %s\n\n' "$SOURCES" "$(date '+%F %H:%M %Z')"
    printf '%s CPUs, load average before %s, after %s; bootsource %s.\n' \
        "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$(git -C "$REPO" describe --always --dirty)"
    printf 'docker-registry on 127.0.0.1, examples/demo-layout under %s tags; `dir` storage.\n' "$SOURCES"
    printf 'Environment of the daemon: %s.\n\n' "$(env | grep '^MALLOC_' | tr '\n' ' ' | sed 's/ $//' | grep . || echo 'nothing set for the allocator')"
    printf '| figure | measured | goal |\n|---|---:|---|\n'
    printf '| first round: start to %s imports, one at a time (%s failed) | %s s | |\n' "$SOURCES" "$FAILED" "$FIRST_ROUND"
    printf '| poll round: `bootsource poll` to %s more polls counted, median of %s (%s polls failed) | **%s s** | <= 2 s |\n' \
        "$SOURCES" "$ROUNDS" "$POLL_FAILED" "$ROUND_WALL"
    printf '| connections open to the registry at once, most seen | %s | bounded |\n' "$MAX_CONN"
    printf '| CPU per poll round, median | %s s | |\n' "$ROUND_CPU"
    printf '| idle RSS (VmRSS, 10 s after the first round) | **%s MiB** | <= 32 MiB |\n' "$(mib "$IDLE_RSS")"
    printf '| RSS after the poll rounds / peak (VmHWM) | %s / %s MiB | |\n' "$(mib "$AFTER_RSS")" "$(mib "$PEAK_RSS")"
    printf '| idle CPU, no poll due (%s s in %s s measured) | %s s/day | printed |\n' "$IDLE_CPU" "$IDLE_SECONDS" "$IDLE_DAY"
    printf '| CPU per day: idle + 2 rounds (this schedule) / + 24 rounds (hourly) | %s / %s s | |\n\n' "$(day 2)" "$(day 24)"
    printf 'Every round:\n\n```\n'
    cat "$TSV"
    printf '```\n'
} >"$OUT"
cp "$OUT" "$RESULTS/latest-idle.md"
cat "$OUT"
