# Shared by build-images.sh and compare.sh: paths, logging, the local registry.
# Sourced, not run. Expects REPO (the repository root) to be set.

BENCH_DIR="$REPO/benches"
CACHE="${BOOTSOURCE_BENCH_CACHE:-$BENCH_DIR/cache}"
REGISTRY_STORAGE="$CACHE/registry/storage"

# The golden image recipe. Changing any of it changes KEY, so a rebuild happens in a
# new directory and nothing stale is reused.
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
PACKAGES=linux-image-amd64,systemd,python3,gcc
DISK_SIZE=4G
MICRO_SIZE_MIB=384
RECIPE_VERSION=1
KEY=$(printf '%s\n' "$RECIPE_VERSION" "$SUITE" "$PACKAGES" "$DISK_SIZE" "$MICRO_SIZE_MIB" |
    sha256sum | cut -c1-12)
GOLDEN="$CACHE/golden-$KEY"

# The end-to-end images: NAME  DISK-FILE (in $GOLDEN)  LAYER-COMPRESSION
IMAGES=(
    "qcow2-deflate.gzip deflate.qcow2 gzip"
    "qcow2.gzip plain.qcow2 gzip"
    "qcow2.zstd plain.qcow2 zstd"
    "raw.gzip disk.raw gzip"
)
# Small images for the criterion benches (OCI layouts only, never pushed).
MICRO_IMAGES=(
    "micro-qcow2-deflate.gzip micro-deflate.qcow2 gzip"
    "micro-qcow2-zstd.zstd micro-zstd.qcow2 zstd"
    "micro-qcow2.gzip micro-plain.qcow2 gzip"
    "micro-raw.gzip micro.raw gzip"
)
TAG=bench

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The release binaries the benches run: bootsource and the bench helpers
# (decompress, convert-disk, stage-alone, link, bench-report).
build_release() {
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet -p bootsource -p bootsource-benches --bins)
}

# The OCI layout directory of image NAME.
layout_dir() { echo "$GOLDEN/oci/$1"; }

# The layer blob of image NAME (its only layer), from its layout.
layer_blob() {
    local dir manifest digest
    dir=$(layout_dir "$1")
    manifest=$(jq -r '.manifests[0].digest' "$dir/index.json")
    digest=$(jq -r '.layers[0].digest' "$dir/blobs/sha256/${manifest#sha256:}")
    echo "$dir/blobs/sha256/${digest#sha256:}"
}

manifest_digest() { jq -r '.manifests[0].digest' "$(layout_dir "$1")/index.json"; }

REGISTRY_PID=
REGISTRY_PORT=

# Starts docker-registry on a free 127.0.0.1 port with the cached storage; sets
# REGISTRY_PORT and stops the registry when the calling shell exits.
start_registry() {
    command -v docker-registry >/dev/null || die "docker-registry missing (apt-get install docker-registry)"
    mkdir -p "$REGISTRY_STORAGE"
    local dir="$CACHE/registry" attempt
    for attempt in 1 2 3 4 5; do
        REGISTRY_PORT=$((20000 + RANDOM % 30000))
        ss -ltnH "sport = :$REGISTRY_PORT" | grep -q . && continue
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_STORAGE
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: bootsource-bench
EOF
        docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
        REGISTRY_PID=$!
        trap stop_registry EXIT
        local i
        for i in $(seq 100); do
            curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 && return 0
            kill -0 "$REGISTRY_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_registry
    done
    die "docker-registry did not start: $(tail -5 "$dir/registry.log")"
}

stop_registry() {
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
        REGISTRY_PID=
    fi
}

# The reference of image NAME: at the registry, or through whatever listens on
# REF_PORT in front of it (the rate-limited link of link.sh and resume.sh).
registry_ref() { echo "docker://127.0.0.1:${REF_PORT:-$REGISTRY_PORT}/bench/$1:$TAG"; }

LINK_PID=
# start_link RATE [CUT_AFTER_BYTES]: `link` (src/bin/link.rs, path in LINK) in front of
# the registry (or whatever listens on UPSTREAM_PORT) at RATE MB/s; sets REF_PORT.
# Stopped by stop_link.
start_link() {
    coproc LINKPROC { exec "$LINK" "127.0.0.1:${UPSTREAM_PORT:-$REGISTRY_PORT}" "$@"; }
    LINK_PID=$LINKPROC_PID
    read -r REF_PORT <&"${LINKPROC[0]}"
}
stop_link() { [ -z "$LINK_PID" ] || { kill "$LINK_PID" 2>/dev/null; wait "$LINK_PID" 2>/dev/null || true; LINK_PID=; }; }

# measure NAME COMMAND...: runs COMMAND, its output appended to MEASURE_OUT (default
# LOG) and its errors to LOG; sets WALL and USED (user + system CPU seconds).
measure() {
    /usr/bin/time -f '%e %U %S' -o "$WORK/time" "${@:2}" >>"${MEASURE_OUT:-$LOG}" 2>>"$LOG" ||
        { tail -5 "$LOG" >&2; die "$1 failed: ${*:2}"; }
    read -r WALL USED < <(awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$WORK/time")
}

# What compare.sh and link.sh run and measure. A run sets WORK (scratch lives in
# $WORK/scratch), LOG, and CPU=0 RSS=0 SCRATCH=0 STEPS= before its first step.
cold() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

cached_kib() { awk '/^Cached:/ { print $2 }' /proc/meminfo; }
allocated() { [ -e "$1" ] && echo $(($(stat -c '%b * %B' "$1"))) || echo 0; }
now() { date +%s.%N; }

# timed STEP COMMAND...: runs COMMAND under /usr/bin/time; adds its CPU time to CPU,
# raises RSS to its peak, records its wall time in STEPS.
timed() {
    local step=$1 wall user sys rss
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >>"$LOG" 2>&1 ||
        { log "$step failed: $*"; tail -5 "$LOG" >&2; return 1; }
    read -r wall user sys rss < <(tail -1 "$WORK/time")
    CPU=$(awk -v a="$CPU" -v b="$user" -v c="$sys" 'BEGIN { print a + b + c }')
    [ "$rss" -gt "$RSS" ] && RSS=$rss
    STEPS="${STEPS:+$STEPS,}$step=$wall"
}

# The layer blob in a skopeo `dir:` copy.
dir_layer() { echo "$1/$(jq -r '.layers[0].digest | sub("sha256:"; "")' "$1/manifest.json")"; }

run_cdi() { # NAME FORMAT COMPRESSION TARGET
    local name=$1 format=$2 comp=$3 target=$4 scratch=$WORK/scratch
    mkdir -p "$scratch/extract"
    timed download skopeo copy -q --src-tls-verify=false "$(registry_ref "$name")" "dir:$scratch/image" || return
    local blob
    blob=$(dir_layer "$scratch/image")
    case $comp in
    gzip) timed extract tar -xzf "$blob" -C "$scratch/extract" || return ;;
    zstd) timed extract tar --zstd -xf "$blob" -C "$scratch/extract" || return ;;
    esac
    # Nothing is deleted before the conversion ends: this is the peak.
    SCRATCH=$(du -sB1 "$scratch" | cut -f1)
    timed convert qemu-img convert -t writeback -f "$format" -O raw "$scratch/extract/disk/disk.img" "$target" || return
    timed sync sync -f "$target"
}

