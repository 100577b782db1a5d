//! Layer contents: tar archives with exact control of every entry.
//!
//! [`Tar`] writes headers with the `tar` crate's [`tar::Header`] but puts names in raw,
//! so anything goes: `..` components, absolute paths, `./` prefixes, whiteouts. Names
//! longer than 100 bytes use GNU `L`/`K` entries or PAX `path`/`linkpath` records
//! ([`LongNames`]). [`gnu_tar`] runs GNU tar for what only it writes: sparse entries.

use std::path::Path;
use std::process::Command;

use tar::{EntryType, Header};

use crate::common::tools;

const BLOCK: usize = 512;
/// Owner of files in container disks, as KubeVirt documents (`ADD --chown=107:107`).
const QEMU_UID: u64 = 107;

/// How names longer than the 100-byte header field are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongNames {
    /// GNU headers, `././@LongLink` entries of type `L` (name) and `K` (link target).
    Gnu,
    /// ustar headers, a PAX extended header (`x`) with `path` / `linkpath`.
    Pax,
}

/// A tar archive under construction. Entries are owned by 107:107, mtime 0.
#[derive(Debug, Clone)]
pub struct Tar {
    out: Vec<u8>,
    /// End of the last entry's data, before its padding.
    data_end: usize,
    uid: u64,
    gid: u64,
    long_names: LongNames,
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar {
            out: Vec::new(),
            data_end: 0,
            uid: QEMU_UID,
            gid: QEMU_UID,
            long_names: LongNames::Gnu,
        }
    }

    /// Owner of the entries added from now on.
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// How long names of the entries added from now on are written.
    pub fn long_names(mut self, long_names: LongNames) -> Self {
        self.long_names = long_names;
        self
    }

    /// A directory (mode 0755). Give the trailing `/` if wanted: names are kept as given.
    pub fn dir(self, name: &str) -> Self {
        self.entry(name, EntryType::Directory, 0o755, b"", None)
    }

    /// A regular file (mode 0644).
    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, EntryType::Regular, 0o644, data, None)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, EntryType::Symlink, 0o777, b"", Some(target))
    }

    /// A hard link to `target`, an earlier entry's name.
    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, EntryType::Link, 0o644, b"", Some(target))
    }

    pub fn block_device(self, name: &str, major: u32, minor: u32) -> Self {
        self.device(name, EntryType::Block, major, minor)
    }

    pub fn char_device(self, name: &str, major: u32, minor: u32) -> Self {
        self.device(name, EntryType::Char, major, minor)
    }

    pub fn fifo(self, name: &str) -> Self {
        self.entry(name, EntryType::Fifo, 0o644, b"", None)
    }

    /// The whiteout of `path` (`disk/old.img` → `disk/.wh.old.img`): deletes it from
    /// lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let name = match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/.wh.{base}"),
            None => format!(".wh.{path}"),
        };
        self.file(&name, b"")
    }

    /// The opaque marker of `dir` (`disk` → `disk/.wh..wh..opq`): hides everything lower
    /// layers have under it.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }

    /// Any entry; names and link targets are written as given.
    pub fn entry(
        mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> Self {
        self.push_entry(name, kind, mode, data, link, None);
        self
    }

    /// The archive with its end-of-archive marker (two zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * BLOCK, 0);
        self.out
    }

    /// The archive cut right after the last entry's data: no padding, no end-of-archive
    /// marker. That is what `umoci insert` wrote before umoci 0.4.8 (umoci PR #534), so
    /// it is in real images, including those Debian's umoci 0.4.7 makes.
    pub fn finish_unterminated(mut self) -> Vec<u8> {
        self.out.truncate(self.data_end);
        self.out
    }

    fn device(mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        self.push_entry(name, kind, 0o600, b"", None, Some((major, minor)));
        self
    }

    fn push_entry(
        &mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
        device: Option<(u32, u32)>,
    ) {
        let mut header = match self.long_names {
            LongNames::Gnu => gnu_header(name, kind, mode, data.len()),
            LongNames::Pax => ustar_header(name, kind, mode, data.len()),
        };
        header.set_uid(self.uid);
        header.set_gid(self.gid);
        if let Some(link) = link {
            set_raw(&mut header.as_old_mut().linkname, link.as_bytes());
        }
        if let Some((major, minor)) = device {
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
        }
        header.set_cksum();
        self.long_name_entries(name, link);
        self.append(header, data);
    }

    /// GNU `L`/`K` entries or a PAX header before an entry whose name or target is long.
    fn long_name_entries(&mut self, name: &str, link: Option<&str>) {
        let long_link = link.filter(|l| l.len() > 100);
        match self.long_names {
            LongNames::Gnu => {
                for (kind, value) in [
                    (EntryType::GNULongName, Some(name)),
                    (EntryType::GNULongLink, long_link),
                ] {
                    if let Some(value) = value.filter(|v| v.len() > 100) {
                        let mut data = value.as_bytes().to_vec();
                        data.push(0);
                        let mut header = gnu_header("././@LongLink", kind, 0o644, data.len());
                        header.set_cksum();
                        self.append(header, &data);
                    }
                }
            }
            LongNames::Pax => {
                let mut records: Vec<(&str, &[u8])> = Vec::new();
                if name.len() > 100 {
                    records.push(("path", name.as_bytes()));
                }
                if let Some(link) = long_link {
                    records.push(("linkpath", link.as_bytes()));
                }
                if !records.is_empty() {
                    let body = pax_records(&records);
                    let mut header =
                        ustar_header("PaxHeaders/entry", EntryType::XHeader, 0o644, body.len());
                    header.set_cksum();
                    self.append(header, &body);
                }
            }
        }
    }

    fn append(&mut self, header: Header, data: &[u8]) {
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(data);
        self.data_end = self.out.len();
        let padded = self.out.len().div_ceil(BLOCK) * BLOCK;
        self.out.resize(padded, 0);
    }
}

