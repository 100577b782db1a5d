//! The parts of the `bootsource` binary that parse untrusted text, as a library so the
//! fuzz targets in `fuzz/` can reach them: the configuration file ([`config`]) and the
//! sizes written in it ([`human`]). The binary uses them from here. Not a stable API:
//! the library crates (`bootsource-importer`, …) are the ones to build on.

#![forbid(unsafe_code)]
#![doc(hidden)]

pub mod config;
pub mod human;
