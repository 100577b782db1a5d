//! The vhd stream decoder on arbitrary bytes (see `common`).
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::decode(bootsource_importer::DiskFormat::Vhd, data));
