//! The tar walker (which entry of a layer is the disk) on arbitrary bytes, GNU sparse,
//! GNU long-name and PAX entries included: it must end in an outcome or an error,
//! never panic, and the disk entry never yields more bytes than its size says. The
//! first byte picks whether the walk stops after the disk entry, as a second pass does.
#![no_main]

use bootsource_importer::fuzz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else { return };
    fuzz::walk_tar(tar, mode & 1 == 1, "disk.img\nsub/deep.qcow2\n.wh.x");
});