fn gnu_header(name: &str, kind: EntryType, mode: u32, size: usize) -> Header {
    fill(Header::new_gnu(), name, kind, mode, size)
}

fn ustar_header(name: &str, kind: EntryType, mode: u32, size: usize) -> Header {
    fill(Header::new_ustar(), name, kind, mode, size)
}

fn fill(mut header: Header, name: &str, kind: EntryType, mode: u32, size: usize) -> Header {
    set_raw(&mut header.as_old_mut().name, name.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size as u64);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Copies `value` into a NUL-padded header field, cut to the field's length.
fn set_raw(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let len = value.len().min(field.len());
    field[..len].copy_from_slice(&value[..len]);
}

/// PAX records: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The archive formats GNU tar writes sparse files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GnuTarFormat {
    /// `--format=gnu --sparse`: old-style GNU sparse entries (type `S`).
    GnuSparse,
    /// `--format=posix --sparse`: PAX sparse format 1.0 (`GNU.sparse.*` records, the map at
    /// the start of the data, and a `GNUSparseFile.<pid>` name in the ustar header).
    PosixSparse,
}

/// Archives `members` of `dir` (e.g. `["disk"]`) with GNU tar, as 107:107 with mtime 0.
/// Holes in the files (see `disk::write_raw_disk`) become sparse entries.
pub fn gnu_tar(dir: &Path, members: &[&str], format: GnuTarFormat) -> Vec<u8> {
    tools::require("tar", "tar");
    let mut command = Command::new("tar");
    command.args([
        "--create",
        "--file=-",
        "--sparse",
        "--sort=name",
        "--mtime=@0",
    ]);
    command.args(["--numeric-owner", "--owner=107", "--group=107"]);
    match format {
        GnuTarFormat::GnuSparse => command.arg("--format=gnu"),
        GnuTarFormat::PosixSparse => {
            command.args(["--format=posix", "--pax-option=delete=atime,delete=ctime"])
        }
    };
    command.arg("-C").arg(dir).arg("--").args(members);
    tools::run_command(&mut command).stdout
}
