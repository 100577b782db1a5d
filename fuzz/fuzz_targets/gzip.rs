//! Our gzip reader (header fields skipped, CRC-32 not recomputed) on arbitrary bytes:
//! it must end in output or an error, never panic or read a header without end, and
//! where flate2's decoder also succeeds both must give the same bytes.
#![no_main]

use bootsource_importer::fuzz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz::gunzip(data));
