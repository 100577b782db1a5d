#!/usr/bin/env bash
# Builds the benchmark images once and caches them under benches/cache/.
#
#   sudo benches/build-images.sh            # build what is missing, push to the registry
#   sudo benches/build-images.sh --no-push  # OCI layouts only
#
# The golden image: `debootstrap --variant=minbase bookworm` plus a kernel, systemd,
# python3 and gcc, in a 4 GiB ext4 filesystem (`mkfs.ext4 -d`), as
#   disk.raw        raw
#   plain.qcow2     qemu-img convert -O qcow2
#   deflate.qcow2   qemu-img convert -c -O qcow2 (deflate clusters)
# each packaged as a container disk (one layer holding disk/disk.img, like
# kubevirt/containerdisks) with a gzip layer, and plain.qcow2 also with a zstd layer;
# written as OCI layouts and pushed byte-exact to a local docker-registry whose storage
# lives in the cache. The first 384 MiB of the disk give the small images of the
# criterion benches (micro-*.qcow2, micro.raw and their layouts).
#
# Every step writes to a temporary name and renames when done, so a rerun skips what
# is finished and redoes what was interrupted. The directory is keyed by the recipe
# (see lib.sh): changing the recipe builds afresh beside the old one.
#
# A shell script rather than a Rust binary: every step is an existing tool
# (debootstrap, mkfs.ext4, qemu-img, tar, pigz, zstd, skopeo, docker-registry); the
# script is the list of commands a person would type, with a cache around each.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/benches/lib.sh"

PUSH=1
case "${1:-}" in
--no-push) PUSH=0 ;;
"") ;;
*) die "usage: $0 [--no-push]" ;;
esac

GZIP_LEVEL=6 # gzip's and Go's compress/gzip default
ZSTD_LEVEL=3 # zstd's default, and what buildah/podman use

need() {
    local tool=$1 package=$2
    command -v "$tool" >/dev/null && return
    [ "$(id -u)" = 0 ] || die "$tool missing; run as root to install $package"
    log "installing $package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; }
}

need debootstrap debootstrap
need mkfs.ext4 e2fsprogs
need qemu-img qemu-utils
need pigz pigz
need zstd zstd
need jq jq
need skopeo skopeo
need docker-registry docker-registry
need curl curl

mkdir -p "$GOLDEN"

