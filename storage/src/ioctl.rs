//! The raw ioctls this crate issues itself: `FICLONE` and the three btrfs subvolume
//! requests. Every `unsafe` of the crate is here.
//!
//! Block-device requests (size, zero-out, discard, exclusive open) belong to
//! `bootsource-blockdev`. The btrfs requests are ioctls rather than `btrfs` commands
//! because their argument structs are fixed-size and simple, and shelling out would add
//! a runtime dependency on btrfs-progs, its output format and its exit codes for three
//! calls. Layouts follow `<linux/btrfs.h>` and are checked by size at compile time.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// `BTRFS_IOCTL_MAGIC`, shared by `FICLONE` (which started as `BTRFS_IOC_CLONE`).
const MAGIC: u8 = 0x94;
/// `BTRFS_SUBVOL_RDONLY`.
const SUBVOL_RDONLY: u64 = 1 << 1;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; 4088],
}

/// `struct btrfs_ioctl_vol_args_v2` (with the `size`/`qgroup_inherit` union unused).
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; 4040],
}

const _: () = assert!(size_of::<VolArgs>() == 4096);
const _: () = assert!(size_of::<VolArgsV2>() == 4096);

mod raw {
    use super::{MAGIC, VolArgs, VolArgsV2};
    nix::ioctl_write_int!(ficlone, MAGIC, 9);
    nix::ioctl_write_ptr!(subvol_create, MAGIC, 14, VolArgs);
    nix::ioctl_write_ptr!(snap_destroy, MAGIC, 15, VolArgs);
    nix::ioctl_write_ptr!(snap_create_v2, MAGIC, 23, VolArgsV2);
}

/// Makes `dest` share all of `src`'s extents (and take its size).
pub(crate) fn ficlone(dest: &File, src: &File) -> io::Result<()> {
    let src_fd = nix::sys::ioctl::ioctl_param_type::try_from(src.as_raw_fd())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both descriptors are open for the lifetime of the call; FICLONE takes the
    // source descriptor by value and reads no memory of ours.
    unsafe { raw::ficlone(dest.as_raw_fd(), src_fd) }?;
    Ok(())
}

/// Creates the subvolume `name` in the directory `parent`.
pub(crate) fn subvolume_create(parent: &File, name: &OsStr) -> io::Result<()> {
    let args = VolArgs {
        fd: 0,
        name: name_field(name)?,
    };
    // SAFETY: `parent` is an open directory and `args` is a valid, NUL-terminated
    // btrfs_ioctl_vol_args that outlives the call; the kernel only reads it.
    unsafe { raw::subvol_create(parent.as_raw_fd(), &args) }?;
    Ok(())
}

/// Deletes the subvolume `name` (read-only or not) in the directory `parent`.
pub(crate) fn subvolume_delete(parent: &File, name: &OsStr) -> io::Result<()> {
    let args = VolArgs {
        fd: 0,
        name: name_field(name)?,
    };
    // SAFETY: as in `subvolume_create`.
    unsafe { raw::snap_destroy(parent.as_raw_fd(), &args) }?;
    Ok(())
}

/// Snapshots the subvolume open as `src` to `name` in the directory `parent`.
pub(crate) fn snapshot(src: &File, parent: &File, name: &OsStr, read_only: bool) -> io::Result<()> {
    let args = VolArgsV2 {
        fd: i64::from(src.as_raw_fd()),
        transid: 0,
        flags: if read_only { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: name_field(name)?,
    };
    // SAFETY: `parent` is an open directory, `src` an open subvolume root, and `args` a
    // valid, NUL-terminated btrfs_ioctl_vol_args_v2 that outlives the call; the kernel
    // only reads it (no qgroup_inherit pointer: flags do not ask for one).
    unsafe { raw::snap_create_v2(parent.as_raw_fd(), &args) }?;
    Ok(())
}

/// A NUL-terminated single path component in a fixed-size buffer.
fn name_field<const N: usize>(name: &OsStr) -> io::Result<[u8; N]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= N || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single path component",
        ));
    }
    let mut field = [0u8; N];
    field[..bytes.len()].copy_from_slice(bytes);
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_one_component() {
        assert!(name_field::<8>(OsStr::new("a/b")).is_err());
        assert!(name_field::<8>(OsStr::new("")).is_err());
        assert!(name_field::<8>(OsStr::new("12345678")).is_err());
        assert_eq!(&name_field::<8>(OsStr::new("abc")).unwrap()[..4], b"abc\0");
    }
}
