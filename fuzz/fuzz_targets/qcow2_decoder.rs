//! The qcow2 stream decoder on arbitrary bytes (see `common`), inflating compressed
//! clusters.
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::decode(bootsource_importer::DiskFormat::Qcow2, data));
