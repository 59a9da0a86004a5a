//! XFS images for the tests, made by `mkfs.xfs` through a protofile (no
//! mount needed), and a crash left in one's log (a loop mount). Shared by
//! the library's unit tests (`src/disk/xfs.rs`) and the Xen disk tests.
#![allow(dead_code)] // each includer uses part of it

use std::process::Command;

/// mkfs.xfs over a tree, through a protofile (no mount needed): the
/// current defaults plus rmapbt and nrext64, as xfsprogs 6.5+ makes
/// them. Files: (path, bytes); symlinks: (path, target).
pub fn mkfs_xfs(mib: u64, files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempdir();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    // The protofile: one line a node, directories opened and closed.
    let mut tree = std::collections::BTreeMap::<String, Option<String>>::new();
    for (i, (p, data)) in files.iter().enumerate() {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, data).unwrap();
        tree.insert(p.to_string(), Some(format!("---644 0 0 {}", f.display())));
    }
    for (p, t) in links {
        tree.insert(p.to_string(), Some(format!("l--777 0 0 {t}")));
    }
    let mut proto = String::from("/dummy\n0 0\nd--755 0 0\n");
    let mut open: Vec<String> = Vec::new();
    for (p, line) in &tree {
        let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        let (dirs, name) = parts.split_at(parts.len() - 1);
        while !dirs.starts_with(&open.iter().map(String::as_str).collect::<Vec<_>>()) {
            open.pop();
            proto += "$\n";
        }
        for d in &dirs[open.len()..] {
            proto += &format!("{d} d--755 0 0\n");
            open.push(d.to_string());
        }
        proto += &format!("{} {}\n", name[0], line.as_ref().unwrap());
    }
    for _ in 0..=open.len() {
        proto += "$\n";
    }
    std::fs::write(dir.join("proto"), proto).unwrap();
    let img = dir.join("xfs.img");
    std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
    let st = Command::new("mkfs.xfs")
        .args(["-q", "-f", "-m", "rmapbt=1", "-i", "nrext64=1", "-p"])
        .arg(dir.join("proto"))
        .arg(&img)
        // mkfs.xfs refuses filesystems under 300 MB except for fstests.
        .envs([("TEST_DIR", "/tmp"), ("TEST_DEV", "x"), ("QA_CHECK_FS", "1")])
        .status()
        .expect("mkfs.xfs (xfsprogs): `make test` installs it");
    assert!(st.success());
    let data = std::fs::read(&img).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    data
}

/// `img` after Linux, through a loop mount, rewrote `path` as
/// `grub2-editenv` does (a new file, fsynced, renamed over the old one)
/// and the filesystem was shut down with its log flushed but not
/// checkpointed (`xfs_io -x -c "shutdown -f"`): the rename is only in
/// the log, as after a crash.
pub fn rewrite_then_crash(img: &[u8], path: &str, data: &[u8]) -> Vec<u8> {
    let dir = tempdir();
    let (file, mnt) = (dir.join("xfs.img"), dir.join("mnt"));
    std::fs::write(&file, img).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let run = |c: &mut Command| {
        let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("mount").arg("-o").arg("loop").arg(&file).arg(&mnt));
    let at = mnt.join(path.trim_start_matches('/'));
    let tmp = at.with_extension("new");
    std::fs::write(&tmp, data).unwrap();
    run(Command::new("xfs_io").arg("-c").arg("fsync").arg(&tmp));
    std::fs::rename(&tmp, &at).unwrap();
    run(Command::new("xfs_io").args(["-x", "-c", "shutdown -f"]).arg(&mnt));
    run(Command::new("umount").arg(&mnt));
    let out = std::fs::read(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("hvmlite-xfs-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
