#!/usr/bin/env bash
# Makes the seed inputs in fuzz/seeds/ from real tools (GNU tar, gzip, qemu-img,
# qemu-io) and real files of this repository, each a few KiB. The seeds are committed;
# run this again only to change them (the same bytes each time, but for the process id
# GNU tar writes into the names of sparse PAX entries). Needs: tar gzip qemu-utils
# python3.
set -euo pipefail
cd "$(dirname "$0")"
seeds=$PWD/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
# Deterministic bytes: the same seeds on every run.
noise() { # length, seed
  python3 -c "import random, sys; random.seed($2); sys.stdout.buffer.write(random.randbytes($1))"
}
mkdir -p "$seeds"/{tar_walker,gzip,config,auth_file,manifest,qcow2_decoder}
mkdir -p "$seeds"/{vmdk_decoder,vhd_decoder,vdi_decoder,ova_decoder,vhdx_decoder}

# ---- tar_walker: a mode byte (bit 0: stop after the disk), then a layer tar ----
cd "$work"
mkdir -p disk sub
noise 2048 1 >disk/disk.img
# A sparse disk: data at 0 and 32 KiB of a 64 KiB file.
noise 4096 2 >disk/sparse.img
noise 4096 3 | dd of=disk/sparse.img bs=4096 seek=8 conv=notrunc status=none
truncate -s 64K disk/sparse.img
touch disk/.wh.old.img disk/.wh..wh..opq
ln -s disk.img disk/link.img
long=disk/$(printf 'n%.0s' {1..120}).img
cp disk/disk.img "$long"
tar_seed() { # name, tar options and paths…
  local name=$1
  shift
  tar -b 1 --owner=0 --group=0 --mtime=@0 -cf layer.tar "$@"
  { printf '\0'; cat layer.tar; } >"$seeds/tar_walker/$name"
}
tar_seed plain --format=gnu --no-recursion disk/ disk/disk.img
tar_seed gnu-sparse --format=gnu --sparse disk/sparse.img
pax=--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
tar_seed pax-sparse-0.0 --format=posix "$pax" --sparse --sparse-version=0.0 disk/sparse.img
tar_seed pax-sparse-0.1 --format=posix "$pax" --sparse --sparse-version=0.1 disk/sparse.img
tar_seed pax-sparse-1.0 --format=posix "$pax" --sparse --sparse-version=1.0 disk/sparse.img
tar_seed whiteouts --format=gnu disk/.wh.old.img disk/.wh..wh..opq disk/disk.img
tar_seed symlink --format=gnu disk/link.img
tar_seed gnu-long-name --format=gnu "$long"
tar_seed pax-long-name --format=posix "$pax" "$long"
tar_seed ustar --format=ustar disk/disk.img

# ---- gzip: members with and without optional header fields ----
noise 3000 4 | base64 >data.txt
touch -d @1000000000 data.txt
gzip -n -c data.txt >"$seeds/gzip/plain.gz"
gzip -N -c data.txt >"$seeds/gzip/with-name.gz"
cat "$seeds/gzip/plain.gz" "$seeds/gzip/with-name.gz" >"$seeds/gzip/two-members.gz"
python3 - "$seeds/gzip" <<'EOF'
import sys, zlib, struct
data = b"disk bytes " * 300
body = zlib.compressobj(9, zlib.DEFLATED, -15)
deflated = body.compress(data) + body.flush()
flags = 0x02 | 0x04 | 0x08 | 0x10  # FHCRC FEXTRA FNAME FCOMMENT
header = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
header += struct.pack("<H", 4) + b"AB\0\0" + b"disk.tar\0" + b"a comment\0"
header += struct.pack("<H", zlib.crc32(header) & 0xffff)
trailer = struct.pack("<II", zlib.crc32(data), len(data))
open(sys.argv[1] + "/all-fields.gz", "wb").write(header + deflated + trailer)
EOF

# ---- config: the example configuration and the module's documented one ----
cd "$seeds/.."
cp ../systemd/config.example.toml "$seeds/config/example.toml"
cat >"$seeds/config/everything.toml" <<'EOF'
namespace = "os-images"
metrics_address = "127.0.0.1:9478"
default_schedule = "0 */12 * * *"
insecure_registries = ["127.0.0.1:5000"]
state_dir = "/var/lib/bootsource"
max_concurrent_imports = 2
spool_limit = "64M"

[storage.local]
kind = "dir"
path = "/var/lib/bootsource"

[storage.fast]
kind = "reflink"
path = "/srv/images"
format = "snapshot"

[[registry]]
prefix = "quay.io"
[[registry.mirror]]
location = "mirror.example:5000"
insecure = true

[[source]]
name = "fedora"
image = "docker://quay.io/containerdisks/fedora:latest"
interval = "6h"
imports_to_keep = 2
storage = "fast"
platform = "linux/arm64/v8"

[[source]]
name = "local"
image = "oci:/srv/layout:41"
schedule = "30 2 * * 1-5"
auto_update = false
EOF

