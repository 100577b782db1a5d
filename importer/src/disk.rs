//! Finding the disk file in a container disk, by OCI layer rules.
//!
//! Layers are scanned top-down; the topmost layer with a regular file under `disk/`
//! wins and lower layers are never downloaded. Whiteouts in upper layers
//! (`disk/.wh.NAME`, the opaque marker `disk/.wh..wh..opq`, or `.wh.disk` for the whole
//! directory) hide files below them, as overlayfs would. Inside the winning layer
//! exactly one regular file may live under `disk/`: several, or links, devices and
//! paths with `..`, are errors — the image is ambiguous or hostile.
//!
//! The rules ([`classify`], [`Whiteouts`]) are pure; [`walk_layer`] applies them to a
//! tar stream and hands the winning entry to the caller without buffering it. What the
//! tar reader itself buffers, an entry's long name, PAX records and sparse map, is
//! bounded ([`header_budget`]). Old GNU sparse entries reach the caller as the bytes
//! they store and their map ([`gnu_sparse`]): holes stay holes.

mod gnu_sparse;
mod header_budget;
mod problem;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path};

use tar::EntryType;

use crate::{Digest, Error, Result};
use gnu_sparse::{Maps, Unsparse};
use header_budget::Budget;

pub(crate) use gnu_sparse::SparseMap;
pub use problem::{ArchiveProblem, DiskEntryProblem, SparseMapProblem};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What one tar entry means for the disk search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A regular file under `disk/`, by its path below `disk/`.
    Disk(String),
    /// `disk/…/.wh.NAME`: hides `NAME` (path below `disk/`) in lower layers.
    Whiteout(String),
    /// `disk/.wh..wh..opq`: hides all of `disk/` in lower layers.
    Opaque,
    /// `.wh.disk`: the directory itself is deleted.
    DirectoryDeleted,
    /// Anything else.
    Irrelevant,
    /// An entry that makes the image unsafe or ambiguous.
    Refused(DiskEntryProblem),
}

/// Decides what an entry is. `kind` is the tar entry type.
pub(crate) fn classify(path: &Path, kind: EntryType) -> Role {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Role::Refused(DiskEntryProblem::ParentPath(path.display().to_string()));
            }
        }
    }
    match parts.as_slice() {
        [only] if only == ".wh.disk" => Role::DirectoryDeleted,
        [only] if only == "disk" => match kind {
            EntryType::Directory => Role::Irrelevant,
            _ => Role::Refused(DiskEntryProblem::DiskNotADirectory(describe(kind))),
        },
        [first, rest @ ..] if first == "disk" => classify_below_disk(rest, kind),
        _ => Role::Irrelevant,
    }
}

fn classify_below_disk(rest: &[String], kind: EntryType) -> Role {
    let (name, dirs) = rest
        .split_last()
        .expect("at least one component below disk/");
    let below = rest.join("/");
    if name == OPAQUE && dirs.is_empty() {
        return Role::Opaque;
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT) {
        let mut target = dirs.to_vec();
        target.push(hidden.to_owned());
        return Role::Whiteout(target.join("/"));
    }
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Role::Disk(below),
        EntryType::Directory => Role::Irrelevant,
        other => Role::Refused(DiskEntryProblem::NotRegular {
            name: below,
            kind: describe(other),
        }),
    }
}

fn describe(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::Directory => "directory",
        _ => "special file",
    }
}

/// What upper layers have hidden from the layers below.
#[derive(Debug, Default, Clone)]
pub(crate) struct Whiteouts {
    hidden: BTreeSet<String>,
    everything: bool,
}

impl Whiteouts {
    /// Whether `below` (a path below `disk/`) is hidden by an upper layer.
    pub fn hides(&self, below: &str) -> bool {
        self.everything
            || below
                .match_indices('/')
                .map(|(i, _)| &below[..i])
                .chain([below])
                .any(|prefix| self.hidden.contains(prefix))
    }

    fn add(&mut self, layer: &LayerWhiteouts) {
        self.everything |= layer.everything;
        self.hidden.extend(layer.hidden.iter().cloned());
    }
}

/// Whiteouts found in one layer: they apply only to the layers below it.
#[derive(Debug, Default)]
struct LayerWhiteouts {
    hidden: BTreeSet<String>,
    everything: bool,
}

