//! The import pipeline: layers, top-down, into one conversion.
//!
//! Threads by role: the origin streams and hashes the blob (a tokio task or a reader
//! thread); this module runs on one blocking thread that decompresses the layer,
//! walks its tar and decodes the disk; the writer pool inflates compressed clusters
//! and writes. Every hand-over is a bounded channel, so memory stays flat however big
//! the disk is.
//!
//! Each layer read for the disk is read to its end and its digest checked before the
//! import counts; a second or third pass (see [`crate::qcow2`]) reads and checks the
//! same blob again.

mod chunks;
mod conversion;
mod file;
mod handshake;
mod writer;

use std::sync::atomic::Ordering;

use crate::disk::{self, DiskEntry, LayerOutcome, Whiteouts};
use crate::format::{self, DiskFormat};
use crate::layer::{self, LayerReader};
use crate::manifest::Layer;
use crate::origin::{Origin, ResolvedImage};
use crate::qcow2::PassEnd;
use crate::{Error, Result};

use conversion::Conversion;
pub(crate) use conversion::{Converted, Settings};
pub(crate) use file::run_file;
pub(crate) use handshake::{Caller, Handshake, pair as handshake};

/// What the pipeline did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub layer: Layer,
    pub converted: Converted,
}

/// Imports the disk of `image` into the place `handshake` receives once the disk's
/// size is known. Blocking: run it on its own thread.
pub(crate) fn run(
    origin: &Origin,
    image: &ResolvedImage,
    settings: &Settings,
    handshake: Handshake,
) -> Result<Outcome> {
    std::thread::scope(|scope| {
        let mut conversion = Conversion::new(scope, settings, handshake);
        let (layer, disk, above) = first_pass(origin, image, settings, &mut conversion)?;
        while conversion.end_pass()? == PassEnd::Again {
            read_disk_again(origin, &layer, &disk, &above, settings, &mut conversion)?;
        }
        let converted = conversion.finish()?;
        settings
            .progress
            .written
            .store(converted.written, Ordering::Relaxed);
        Ok(Outcome { layer, converted })
    })
}

/// Scans layers top-down, feeding the winning disk file to `conversion` and checking
/// that layer's digest. Returns the layer, the disk entry and the whiteouts above it.
fn first_pass(
    origin: &Origin,
    image: &ResolvedImage,
    settings: &Settings,
    conversion: &mut Conversion<'_, '_>,
) -> Result<(Layer, DiskEntry, Whiteouts)> {
    let mut whiteouts = Whiteouts::default();
    for layer in image.layers.iter().rev() {
        let above = whiteouts.clone();
        let mut reader = open_layer(origin, layer, settings)?;
        let io_error = io_error_for(layer, &reader);
        let outcome = disk::walk_layer(
            &mut reader,
            layer.digest,
            &mut whiteouts,
            false,
            |entry, bytes| conversion.feed_entry(Some(layer.digest), entry, bytes, &io_error),
        )?;
        reader.drain()?;
        tracing::debug!(layer = %layer.digest, ?outcome, "layer read and verified");
        if let LayerOutcome::Found(disk) = outcome {
            return Ok((layer.clone(), disk, above));
        }
    }
    Err(Error::NoDisk)
}

/// Feeds the same disk file again (pass 2 or 3) and checks the blob again: it is
/// named by its digest, but bytes are trusted only once verified. Bytes that differ
/// from the first pass are reported as the digest mismatch they are, whatever they
/// broke first (the tar, the decompressor, or which file is the disk).
fn read_disk_again(
    origin: &Origin,
    layer: &Layer,
    disk: &DiskEntry,
    above: &Whiteouts,
    settings: &Settings,
    conversion: &mut Conversion<'_, '_>,
) -> Result<()> {
    let mut reader = open_layer(origin, layer, settings)?;
    let io_error = io_error_for(layer, &reader);
    let mut whiteouts = above.clone();
    let mut changed = false;
    let walked = disk::walk_layer(
        &mut reader,
        layer.digest,
        &mut whiteouts,
        true,
        |entry, bytes| {
            if entry != disk {
                changed = true;
                return Ok(());
            }
            conversion.feed_entry(Some(layer.digest), entry, bytes, &io_error)
        },
    );
    match walked {
        Ok(LayerOutcome::Found(_)) if !changed => reader.drain(),
        Err(e @ (Error::Cancelled | Error::Place(_))) => Err(e),
        Err(e) => reader.blob_verdict().and(Err(e)),
        Ok(_) => reader.blob_verdict().and(Err(Error::Internal(format!(
            "disk/{} differs between passes over layer {}, yet the layer verified",
            disk.name, layer.digest
        )))),
    }
}

fn open_layer(origin: &Origin, layer: &Layer, settings: &Settings) -> Result<LayerReader> {
    let progress = &settings.progress;
    let downloaded = progress.downloaded.load(Ordering::Relaxed);
    progress
        .download_total
        .store(downloaded + layer.size, Ordering::Relaxed);
    LayerReader::new(
        layer,
        origin.open_blob(
            layer,
            std::sync::Arc::clone(progress),
            settings.cancel.clone(),
        ),
    )
}

fn io_error_for(layer: &Layer, reader: &LayerReader) -> impl Fn(std::io::Error) -> Error + use<> {
    let (digest, what) = (layer.digest, layer::describe(reader.compression()));
    move |e| layer::layer_error(digest, what, e)
}

/// The format of the disk file whose first bytes are `head`; a refused one is an error.
fn sniff(name: &str, head: &[u8]) -> Result<DiskFormat> {
    format::sniff(head, name).map_err(|what| Error::UnsupportedDiskFormat {
        name: name.to_owned(),
        format: what,
    })
}
