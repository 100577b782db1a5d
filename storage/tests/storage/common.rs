//! Fixtures: loop devices, XFS and btrfs mounts, a stand-in importer, and checks.
//!
//! Everything here is real: loop devices over sparse files in the system temp dir,
//! file systems made and mounted by the test, removed on drop (also on panic). A
//! missing tool fails the test with the Debian package to install; nothing is skipped.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use bootsource_place::Place;
use bootsource_storage::{Digest, Stage, Store, Version};

/// Virtual size of the test images.
pub const SIZE: u64 = 8 << 20;
/// What an importer announces for the test images: their size, known up front.
pub const SIZED: bootsource_place::DiskSize = bootsource_place::DiskSize::Known(SIZE);

/// Fails unless `tool` is installed, naming the package that has it.
pub fn require(tool: &str, package: &str) {
    let dirs = std::env::var("PATH").unwrap_or_default();
    let found = dirs
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|d| Path::new(d).join(tool).is_file());
    assert!(
        found,
        "{tool} not found: install the Debian package {package} (apt-get install {package})"
    );
}

/// Runs a command, failing the test with its stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `losetup -f` picks a free device and binds it in two steps; serialize our calls.
static LOSETUP: Mutex<()> = Mutex::new(());

/// A loop device over a sparse temp file, detached on drop.
#[derive(Debug)]
pub struct Loop {
    pub dev: PathBuf,
    pub backing: PathBuf,
    _dir: tempfile::TempDir,
}

impl Loop {
    pub fn new(size: u64) -> Self {
        require("losetup", "mount");
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing.img");
        File::create(&backing).unwrap().set_len(size).unwrap();
        let _guard = LOSETUP.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = String::new();
        for _ in 0..5 {
            let out = Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&backing)
                .output()
                .expect("losetup (Debian package mount)");
            if out.status.success() {
                let dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
                return Self {
                    dev,
                    backing,
                    _dir: dir,
                };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("losetup -f failed: {last}");
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A file system on a loop device, mounted in a temp dir; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    _lo: Loop,
}

impl Mount {
    /// XFS with reflinks (mkfs.xfs needs at least 300 MB; the file is sparse).
    pub fn xfs() -> Self {
        require("mkfs.xfs", "xfsprogs");
        Self::make(
            320 << 20,
            Command::new("mkfs.xfs").args(["-q", "-f", "-m", "reflink=1"]),
        )
    }

    pub fn btrfs() -> Self {
        require("mkfs.btrfs", "btrfs-progs");
        Self::make(256 << 20, Command::new("mkfs.btrfs").args(["-q", "-f"]))
    }

    pub fn ext4(size: u64) -> Self {
        require("mkfs.ext4", "e2fsprogs");
        Self::make(size, Command::new("mkfs.ext4").args(["-q", "-F"]))
    }

    fn make(size: u64, mkfs: &mut Command) -> Self {
        require("mount", "mount");
        let lo = Loop::new(size);
        run(mkfs.arg(&lo.dev));
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount").arg(&lo.dev).arg(dir.path()));
        Self {
            path: dir.path().to_owned(),
            _dir: dir,
            _lo: lo,
        }
    }

    pub fn device(&self) -> &Path {
        &self._lo.dev
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A distinct digest per seed (first 12 hex digits differ).
pub fn digest(seed: u8) -> Digest {
    format!("sha256:{}", format!("{seed:02x}").repeat(32))
        .parse::<Digest>()
        .unwrap()
}

/// The seed a digest was made from.
pub fn seed_of(digest: &Digest) -> u8 {
    u8::from_str_radix(&digest.hex()[..2], 16).unwrap()
}

/// Data extents of the image for `seed`; everything else is zero.
pub fn extents(seed: u8) -> Vec<(u64, Vec<u8>)> {
    vec![
        (0, vec![seed; 64 << 10]),
        (3 << 20, vec![seed ^ 0x5a; 128 << 10]),
        (SIZE - 4096, vec![seed.wrapping_add(1); 4096]),
    ]
}

/// The whole image for `seed`.
pub fn image(seed: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; usize::try_from(SIZE).unwrap()];
    for (off, data) in extents(seed) {
        let off = usize::try_from(off).unwrap();
        bytes[off..off + data.len()].copy_from_slice(&data);
    }
    bytes
}

/// What the importer does: writes the image's extents into the place it is given.
pub fn write_image(place: &dyn Place, seed: u8) {
    for (off, data) in extents(seed) {
        place.write_at(off, &data).unwrap();
    }
}

/// Checks the first `SIZE` bytes at `path` are the image for `seed`.
pub fn assert_image(path: &Path, seed: u8) {
    let mut bytes = vec![0u8; usize::try_from(SIZE).unwrap()];
    File::open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .read_exact_at(&mut bytes, 0)
        .unwrap();
    assert!(
        bytes == image(seed),
        "{} does not hold image {seed}",
        path.display()
    );
}

/// Imports and publishes the image for `seed`.
pub fn import(store: &Store, source: &str, backend: &str, seed: u8) -> Version {
    match store
        .stage(source, backend, &digest(seed), SIZED, 1)
        .unwrap()
    {
        Stage::Staging(staging) => {
            write_image(&*staging.place(), seed);
            store.commit(staging).unwrap()
        }
        Stage::AlreadyPresent(v) => panic!("{} already present", v.volume),
    }
}

/// The catalog as JSON, for checks the API does not expose.
pub fn catalog_json(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(state.join("catalog.json")).unwrap()).unwrap()
}

/// Names in a directory, sorted (empty if it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `filefrag -v` output for a file.
pub fn filefrag(path: &Path) -> String {
    require("filefrag", "e2fsprogs");
    run(Command::new("filefrag").arg("-v").arg(path))
}

/// The data ranges of a file, from SEEK_DATA/SEEK_HOLE.
pub fn data_ranges(path: &Path) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let file = File::open(path).unwrap();
    let len = i64::try_from(file.metadata().unwrap().len()).unwrap();
    let mut ranges = Vec::new();
    let mut pos = 0i64;
    while pos < len {
        let Ok(start) = lseek(&file, pos, Whence::SeekData) else {
            break;
        };
        let end = lseek(&file, start, Whence::SeekHole).unwrap();
        ranges.push((u64::try_from(start).unwrap(), u64::try_from(end).unwrap()));
        pos = end;
    }
    ranges
}

/// Byte ranges of a file that hold written data, from the extent map (`filefrag -v`):
/// unlike SEEK_DATA, unaffected by what the page cache holds; unwritten (zeroed)
/// extents and holes are left out.
pub fn written_ranges(path: &Path) -> Vec<(u64, u64)> {
    let out = filefrag(path);
    let block: u64 = out
        .split("blocks of ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no block size in filefrag output:\n{out}"));
    let mut ranges = Vec::new();
    for line in out.lines() {
        let mut fields = line.split(':');
        let (Some(index), Some(logical)) = (fields.next(), fields.next()) else {
            continue;
        };
        if index.trim().parse::<u64>().is_err() || line.contains("unwritten") {
            continue;
        }
        let (start, end) = logical.split_once("..").unwrap();
        let start: u64 = start.trim().parse().unwrap();
        let end: u64 = end.trim().parse().unwrap();
        ranges.push((start * block, (end + 1) * block));
    }
    ranges
}