/// A disk file entry handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskEntry {
    /// Its path below `disk/`.
    pub name: String,
    /// Its size in bytes, holes of a sparse entry included.
    pub size: u64,
    /// For an old GNU sparse entry, where its stored bytes go; the entry's reader
    /// yields only those, run after run.
    pub(crate) sparse: Option<SparseMap>,
}

/// What a layer held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LayerOutcome {
    /// The disk was found (and handed to the callback) in this layer.
    Found(DiskEntry),
    /// Not here; search the next layer down.
    NotHere,
}

/// Walks one layer's tar. `above` holds the whiteouts of the layers above and is
/// extended with this layer's when the disk is not here. `on_disk` receives the disk
/// entry's bytes; it may stop reading early (the rest is skipped), but then the
/// caller must not trust the bytes until the layer has been drained.
///
/// With `stop_after_disk`, the walk ends right after the disk entry (used to peek, or
/// to re-read for a second pass); otherwise it reads the whole tar to make sure no
/// second disk file follows.
pub(crate) fn walk_layer<R: Read>(
    tar: R,
    layer: Digest,
    above: &mut Whiteouts,
    stop_after_disk: bool,
    mut on_disk: impl FnMut(&DiskEntry, &mut dyn Read) -> Result<()>,
) -> Result<LayerOutcome> {
    let bad = |problem| Error::BadDiskEntry { layer, problem };
    let io = |e: std::io::Error| crate::layer::layer_error(layer, "tar archive", e);
    let budget = Budget::default();
    let maps = Maps::default();
    let unsparse = Unsparse::new(PadToBlock::new(tar), maps.clone());
    let mut archive = tar::Archive::new(budget.wrap(unsparse));
    let mut found: Option<DiskEntry> = None;
    let mut here = LayerWhiteouts::default();
    let mut entries = archive.entries_with_seek().map_err(io)?;
    while let Some(entry) = budget.armed(|| entries.next()) {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let sparse = maps.take(entry.raw_header_position());
        match classify(&path, entry.header().entry_type()) {
            Role::Disk(name) if !above.hides(&name) => {
                if let Some(first) = &found {
                    return Err(bad(DiskEntryProblem::SeveralDisks {
                        first: first.name.clone(),
                        second: name,
                    }));
                }
                if let Some(shown) = pax_sparse(&mut entry, &format!("disk/{name}")) {
                    return Err(bad(DiskEntryProblem::PaxSparse(shown)));
                }
                let sparse = sparse.transpose().map_err(|problem| {
                    bad(DiskEntryProblem::SparseMap {
                        name: name.clone(),
                        problem,
                    })
                })?;
                let disk = DiskEntry {
                    size: sparse.as_ref().map_or(entry.size(), |s| s.real_size),
                    name,
                    sparse,
                };
                on_disk(&disk, &mut entry)?;
                found = Some(disk);
                if stop_after_disk {
                    break;
                }
            }
            Role::Disk(_) | Role::Irrelevant => {}
            Role::Whiteout(name) => {
                here.hidden.insert(name);
            }
            Role::Opaque | Role::DirectoryDeleted => here.everything = true,
            Role::Refused(problem) => return Err(bad(problem)),
        }
    }
    match found {
        Some(disk) => Ok(LayerOutcome::Found(disk)),
        None => {
            above.add(&here);
            Ok(LayerOutcome::NotHere)
        }
    }
}

