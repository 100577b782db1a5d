#!/usr/bin/env bash
# Builds examples/demo-layout: a tiny container disk as an OCI image layout, the way
# vendors build them (qemu-img, mkfs, umoci), for `bootsource import oci:…` offline.
# The result is committed; run this only to rebuild it. Needs root (umoci ownership),
# e2fsprogs, qemu-utils, umoci.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/root/etc"
cat > "$work/root/README.txt" <<'TXT'
This disk was imported by bootsource from a container disk.
It holds a small ext4 filesystem; mount it with: mount -o loop,ro demo.img /mnt
TXT
echo "bootsource-demo" > "$work/root/etc/hostname"
truncate -s 64M "$work/disk.raw"
mkfs.ext4 -q -F -L demo -E root_owner=0:0 -d "$work/root" "$work/disk.raw"
qemu-img convert -c -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"

layout="$here/demo-layout"
rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:demo"
mkdir -p "$work/ins/disk"
cp "$work/disk.qcow2" "$work/ins/disk/disk.img"
chown -R 107:107 "$work/ins/disk"
chmod 0444 "$work/ins/disk/disk.img"
umoci insert --image "$layout:demo" "$work/ins/disk/disk.img" /disk/disk.img
umoci gc --layout "$layout"
du -sh "$layout"
