//! Where a path lands: the one place the store resolves a configured path before
//! comparing it with another.
//!
//! Comparing paths as written is wrong twice over: `/srv/x/../a` is `/srv/a`, and a
//! symlink makes two unrelated-looking paths one directory. The part of a path that
//! exists is resolved by the kernel (`realpath`); the part that does not exist yet
//! (a root `Store::open` will create) holds no symlink, so its `.` and `..` are
//! resolved lexically. Nothing is created or changed.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// The absolute path `path` refers to once every symlink and `..` is followed.
pub(crate) fn landing(path: &Path) -> PathBuf {
    let components: Vec<Component<'_>> = path.components().collect();
    for existing in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..existing].iter().collect();
        if let Ok(real) = fs::canonicalize(&prefix) {
            return lexical(real, &components[existing..]);
        }
    }
    lexical(PathBuf::new(), &components)
}

fn lexical(mut base: PathBuf, rest: &[Component<'_>]) -> PathBuf {
    for component in rest {
        match component {
            Component::ParentDir => {
                base.pop();
            }
            Component::CurDir => {}
            other => base.push(other),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_existing_symlinks_and_the_missing_rest_lexically() {
        let tmp = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir(real.join("a")).unwrap();
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(landing(&real.join("link")), real.join("a"));
        assert_eq!(landing(&real.join("link/new/../b")), real.join("a/b"));
        assert_eq!(landing(&real.join("x/../a/./c")), real.join("a/c"));
        assert_eq!(landing(&real.join("link/..")), real);
        assert_eq!(landing(Path::new("/")), Path::new("/"));
    }
}