/// Walks a tar given as a single file (`disk.tar.xz`, as Debian publishes): it must
/// hold exactly one regular file, anywhere, which is the disk; directories and PAX
/// global headers are ignored, links, devices and `..` paths refused. `on_disk`
/// receives the disk's bytes as in [`walk_layer`] — an old GNU sparse entry its
/// stored runs and its map, so holes stay holes; the whole archive is read, its
/// headers within the same bound.
pub(crate) fn walk_archive<R: Read>(
    tar: R,
    image: &str,
    io: &dyn Fn(std::io::Error) -> Error,
    mut on_disk: impl FnMut(&DiskEntry, &mut dyn Read) -> Result<()>,
) -> Result<DiskEntry> {
    let bad = |problem| Error::BadArchive {
        image: image.to_owned(),
        problem,
    };
    let budget = Budget::default();
    let maps = Maps::default();
    let unsparse = Unsparse::new(PadToBlock::new(tar), maps.clone());
    let mut archive = tar::Archive::new(budget.wrap(unsparse));
    let mut entries = archive.entries_with_seek().map_err(io)?;
    let mut found: Option<DiskEntry> = None;
    while let Some(entry) = budget.armed(|| entries.next()) {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let sparse = maps.take(entry.raw_header_position());
        let name = path.to_string_lossy().into_owned();
        match entry.header().entry_type() {
            EntryType::Directory | EntryType::XGlobalHeader => continue,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {}
            other => {
                let kind = describe(other);
                return Err(bad(ArchiveProblem::NotRegular { name, kind }));
            }
        }
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(bad(ArchiveProblem::ParentPath(name)));
        }
        if let Some(first) = found {
            let first = first.name;
            return Err(bad(ArchiveProblem::SeveralFiles {
                first,
                second: name,
            }));
        }
        if let Some(shown) = pax_sparse(&mut entry, &name) {
            return Err(bad(ArchiveProblem::PaxSparse(shown)));
        }
        let sparse = sparse.transpose().map_err(|problem| {
            let name = name.clone();
            bad(ArchiveProblem::SparseMap { name, problem })
        })?;
        let disk = DiskEntry {
            size: sparse.as_ref().map_or(entry.size(), |s| s.real_size),
            name,
            sparse,
        };
        on_disk(&disk, &mut entry)?;
        found = Some(disk);
    }
    found.ok_or_else(|| bad(ArchiveProblem::NoFile))
}

/// Ends a stream on a 512-byte boundary, adding zeros if it stops short.
///
/// umoci 0.4 (still in Debian) writes layers without the last file's padding and
/// without the end-of-archive blocks (umoci #436). Padding the last block lets the tar
/// reader end cleanly there; a disk entry cut short still fails, since its size is
/// checked by whoever reads it, and the blob's digest is checked regardless.
struct PadToBlock<R> {
    inner: R,
    read: u64,
    padding: u64,
}

impl<R: Read> PadToBlock<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            padding: 0,
        }
    }
}

impl<R: Read> Read for PadToBlock<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.padding == 0 {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.padding = self.read.next_multiple_of(512) - self.read;
            self.read += self.padding;
            if self.padding == 0 {
                return Ok(0);
            }
        }
        let n = buf
            .len()
            .min(usize::try_from(self.padding).expect("below 512"));
        buf[..n].fill(0);
        self.padding -= n as u64;
        Ok(n)
    }
}

