//! What hvmlite builds over a filesystem reader that follows no symlinks
//! and knows no read limit (`lamxfs`, `lambutter`): paths with symlinks
//! resolved here ([`resolve_path`]: at most 40, a link's size checked
//! before its target is read, `..` applied after the link before it), the
//! read limit checked before anything is allocated, a file read exactly
//! as long as it said it was, listings sorted without `.`, `..` or names
//! that are not UTF-8. A reader answers the raw questions; the rest is
//! the same for each.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::fs::{resolve_path, FileKind, FsError};

pub trait NoFollow {
    /// What `p` (no symlink in it but maybe the last component) is, and
    /// its size.
    fn lstat_raw(&self, p: &[u8]) -> Result<(FileKind, u64), FsError>;
    /// The target of the symlink at `p`.
    fn link_raw(&self, p: &[u8]) -> Result<Vec<u8>, FsError>;
    /// Fill `dst`, exactly as long as the regular file at `p` (no symlink
    /// in it), from the file's first byte.
    fn read_raw(&self, p: &[u8], dst: &mut [u8]) -> Result<(), FsError>;
    /// The names in the directory at `p` (no symlink in it), in any order.
    fn names_raw(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, FsError>;
    /// The largest file read.
    fn max_file(&self) -> u64;

    /// `path` with every symlink resolved (the last one too when
    /// `follow_last`).
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<u8>, FsError> {
        resolve_path(path, follow_last, |p| self.lstat_raw(p), |p| self.link_raw(p))
    }

    /// The size of the regular file at `path` (symlinks followed),
    /// refused above the read limit.
    fn file_len(&self, path: &str) -> Result<usize, FsError> {
        let p = self.resolve(path, true)?;
        let limit = self.max_file();
        match self.lstat_raw(&p)? {
            (FileKind::File, size) if size > limit => Err(FsError::TooLarge { size, limit }),
            (FileKind::File, size) => usize::try_from(size).map_err(|_| FsError::TooLarge { size, limit }),
            (FileKind::Dir, _) => Err(FsError::IsADirectory),
            _ => Err(FsError::NotAFile),
        }
    }

    /// Read the file at `path` into `dst`, exactly as long as the file.
    fn read_file_into(&self, path: &str, dst: &mut [u8]) -> Result<(), FsError> {
        let len = self.file_len(path)?;
        if len != dst.len() {
            return Err(FsError::Corrupt(format!("file is {len} bytes, not the {} it was", dst.len())));
        }
        self.read_raw(&self.resolve(path, true)?, dst)
    }

    /// The whole file at `path`, symlinks followed.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, FsError> {
        let mut data = vec![0u8; self.file_len(path)?];
        self.read_file_into(path, &mut data)?;
        Ok(data)
    }

    /// The names in directory `path`, sorted bytewise; names that are not
    /// UTF-8 are left out (no boot path uses them).
    fn list_dir(&self, path: &str) -> Result<Vec<String>, FsError> {
        let p = self.resolve(path, true)?;
        if self.lstat_raw(&p)?.0 != FileKind::Dir {
            return Err(FsError::NotADirectory);
        }
        let mut names: Vec<String> = self
            .names_raw(&p)?
            .into_iter()
            .filter_map(|n| String::from_utf8(n).ok())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .collect();
        crate::sort::sort_by(&mut names, |a, b| a.cmp(b));
        Ok(names)
    }

    /// Whether `path` exists (symlinks followed: a dangling one does not).
    fn exists(&self, path: &str) -> Result<bool, FsError> {
        match self.resolve(path, true) {
            Ok(_) => Ok(true),
            Err(FsError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// `kind` of a file mode's type bits, as lamxfs and lambutter report them.
pub(crate) fn kind(symlink: bool, dir: bool, file: bool) -> FileKind {
    if symlink {
        FileKind::Symlink
    } else if dir {
        FileKind::Dir
    } else if file {
        FileKind::File
    } else {
        FileKind::Other
    }
}
