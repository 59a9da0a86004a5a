//! From a block device to files: partition tables ([`part`]) and read-only
//! ext2/3/4 ([`fs`]), for booting the kernel that lives on a guest's own
//! disk. Pure `no_std` + `alloc`; everything the disk says is checked.

pub mod part;

#[cfg(test)]
mod testimg;
