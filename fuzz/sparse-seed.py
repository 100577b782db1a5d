#!/usr/bin/env python3
"""Writes IMAGE as a sparse fuzz input (fuzz_targets/common/sparse.rs) after PREFIX.

usage: sparse-seed.py IMAGE OUTPUT PREFIX_HEX
The pieces are the image's non-zero bytes, with gaps of fewer than 64 zeros kept
inside a piece; everything else is zero in the expanded image.
"""
import struct
import sys

image = open(sys.argv[1], "rb").read()
out = bytearray(bytes.fromhex(sys.argv[3]) + struct.pack("<I", len(image)))
at = 0
while at < len(image):
    if image[at] == 0:
        at += 1
        continue
    end, zeros = at, 0
    while end < len(image) and zeros < 64 and end - at < 0xFFFF:
        zeros = zeros + 1 if image[end] == 0 else 0
        end += 1
    end -= zeros
    out += struct.pack("<IH", at, end - at) + image[at:end]
    at = end
open(sys.argv[2], "wb").write(out)
