//! Images made by qemu-img from a generated guest disk, and qemu-img's reading of them
//! (the oracle): the setup every decoder test binary shares.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;

/// Runs `cmd` with `args`; its stdout. Panics (naming qemu-utils) if it fails.
pub fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install qemu-utils)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A guest disk of `size` bytes in `dir`, in `block`-byte pieces cycling through
/// incompressible, incompressible, compressible text, a few bytes (every third time)
/// and zeros, with data in its last bytes so the last block matters.
pub fn source_disk(dir: &Path, size: u64, block: usize) -> PathBuf {
    let path = dir.join("source.raw");
    let mut disk = vec![0u8; usize::try_from(size).unwrap()];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, piece) in disk.chunks_mut(block).enumerate() {
        match i % 5 {
            0 | 1 => piece.iter_mut().for_each(|b| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x.to_le_bytes()[0];
            }),
            2 => piece
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = b"golden image text "[j % 18]),
            3 if i % 3 == 0 => piece[100..200].fill(0x5a),
            _ => {}
        }
    }
    if let Some(tail) = disk.len().checked_sub(10).map(|n| &mut disk[n..]) {
        tail.copy_from_slice(b"the end..\n");
    }
    std::fs::write(&path, disk).unwrap();
    path
}

/// An image made by qemu-img from a fresh source disk.
pub struct Image {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub file: PathBuf,
    /// qemu-img's name of the format (`vpc` for VHD).
    pub format: &'static str,
}

impl Image {
    /// `qemu-img convert -O {format} {options}` of a source disk of `size` bytes in
    /// `block`-byte pieces (see [`source_disk`]).
    pub fn converted(size: u64, block: usize, format: &'static str, options: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let src = source_disk(&dir, size, block);
        // A fixed VHD is known by its name: qemu's format is "vpc", the file's ".vhd".
        let ext = if format == "vpc" { "vhd" } else { format };
        let file = dir.join(format!("image.{ext}"));
        let mut args = vec!["convert", "-f", "raw", "-O", format];
        args.extend_from_slice(options);
        args.extend([src.to_str().unwrap(), file.to_str().unwrap()]);
        run("qemu-img", &args);
        Self {
            _dir: tmp,
            dir,
            file,
            format,
        }
    }

    pub fn path(&self) -> &str {
        self.file.to_str().unwrap()
    }

    /// Runs qemu-io `commands` on the image.
    pub fn io(&self, commands: &[&str]) -> &Self {
        let mut args = vec!["-f", self.format];
        for c in commands {
            args.extend(["-c", c]);
        }
        args.push(self.path());
        run("qemu-io", &args);
        self
    }

    /// The raw disk qemu-img reads from the image.
    pub fn oracle(&self) -> Vec<u8> {
        let raw = self.dir.join("oracle.raw");
        let args = ["convert", "-f", self.format, "-O", "raw", self.path()];
        run("qemu-img", &[&args[..], &[raw.to_str().unwrap()]].concat());
        std::fs::read(raw).unwrap()
    }

    pub fn bytes(&self) -> Bytes {
        Bytes::from(std::fs::read(&self.file).unwrap())
    }

    pub fn name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}
