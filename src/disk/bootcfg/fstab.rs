//! The btrfs subvolume mounts of `/etc/fstab`, as openSUSE's
//! `grub2-install` reads them to write `btrfs-mount-subvol` lines into the
//! image it builds: with `/` a snapper snapshot, `/.snapshots` (where the
//! snapshot menu `grub-snapshot.cfg` is) and `/boot/grub2/<platform>` are
//! other subvolumes, and GRUB finds files there through these mounts.
//! hvmlite, started where that image would be, reads the same fstab.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::grub::MAX_MOUNTS;

/// (mount point, subvolume path from the top level) of each line that
/// mounts a `subvol=` of btrfs somewhere other than `/`, in file order, at
/// most [`MAX_MOUNTS`]. A line naming its device by a UUID other than
/// `uuid` (this filesystem's) is another filesystem's and left out.
pub fn btrfs_mounts(text: &str, uuid: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(spec), Some(dir), Some(kind), Some(opts)) = (f.next(), f.next(), f.next(), f.next()) else { continue };
        if spec.starts_with('#') || kind != "btrfs" {
            continue;
        }
        let fs_uuid = spec.strip_prefix("UUID=").or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"));
        if let (Some(a), Some(b)) = (fs_uuid, uuid) {
            if !a.eq_ignore_ascii_case(b) {
                continue;
            }
        }
        let dir = unescape(dir);
        let Some(subvol) = opts.split(',').find_map(|o| o.strip_prefix("subvol=")) else { continue };
        let subvol = unescape(subvol).trim_start_matches('/').to_string();
        let dir = dir.trim_end_matches('/');
        if !dir.starts_with('/') || subvol.is_empty() || out.len() == MAX_MOUNTS {
            continue;
        }
        out.push((dir.into(), subvol));
    }
    out
}

/// fstab's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct.map(|d| d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'))) {
            Some(v) if v <= 0xff => {
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensuse_fstab() {
        let fstab = "\
UUID=1d9d2e8f-0000-4000-8000-00000000abcd  /                       btrfs  defaults                      0  0
UUID=1d9d2e8f-0000-4000-8000-00000000abcd  /var                    btrfs  subvol=/@/var                 0  0
UUID=1D9D2E8F-0000-4000-8000-00000000ABCD  /.snapshots             btrfs  subvol=/@/.snapshots          0  0
UUID=1d9d2e8f-0000-4000-8000-00000000abcd  /boot/grub2/x86_64-efi  btrfs  subvol=/@/boot/grub2/x86_64-efi 0  0
# UUID=1d9d2e8f-0000-4000-8000-00000000abcd /old btrfs subvol=/@/old 0 0
UUID=99999999-0000-4000-8000-000000000000  /data                   btrfs  subvol=@data                  0  0
/dev/vdb1                                  /my\\040dir/             btrfs  noatime,subvol=@x             0  0
UUID=2222-3333                             /boot/efi               vfat   utf8                          0  2
tmpfs /tmp tmpfs
";
        let m = btrfs_mounts(fstab, Some("1d9d2e8f-0000-4000-8000-00000000abcd"));
        let want =
            [("/var", "@/var"), ("/.snapshots", "@/.snapshots"), ("/boot/grub2/x86_64-efi", "@/boot/grub2/x86_64-efi"), ("/my dir", "@x")];
        assert_eq!(m, want.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(btrfs_mounts(fstab, None).len(), 5);
        let many = "UUID=a /m btrfs subvol=s 0 0\n".repeat(100);
        assert_eq!(btrfs_mounts(&many, None).len(), MAX_MOUNTS);
        assert_eq!(unescape("a\\1b\\777\\"), "a\\1b\\777\\");
    }
}
