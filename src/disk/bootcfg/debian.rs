//! Debian's kernel symlinks: `/vmlinuz` and `/initrd.img` (or the same
//! in `/boot`, as `linux-base` makes them with `do_symlinks`), and the
//! previous kernel as `vmlinuz.old` / `initrd.img.old`.
//!
//! The last resort: no configuration says which command line the guest
//! wants, so the entries carry none and the domain's own command line is
//! all the kernel gets.

use super::{BootEntry, Error, Files, Format, Menu, Source, Subvol};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Where the symlinks live, in the order searched.
pub const DIRS: [&str; 2] = ["", "/boot"];

/// The entries for the first directory of [`DIRS`] holding `vmlinuz`, with
/// that kernel's path; `None` when neither does.
pub fn find<F: Files>(files: &mut F) -> Result<Option<(String, Menu)>, Error<F::Error>> {
    for dir in DIRS {
        let kernel = format!("{dir}/vmlinuz");
        if !exists(files, &kernel)? {
            continue;
        }
        let mut entries = Vec::new();
        for (suffix, what) in [("", "current kernel"), (".old", "previous kernel")] {
            let linux = format!("{dir}/vmlinuz{suffix}");
            if !exists(files, &linux)? {
                continue;
            }
            let initrd = format!("{dir}/initrd.img{suffix}");
            let initrds = if exists(files, &initrd)? { [initrd].to_vec() } else { Vec::new() };
            entries.push(BootEntry {
                title: format!("Debian {linux} ({what})"),
                id: Some(format!("vmlinuz{suffix}")),
                version: None,
                linux: linux.clone(),
                initrds,
                options: String::new(),
                source: Source { format: Format::DebianSymlinks, file: linux, line: 0 },
                saves: Vec::new(),
                submenu: None,
                subvol: Subvol::Top,
            });
        }
        return Ok(Some((kernel, Menu { entries, default: Ok(Some(0)), saves: Vec::new(), show: super::menu::Show::NONE })));
    }
    Ok(None)
}

fn exists<F: Files>(files: &mut F, path: &str) -> Result<bool, Error<F::Error>> {
    files.exists(path).map_err(|error| Error::Files { path: path.to_string(), error })
}

#[cfg(test)]
mod tests {
    use super::super::testfs::MemFs;
    use super::super::{find, Format, Why};

    #[test]
    fn symlinks_only() {
        let mut fs = MemFs::new(&[
            ("/vmlinuz", "kernel"),
            ("/initrd.img", "initrd"),
            ("/vmlinuz.old", "old kernel"),
            ("/boot/vmlinuz", "not this one"),
        ]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.format, f.config.as_str(), f.why), (Format::DebianSymlinks, "/vmlinuz", Why::Default));
        let e = f.entry();
        assert_eq!((e.linux.as_str(), e.initrds.as_slice(), e.options.as_str()), ("/vmlinuz", &["/initrd.img".to_string()][..], ""));
        assert_eq!(f.entries.len(), 2);
        assert_eq!((f.entries[1].linux.as_str(), f.entries[1].initrds.len()), ("/vmlinuz.old", 0));
        assert_eq!(find(&mut fs, Some("vmlinuz.old")).unwrap().selected, 1);
    }

    #[test]
    fn symlinks_in_boot() {
        let mut fs = MemFs::new(&[("/boot/vmlinuz", "k"), ("/boot/initrd.img", "i")]);
        let f = find(&mut fs, None).unwrap();
        assert_eq!((f.entry().linux.as_str(), f.entry().initrds[0].as_str()), ("/boot/vmlinuz", "/boot/initrd.img"));
    }
}