/// GNU tar `--format=posix --sparse` stores a sparse map inside the file data and
/// describes it in `GNU.sparse.*` PAX keys; read naively, the "disk" would be the map
/// followed by the data runs. Old-style GNU sparse entries are read by [`gnu_sparse`].
/// Returns the name of the file the user made if `entry` is such an entry.
fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Option<String> {
    let Ok(Some(pax)) = entry.pax_extensions() else {
        return None;
    };
    let mut sparse = false;
    let mut real_name = None;
    for ext in pax.filter_map(std::result::Result::ok) {
        if ext.key_bytes().starts_with(b"GNU.sparse.") {
            sparse = true;
        }
        if ext.key_bytes() == b"GNU.sparse.name" {
            real_name = ext.value().ok().map(str::to_owned);
        }
    }
    // The entry is stored as GNUSparseFile.<pid>/NAME; name the file the user made.
    sparse.then(|| real_name.unwrap_or_else(|| name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(path: &str, kind: EntryType) -> Role {
        classify(Path::new(path), kind)
    }

    #[test]
    fn finds_regular_files_under_disk() {
        assert_eq!(
            role("disk/disk.img", EntryType::Regular),
            Role::Disk("disk.img".into())
        );
        assert_eq!(
            role("./disk/fedora.qcow2", EntryType::Regular),
            Role::Disk("fedora.qcow2".into())
        );
        assert_eq!(
            role("/disk/x", EntryType::GNUSparse),
            Role::Disk("x".into())
        );
        assert_eq!(role("disk/", EntryType::Directory), Role::Irrelevant);
        assert_eq!(role("etc/passwd", EntryType::Regular), Role::Irrelevant);
        assert_eq!(role("diskette/x", EntryType::Regular), Role::Irrelevant);
    }

    #[test]
    fn recognises_whiteouts() {
        assert_eq!(
            role("disk/.wh.old.img", EntryType::Regular),
            Role::Whiteout("old.img".into())
        );
        assert_eq!(role("disk/.wh..wh..opq", EntryType::Regular), Role::Opaque);
        assert_eq!(role(".wh.disk", EntryType::Regular), Role::DirectoryDeleted);
        assert_eq!(
            role("disk/sub/.wh.x", EntryType::Regular),
            Role::Whiteout("sub/x".into())
        );
    }

    #[test]
    fn refuses_links_devices_and_escapes() {
        for (path, kind) in [
            ("disk/disk.img", EntryType::Symlink),
            ("disk/disk.img", EntryType::Link),
            ("disk/sda", EntryType::Block),
            ("disk/tty", EntryType::Char),
            ("disk/p", EntryType::Fifo),
            ("disk", EntryType::Symlink),
            ("disk/../etc/x", EntryType::Regular),
            ("a/../../disk/x", EntryType::Regular),
        ] {
            assert!(
                matches!(role(path, kind), Role::Refused(_)),
                "{path} {kind:?}"
            );
        }
    }

    /// A tar as umoci 0.4 writes it: the last file unpadded, no end-of-archive blocks.
    fn umoci_style_tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
        let mut bytes = b.into_inner().unwrap();
        bytes.truncate(512 + data.len());
        bytes
    }

    #[test]
    fn reads_layers_without_padding_or_footer() {
        let data = b"QFI\xfb not really, 37 bytes of disk".to_vec();
        let tar = umoci_style_tar("disk/disk.img", &data);
        let mut got = Vec::new();
        let outcome = walk_layer(
            &tar[..],
            Digest::of(b"l"),
            &mut Whiteouts::default(),
            false,
            |e, r| {
                assert_eq!(e.size, data.len() as u64);
                r.read_to_end(&mut got).unwrap();
                Ok(())
            },
        )
        .unwrap();
        assert!(matches!(outcome, LayerOutcome::Found(_)));
        assert_eq!(got, data);
    }

    fn archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(*kind);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn walk(tar: &[u8]) -> Result<(DiskEntry, Vec<u8>)> {
        let mut got = Vec::new();
        let io = |e| Error::CorruptFile {
            image: "x".into(),
            what: "tar archive",
            source: e,
        };
        let entry = walk_archive(tar, "file:x.tar", &io, |_, r| {
            r.read_to_end(&mut got).unwrap();
            Ok(())
        })?;
        Ok((entry, got))
    }

    #[test]
    fn an_archive_holds_exactly_one_regular_file() {
        let tar = archive(&[
            ("dir/", EntryType::Directory, b""),
            ("dir/disk.raw", EntryType::Regular, b"raw bytes"),
        ]);
        let (entry, got) = walk(&tar).unwrap();
        assert_eq!(entry.name, "dir/disk.raw");
        assert_eq!(got, b"raw bytes");
        for (bad, why) in [
            (
                archive(&[
                    ("a", EntryType::Regular, b"1"),
                    ("b", EntryType::Regular, b"2"),
                ]),
                "more than one",
            ),
            (
                archive(&[("d/", EntryType::Directory, b"")]),
                "no regular file",
            ),
            (archive(&[("l", EntryType::Symlink, b"")]), "symbolic link"),
        ] {
            let err = walk(&bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let empty = archive(&[("d/", EntryType::Directory, b"")]);
        assert!(matches!(
            walk(&empty),
            Err(Error::BadArchive {
                problem: ArchiveProblem::NoFile,
                ..
            })
        ));
    }

    /// `tar --sparse` of a disk: the walker hands over the stored runs and their map,
    /// never the holes as zeros (the pipeline skips them by length).
    #[test]
    fn an_archive_s_gnu_sparse_entry_keeps_its_holes() {
        let mut tar = gnu_sparse::tests::sparse_entry("disk.raw", &[(4096, 3), (MIB, 2)], 64 * MIB);
        tar.extend([0; 1024]);
        let (entry, got) = walk(&tar).unwrap();
        assert_eq!(got, b"aaabb");
        assert_eq!(entry.size, 64 * MIB);
        let map = entry.sparse.expect("a sparse map");
        assert_eq!(map.real_size, 64 * MIB);
        assert_eq!(map.runs.len(), 2);

        let mut bad = gnu_sparse::tests::sparse_entry("disk.raw", &[(MIB, 3)], 4096);
        bad.extend([0; 1024]);
        assert!(matches!(
            walk(&bad),
            Err(Error::BadArchive {
                problem: ArchiveProblem::SparseMap { .. },
                ..
            })
        ));
    }

    const MIB: u64 = 1 << 20;

    fn header(kind: EntryType, path: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        h
    }

    /// A small disk entry and the end of the archive.
    fn disk_and_end() -> Vec<u8> {
        let mut tail = header(EntryType::Regular, "disk/disk.img", 512)
            .as_bytes()
            .to_vec();
        tail.extend([7; 512]);
        tail.extend([0; 1024]);
        tail
    }

    /// `head`, `len` bytes of member data padded to a block, then [`disk_and_end`]:
    /// a member of any size without holding it in memory.
    fn with_member(head: &tar::Header, len: u64) -> impl Read {
        let padding = len.next_multiple_of(512) - len;
        std::io::Cursor::new(head.as_bytes().to_vec())
            .chain(std::io::repeat(b'a').take(len))
            .chain(std::io::repeat(0).take(padding))
            .chain(std::io::Cursor::new(disk_and_end()))
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    /// Walks `tar`; the error and the bytes read before it.
    fn walk_counting(tar: impl Read) -> (Result<LayerOutcome>, u64) {
        let mut counting = Counting {
            inner: tar,
            read: 0,
        };
        let outcome = walk_layer(
            &mut counting,
            Digest::of(b"l"),
            &mut Whiteouts::default(),
            false,
            |_, r| {
                std::io::copy(r, &mut std::io::sink())
                    .map(drop)
                    .map_err(|e| Error::Internal(e.to_string()))
            },
        );
        (outcome, counting.read)
    }

    fn assert_refused_early(outcome: Result<LayerOutcome>, read: u64, what: &str) {
        let err = outcome.expect_err(what);
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(chain.contains("tar entry headers"), "{what}: {chain}");
        assert!(read <= 17 * MIB, "{what}: read {} MiB", read / MIB);
    }

    /// tar reads a GNU long name or long link, or PAX records, whole into memory
    /// before it hands out the entry they describe; a layer of a few KiB of zstd can
    /// declare gigabytes of them.
    #[test]
    fn huge_extension_headers_are_refused_without_reading_them() {
        for kind in [
            EntryType::GNULongName,
            EntryType::GNULongLink,
            EntryType::XHeader,
        ] {
            let len = 64 * MIB;
            let (outcome, read) =
                walk_counting(with_member(&header(kind, "././@LongLink", len), len));
            assert_refused_early(outcome, read, &format!("{kind:?}"));
        }
    }

    /// An old GNU sparse entry whose map runs on through extension blocks: tar turns
    /// them into a list of runs in memory before the entry is handed out.
    #[test]
    fn endless_gnu_sparse_map_is_refused_without_reading_it() {
        let mut head = header(EntryType::GNUSparse, "disk/disk.img", 0);
        let gnu = head.as_gnu_mut().unwrap();
        gnu.set_real_size(1 << 40);
        gnu.set_is_extended(true);
        head.set_cksum();
        let mut tar = head.as_bytes().to_vec();
        let mut offset = 0;
        for _ in 0..(32 * MIB / 512) {
            let mut ext = tar::GnuExtSparseHeader::new();
            for run in ext.sparse_mut() {
                run.set_offset(offset);
                run.set_length(0);
                offset += 512;
            }
            ext.set_is_extended(true);
            tar.extend(ext.as_bytes());
        }
        let (outcome, read) = walk_counting(&tar[..]);
        assert_refused_early(outcome, read, "sparse map");
    }

    /// What GNU tar writes for a path of 200 bytes: a long name the walker reads.
    #[test]
    fn ordinary_long_names_are_read() {
        let name = format!("disk/{}.img", "n".repeat(200));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &b"abc"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let (outcome, _) = walk_counting(&tar[..]);
        assert!(matches!(outcome, Ok(LayerOutcome::Found(d)) if d.name.len() == 204));
    }

    #[test]
    fn whiteouts_hide_files_and_directories() {
        let mut w = Whiteouts::default();
        w.add(&LayerWhiteouts {
            hidden: ["old.img".to_owned(), "sub".to_owned()].into(),
            everything: false,
        });
        assert!(w.hides("old.img"));
        assert!(w.hides("sub/deep.img"));
        assert!(!w.hides("new.img"));
        assert!(!w.hides("subway.img"));
        w.add(&LayerWhiteouts {
            hidden: BTreeSet::new(),
            everything: true,
        });
        assert!(w.hides("new.img"));
    }
}