# ---- auth_file: containers auth.json / docker config.json ----
cat >"$seeds/auth_file/auths.json" <<'EOF'
{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpzZWNyZXQ="},"https://index.docker.io/v1/":{"auth":"YWxpY2U6czNjcmV0IHBhc3M="},"quay.io":{"username":"u","password":"p"}}}
EOF
cat >"$seeds/auth_file/mixed.json" <<'EOF'
{"auths":{"https://quay.io/v2/":{"auth":"dXNlcjpzZWNyZXQ=","username":"user","password":"secret"},"docker.io":{"identitytoken":"tok"}}}
EOF

# ---- manifest: the demo layout's index and manifest, and a Docker manifest list ----
cp ../examples/demo-layout/index.json "$seeds/manifest/oci-index.json"
for blob in ../examples/demo-layout/blobs/sha256/*; do
  if head -c 4096 "$blob" | grep -q '"layers"'; then
    cp "$blob" "$seeds/manifest/oci-manifest.json"
  fi
done
cat >"$seeds/manifest/docker-list.json" <<'EOF'
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,"digest":"sha256:56a9aa59289898cd315f8a0819cbd363cf4819d58cfe9aa9335d2b6a3d91e4a7","platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}
EOF

# ---- qcow2_decoder: a chunk-size byte, then a small image (512-byte clusters) ----
cd "$work"
qcow2_seed() { # name, qemu-img create options…
  local name=$1
  shift
  qemu-img create -q -f qcow2 "$@" image.qcow2 256K
  qemu-io -f qcow2 -c 'write -P 0xaa 0 4k' -c 'write -P 0x55 100k 1k' -c 'write -z 200k 8k' image.qcow2 >/dev/null
  { printf '\x07'; cat image.qcow2; } >"$seeds/qcow2_decoder/$name"
}
qcow2_seed small -o cluster_size=512
qcow2_seed v2 -o cluster_size=512,compat=0.10
qemu-img convert -q -c -O qcow2 -o cluster_size=4k image.qcow2 compressed.qcow2
{ printf '\x07'; cat compressed.qcow2; } >"$seeds/qcow2_decoder/compressed"

# ---- vmdk, vhd, vdi, ova decoders: a chunk-size byte, then a small image ----
# qemu-img writes them from a 256 KiB disk with data at 0 and 100 KiB (image.qcow2
# above). VHD and VDI allocate 2 MiB and 1 MiB blocks, so their seeds are empty
# images: header, footer and tables. A VHDX is 4 MiB at least: see below.
other_seed() { # target, name, qemu-img format, options, source
  qemu-img convert -q -O "$3" -o "$4" "$5" seed.img
  { printf '\x07'; cat seed.img; } >"$seeds/$1/$2"
  rm seed.img
}
other_seed vmdk_decoder sparse vmdk subformat=monolithicSparse image.qcow2
other_seed vmdk_decoder stream vmdk subformat=streamOptimized image.qcow2
qemu-img create -q -f raw empty.raw 1M
other_seed vhd_decoder dynamic vpc subformat=dynamic empty.raw
other_seed vdi_decoder dynamic vdi static=off empty.raw
qemu-img convert -q -O vmdk -o subformat=streamOptimized image.qcow2 disk.vmdk
printf '<?xml version="1.0"?><Envelope/>\n' >appliance.ovf
tar --format=ustar --owner=0 --group=0 --mtime=@0 -cf appliance.ova appliance.ovf disk.vmdk
{ printf '\x07'; cat appliance.ova; } >"$seeds/ova_decoder/appliance"

# ---- vhdx_decoder: a chunk-size byte, a flags byte (1: fix the checksums), then the
# image described sparsely (sparse-seed.py, fuzz_targets/common/sparse.rs): a VHDX is
# MiB-aligned (header region, log, metadata, BAT, blocks), several MiB of which a few
# KiB are not zero. Dynamic ones with blocks written by qemu-io (a BAT to follow, a
# log qemu wrote and emptied), an empty one, a fixed one.
vhdx_seed() { # name, qemu-img create options, size, qemu-io commands…
  local name=$1 options=$2 size=$3
  shift 3
  qemu-img create -q -f vhdx -o "$options" seed.vhdx "$size"
  for command in "$@"; do qemu-io -f vhdx -c "$command" seed.vhdx >/dev/null; done
  "$seeds/../sparse-seed.py" seed.vhdx "$seeds/vhdx_decoder/$name" 0701
  rm seed.vhdx
}
vhdx_seed dynamic subformat=dynamic,block_size=1M,log_size=1M 3M \
  'write -P 0x5a 0 4k' 'write -P 0xa5 2M 512'
vhdx_seed empty subformat=dynamic,block_size=1M,log_size=1M 1M
vhdx_seed unmapped-zero subformat=dynamic,block_size=1M,log_size=1M,block_state_zero=off 2M \
  'write -P 0x11 1M 1k'
vhdx_seed fixed subformat=fixed,block_size=1M,log_size=1M 2M

du -sh "$seeds"
