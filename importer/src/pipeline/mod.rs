//! The import pipeline: layers, top-down, into one conversion.
//!
//! Threads by role: the source streams and hashes the blob (a tokio task or a reader
//! thread); this module runs on one blocking thread that decompresses the layer,
//! walks its tar and decodes the disk; the writer pool inflates compressed clusters
//! and writes. Every hand-over is a bounded channel, so memory stays flat however big
//! the disk is.
//!
//! Each layer read for the disk is read to its end and its digest checked before the
//! import counts; a second or third pass (see [`crate::qcow2`]) reads and checks the
//! same blob again.

mod chunks;
mod convert;
mod writer;

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::disk::{self, DiskEntry, LayerOutcome, Whiteouts};
use crate::format::{self, DiskFormat};
use crate::layer::{self, LayerReader};
use crate::manifest::Layer;
use crate::qcow2::{Header, PassEnd};
use crate::source::{ImageSource, ResolvedImage};
use crate::target::{Prepared, Target};
use crate::{DiskInfo, Error, Result};

pub(crate) use convert::Settings;
use convert::{Conversion, Converted};

/// What the pipeline did.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub layer: Layer,
    pub disk: DiskEntry,
    pub converted: Converted,
    pub written: u64,
    pub target: std::path::PathBuf,
}

/// Imports the disk of `image` into `target`. Blocking: run it on its own thread.
pub(crate) fn run(
    source: &ImageSource,
    image: &ResolvedImage,
    target: Prepared,
    settings: &Settings,
) -> Result<Outcome> {
    let slot = OnceLock::new();
    let (layer, disk, converted) = std::thread::scope(|scope| {
        let mut conversion = Conversion::new(scope, &slot, target, settings);
        let (layer, disk, above) = first_pass(source, image, settings, &mut conversion)?;
        while conversion.end_pass()? == PassEnd::Again {
            read_disk_again(source, &layer, &disk, &above, settings, &mut conversion)?;
        }
        conversion.finish().map(|c| (layer, disk, c))
    })?;
    let target: Target = slot
        .into_inner()
        .ok_or_else(|| Error::Internal("target never opened".into()))?;
    let path = target.path().to_owned();
    let written = target.commit()?;
    settings.progress.written.store(written, Ordering::Relaxed);
    Ok(Outcome {
        layer,
        disk,
        converted,
        written,
        target: path,
    })
}

/// Scans layers top-down, feeding the winning disk file to `conversion` and checking
/// that layer's digest. Returns the layer, the disk entry and the whiteouts above it.
fn first_pass(
    source: &ImageSource,
    image: &ResolvedImage,
    settings: &Settings,
    conversion: &mut Conversion<'_, '_>,
) -> Result<(Layer, DiskEntry, Whiteouts)> {
    let mut whiteouts = Whiteouts::default();
    for layer in image.layers.iter().rev() {
        let above = whiteouts.clone();
        let mut reader = open_layer(source, layer, settings)?;
        let io_error = io_error_for(layer, &reader);
        let outcome = disk::walk_layer(
            &mut reader,
            layer.digest,
            &mut whiteouts,
            false,
            |entry, bytes| conversion.feed_entry(layer.digest, entry, bytes, &io_error),
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
/// named by its digest, but bytes are trusted only once verified.
fn read_disk_again(
    source: &ImageSource,
    layer: &Layer,
    disk: &DiskEntry,
    above: &Whiteouts,
    settings: &Settings,
    conversion: &mut Conversion<'_, '_>,
) -> Result<()> {
    let mut reader = open_layer(source, layer, settings)?;
    let io_error = io_error_for(layer, &reader);
    let mut whiteouts = above.clone();
    let outcome = disk::walk_layer(
        &mut reader,
        layer.digest,
        &mut whiteouts,
        true,
        |entry, bytes| {
            if entry != disk {
                return Err(Error::Internal(format!(
                    "layer {} changed between passes",
                    layer.digest
                )));
            }
            conversion.feed_entry(layer.digest, entry, bytes, &io_error)
        },
    )?;
    if outcome == LayerOutcome::NotHere {
        return Err(Error::Internal(format!(
            "disk/{} vanished from layer {}",
            disk.name, layer.digest
        )));
    }
    reader.drain()
}

fn open_layer(source: &ImageSource, layer: &Layer, settings: &Settings) -> Result<LayerReader> {
    let progress = &settings.progress;
    let downloaded = progress.downloaded.load(Ordering::Relaxed);
    progress
        .download_total
        .store(downloaded + layer.size, Ordering::Relaxed);
    LayerReader::new(
        layer,
        source.open_blob(
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

/// Finds the disk and reads just enough of it to describe it. The layer is not
/// verified to its end: nothing is written, and only facts are reported.
pub(crate) fn inspect(
    source: &ImageSource,
    image: &ResolvedImage,
    settings: &Settings,
) -> Result<DiskInfo> {
    let mut whiteouts = Whiteouts::default();
    for layer in image.layers.iter().rev() {
        let mut reader = open_layer(source, layer, settings)?;
        let io_error = io_error_for(layer, &reader);
        let mut info = None;
        disk::walk_layer(
            &mut reader,
            layer.digest,
            &mut whiteouts,
            true,
            |entry, bytes| {
                let head = chunks::ChunkPool::default()
                    .read_chunk(bytes)
                    .map_err(&io_error)?;
                info = Some(describe(layer, entry, &head)?);
                Ok(())
            },
        )?;
        if let Some(info) = info {
            return Ok(info);
        }
    }
    Err(Error::NoDisk)
}

/// The format of the disk file whose first bytes are `head`; a refused one is an error.
fn sniff(entry: &DiskEntry, head: &[u8]) -> Result<DiskFormat> {
    format::sniff(head).map_err(|what| Error::UnsupportedDiskFormat {
        name: entry.name.clone(),
        format: what,
    })
}

fn describe(layer: &Layer, entry: &DiskEntry, head: &[u8]) -> Result<DiskInfo> {
    let format = sniff(entry, head)?;
    let header = match format {
        DiskFormat::Qcow2 => Some(Header::parse(head, entry.size)?.ok_or(Error::Qcow2PastEnd {
            what: "header",
            offset: 0,
            len: 112,
            stream_len: entry.size,
        })?),
        DiskFormat::Raw => None,
    };
    Ok(DiskInfo {
        layer: layer.digest,
        name: entry.name.clone(),
        file_size: entry.size,
        format,
        virtual_size: header.as_ref().map_or(entry.size, |h| h.virtual_size),
        qcow2: header.map(Into::into),
    })
}
