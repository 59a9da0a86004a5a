//! Devices seen through small traits, so the code above them (partition
//! tables, filesystems) runs the same on the Xen blkfront and on a byte
//! vector in host tests.

pub mod block;
pub mod net;