build_rootfs() {
    [ -e "$GOLDEN/rootfs.done" ] && return
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    log "debootstrap $SUITE (+ $PACKAGES): a few minutes"
    rm -rf "$GOLDEN/rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$GOLDEN/rootfs" "$MIRROR" \
        >"$GOLDEN/debootstrap.log" 2>&1 || die "debootstrap failed: see $GOLDEN/debootstrap.log"
    # A golden image ships without the package cache.
    rm -f "$GOLDEN"/rootfs/var/cache/apt/archives/*.deb "$GOLDEN"/rootfs/var/lib/apt/lists/*_Packages
    touch "$GOLDEN/rootfs.done"
}

# make OUTPUT COMMAND...: runs COMMAND with $TMP_OUT as the output unless OUTPUT exists.
make_file() {
    local out=$1
    shift
    [ -e "$out" ] && return
    TMP_OUT="$out.tmp"
    rm -f "$TMP_OUT"
    log "building ${out#"$REPO"/}"
    "$@"
    mv "$TMP_OUT" "$out"
}

mkfs_disk() {
    truncate -s "$DISK_SIZE" "$TMP_OUT"
    # Fixed UUID and hash seed: the same tree gives a comparable filesystem.
    mkfs.ext4 -q -F -L bench-root -U 0b5f6e0a-8c1e-4f5c-9d7e-3a2b1c0d9e8f \
        -E hash_seed=5e7d3c1a-2b4f-4a6e-8d9c-0f1e2d3c4b5a -d "$GOLDEN/rootfs" "$TMP_OUT"
}

micro_raw() {
    dd if="$GOLDEN/disk.raw" of="$TMP_OUT" bs=1M count="$MICRO_SIZE_MIB" conv=sparse status=none
}

to_qcow2() { # SOURCE [qemu-img convert options]
    local src=$1
    shift
    qemu-img convert -f raw -O qcow2 "$@" "$src" "$TMP_OUT"
}

compress() { # gzip|zstd
    case $1 in
    gzip) pigz -n -"$GZIP_LEVEL" ;;
    zstd) zstd -q -"$ZSTD_LEVEL" -T0 ;;
    esac
}

decompress() {
    case $1 in
    gzip) pigz -dc ;;
    zstd) zstd -dcq ;;
    esac
}

media_type() {
    case $1 in
    gzip) echo application/vnd.oci.image.layer.v1.tar+gzip ;;
    zstd) echo application/vnd.oci.image.layer.v1.tar+zstd ;;
    esac
}

# put_blob DIR FILE: moves FILE into DIR's blob store; prints "sha256:HEX SIZE".
put_blob() {
    local dir=$1 file=$2 hex size
    hex=$(sha256sum "$file" | cut -d' ' -f1)
    size=$(stat -c %s "$file")
    mkdir -p "$dir/blobs/sha256"
    mv "$file" "$dir/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

# make_layout NAME DISK COMPRESSION: an OCI layout with one layer holding disk/disk.img.
make_layout() {
    local name=$1 disk=$2 comp=$3
    local dir
    dir=$(layout_dir "$name")
    [ -e "$dir/index.json" ] && return
    log "packaging $name ($disk, $comp layer)"
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp" "$GOLDEN/stage/$name/disk"
    ln -f "$GOLDEN/$disk" "$GOLDEN/stage/$name/disk/disk.img"
    # What kubevirt/containerdisks writes: disk/ (0555) and disk/disk.img (0444), 107:107.
    tar --create --format=gnu --sort=name --numeric-owner --owner=107 --group=107 \
        --mode=a=rX --mtime=@0 -C "$GOLDEN/stage/$name" disk | compress "$comp" >"$dir.tmp/layer"
    rm -rf "$GOLDEN/stage/$name"
    local diff_id layer_digest layer_size
    diff_id=sha256:$(decompress "$comp" <"$dir.tmp/layer" | sha256sum | cut -d' ' -f1)
    read -r layer_digest layer_size < <(put_blob "$dir.tmp" "$dir.tmp/layer")

    printf '{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
        "$diff_id" >"$dir.tmp/config"
    local config_digest config_size
    read -r config_digest config_size < <(put_blob "$dir.tmp" "$dir.tmp/config")

    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
        "$config_digest" "$config_size" "$(media_type "$comp")" "$layer_digest" "$layer_size" >"$dir.tmp/manifest"
    local manifest_digest manifest_size
    read -r manifest_digest manifest_size < <(put_blob "$dir.tmp" "$dir.tmp/manifest")

    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir.tmp/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest_digest" "$manifest_size" "$TAG" >"$dir.tmp/index.json"
    mv "$dir.tmp" "$dir"
}

# push NAME: copies the layout to the registry byte for byte, once per manifest digest.
push() {
    local name=$1 digest marker pushed
    digest=$(manifest_digest "$name")
    marker="$CACHE/registry/pushed/$name.${digest#sha256:}"
    [ -e "$marker" ] && return
    log "pushing $name to 127.0.0.1:$REGISTRY_PORT"
    skopeo copy -q --preserve-digests --dest-tls-verify=false \
        "oci:$(layout_dir "$name"):$TAG" "$(registry_ref "$name")"
    pushed=sha256:$(skopeo inspect --raw --tls-verify=false "$(registry_ref "$name")" | sha256sum | cut -d' ' -f1)
    [ "$pushed" = "$digest" ] || die "$name: the registry holds manifest $pushed, the layout $digest"
    mkdir -p "$(dirname "$marker")"
    rm -f "$CACHE/registry/pushed/$name".*
    touch "$marker"
}

build_rootfs
make_file "$GOLDEN/disk.raw" mkfs_disk
make_file "$GOLDEN/plain.qcow2" to_qcow2 "$GOLDEN/disk.raw"
make_file "$GOLDEN/deflate.qcow2" to_qcow2 "$GOLDEN/disk.raw" -c
make_file "$GOLDEN/micro.raw" micro_raw
make_file "$GOLDEN/micro-plain.qcow2" to_qcow2 "$GOLDEN/micro.raw"
make_file "$GOLDEN/micro-deflate.qcow2" to_qcow2 "$GOLDEN/micro.raw" -c
make_file "$GOLDEN/micro-zstd.qcow2" to_qcow2 "$GOLDEN/micro.raw" -c -o compression_type=zstd

for spec in "${IMAGES[@]}" "${MICRO_IMAGES[@]}"; do
    # shellcheck disable=SC2086 # three words by construction
    make_layout $spec
done

if [ "$PUSH" = 1 ]; then
    start_registry
    for spec in "${IMAGES[@]}"; do
        push "${spec%% *}"
    done
    stop_registry
fi
log "images ready in ${GOLDEN#"$REPO"/}"
