//! `hvmlite squash`: an image whose code and data travel as one LZ4 block,
//! unpacked at boot by stage 0 (src/boot/head.s) before anything else runs.
//!
//! A linked hvmlite image has its code and data segments, then the head
//! segment (where the PVH note points) holding `squash_record`. Squashed,
//! it has:
//! - one PT_LOAD over the whole image's memory with no file bytes (so Xen
//!   and QEMU keep that range for it, zeroed, and put start_info, the
//!   command line and modules past the end),
//! - the head segment, the LZ4 block appended to it and the record filled
//!   in,
//! - the same PT_NOTEs.
//!
//! LZ4 (the block format, at lz4's highest level) because its decoder is a
//! few dozen 32-bit instructions that need no memory of their own and
//! check every length. xz packs tighter, but its decoder keeps a model and
//! a range coder: too much for stage 0 (docs/benchmarks.md has the
//! measurements).

use anyhow::{bail, ensure, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

use crate::elf_out::{write, Segment};
use hvmlite::boot::image::{SQUASH_MAGIC, SQUASH_RECORD_SIZE};

/// The head segment's record: where the block lies and what it unpacks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub src: u32,
    pub len: u32,
    pub out: u32,
    pub out_len: u32,
}

/// A segment of the input, copied out of it.
struct Seg {
    p_type: u32,
    flags: u32,
    paddr: u64,
    data: Vec<u8>,
    mem_size: u64,
    align: u64,
}

/// An hvmlite image taken apart: its segments, which one is the head, and
/// where the record sits in the head's bytes.
struct Image {
    entry: u64,
    segs: Vec<Seg>,
    head: usize,
    record_at: usize,
}

impl Image {
    fn parse(file: &[u8]) -> Result<Image> {
        let hdr = elf::FileHeader64::<object::Endianness>::parse(file).context("not an ELF64 file")?;
        let e = hdr.endian()?;
        let entry = hdr.e_entry(e);
        let mut segs = Vec::new();
        for p in hdr.program_headers(e, file)? {
            if !matches!(p.p_type(e), elf::PT_LOAD | elf::PT_NOTE) {
                continue;
            }
            let data = p.data(e, file).map_err(|_| anyhow::anyhow!("a segment lies outside the file"))?;
            ensure!(p.p_memsz(e) >= data.len() as u64, "a segment has more file bytes than memory");
            segs.push(Seg {
                p_type: p.p_type(e),
                flags: p.p_flags(e),
                paddr: p.p_paddr(e),
                data: data.to_vec(),
                mem_size: p.p_memsz(e),
                align: p.p_align(e),
            });
        }
        let head = segs
            .iter()
            .position(|s| s.p_type == elf::PT_LOAD && (s.paddr..s.paddr + s.data.len() as u64).contains(&entry))
            .context("no segment holds the entry point: not an hvmlite image")?;
        let hits: Vec<usize> = segs[head].data.windows(16).enumerate().filter(|(_, w)| *w == SQUASH_MAGIC).map(|(i, _)| i).collect();
        let [record_at] = hits[..] else {
            bail!("the entry's segment has {} squash records (want exactly 1): not an hvmlite image built with this version", hits.len());
        };
        ensure!(record_at + SQUASH_RECORD_SIZE <= segs[head].data.len(), "the squash record runs off its segment");
        Ok(Image { entry, segs, head, record_at })
    }

    fn record(&self) -> Record {
        let b = &self.segs[self.head].data[self.record_at + 16..];
        let w = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        Record { src: w(0), len: w(1), out: w(2), out_len: w(3) }
    }

    fn head_with(&self, r: Record, keep: usize) -> Vec<u8> {
        let mut h = self.segs[self.head].data[..keep].to_vec();
        for (i, v) in [r.src, r.len, r.out, r.out_len].iter().enumerate() {
            let at = self.record_at + 16 + 4 * i;
            h[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        h
    }

    /// The PT_LOADs other than the head.
    fn body(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().enumerate().filter(|&(i, s)| i != self.head && s.p_type == elf::PT_LOAD).map(|(_, s)| s)
    }

    /// The ELF with the body as one segment of `body_bytes` over
    /// `body_mem` bytes at `out`, then the head, then the notes.
    fn write(&self, out: u64, body_bytes: &[u8], body_mem: u64, head: &[u8]) -> Vec<u8> {
        let h = &self.segs[self.head];
        let mut segs = vec![
            Segment {
                p_type: elf::PT_LOAD,
                flags: elf::PF_R | elf::PF_W | elf::PF_X,
                paddr: out,
                data: body_bytes,
                mem_size: body_mem,
                align: 4096,
            },
            Segment { p_type: elf::PT_LOAD, flags: h.flags, paddr: h.paddr, data: head, mem_size: head.len() as u64, align: 16 },
        ];
        for n in self.segs.iter().filter(|s| s.p_type == elf::PT_NOTE) {
            segs.push(Segment {
                p_type: elf::PT_NOTE,
                flags: n.flags,
                paddr: n.paddr,
                data: &n.data,
                mem_size: n.mem_size,
                align: n.align,
            });
        }
        write(self.entry, &segs)
    }
}

/// Squash a linked hvmlite image (or app): see the module's text.
pub fn squash(file: &[u8]) -> Result<Vec<u8>> {
    let img = Image::parse(file)?;
    let rec = img.record();
    ensure!(rec.len == 0, "the image is squashed already");
    let head = &img.segs[img.head];
    ensure!(head.mem_size == head.data.len() as u64, "the head segment has memory without file bytes");
    let lo = img.body().map(|s| s.paddr).min().context("the image has no segments besides its head")?;
    let file_end = img.body().map(|s| s.paddr + s.data.len() as u64).max().unwrap();
    let mem_end = img.body().map(|s| s.paddr + s.mem_size).max().unwrap();
    ensure!(lo == rec.out as u64, "the image starts at {lo:#x}, its head unpacks to {:#x}", rec.out);
    ensure!(mem_end <= head.paddr, "the head at {:#x} lies inside the image ({lo:#x}-{mem_end:#x})", head.paddr);
    let mut bytes = vec![0u8; (file_end - lo) as usize];
    for s in img.body() {
        let at = (s.paddr - lo) as usize;
        bytes[at..at + s.data.len()].copy_from_slice(&s.data);
    }
    let block = lz4::block::compress(&bytes, Some(lz4::block::CompressionMode::HIGHCOMPRESSION(12)), false).context("LZ4")?;
    let block_at = head.data.len().div_ceil(16) * 16;
    let src = head.paddr + block_at as u64;
    ensure!(src + block.len() as u64 <= u32::MAX as u64, "the packed image would end above 4 GiB");
    let r = Record { src: src as u32, len: block.len() as u32, out: rec.out, out_len: bytes.len() as u32 };
    let mut h = img.head_with(r, head.data.len());
    h.resize(block_at, 0);
    h.extend_from_slice(&block);
    let out = img.write(lo, &[], mem_end - lo, &h);
    // What stage 0 will unpack is what was linked.
    let (r2, back) = unpack(&Image::parse(&out)?)?.context("the squashed image has no block")?;
    ensure!(r2 == r && back == bytes, "the squashed image does not unpack to the image");
    Ok(out)
}

/// The record and the unpacked bytes of a squashed image; `None` for one
/// that is not squashed.
fn unpack(img: &Image) -> Result<Option<(Record, Vec<u8>)>> {
    let r = img.record();
    if r.len == 0 {
        return Ok(None);
    }
    let head = &img.segs[img.head];
    let at = (r.src as u64).checked_sub(head.paddr).context("the LZ4 block lies before its segment")? as usize;
    let block = head.data.get(at..at + r.len as usize).context("the LZ4 block runs past its segment")?;
    let bytes = lz4::block::decompress(block, Some(r.out_len as i32)).context("the LZ4 block does not unpack")?;
    ensure!(bytes.len() == r.out_len as usize, "the LZ4 block unpacks to {} bytes, the record says {}", bytes.len(), r.out_len);
    Ok(Some((r, bytes)))
}

/// What a squashed image holds.
pub struct Unsquashed {
    pub record: Record,
    /// The image as linked would load it: its code and data as one
    /// segment, the head without the block.
    pub image: Vec<u8>,
}

/// The plain image inside a squashed one, or `None` if `file` is not
/// squashed.
pub fn unsquash(file: &[u8]) -> Result<Option<Unsquashed>> {
    let img = Image::parse(file)?;
    let Some((record, bytes)) = unpack(&img)? else {
        return Ok(None);
    };
    let body = img.body().find(|s| s.paddr == record.out as u64).context("no segment covers where the block unpacks to")?;
    ensure!(body.mem_size >= bytes.len() as u64, "the block unpacks past its segment");
    let keep = (record.src as u64 - img.segs[img.head].paddr) as usize;
    let head = img.head_with(Record { src: 0, len: 0, out: record.out, out_len: 0 }, keep);
    Ok(Some(Unsquashed { record, image: img.write(record.out as u64, &bytes, body.mem_size, &head) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small image shaped like a linked one: code at 1 MiB, data with
    /// bss, the head (entry, record) past them, a note.
    fn linked() -> Vec<u8> {
        let code: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let data = b"some data, some data, some data".to_vec();
        let mut head = vec![0xccu8; 48];
        head.extend_from_slice(&SQUASH_MAGIC);
        head.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0]);
        head.extend_from_slice(&[0x90; 20]);
        let note = [4u8, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0, 0, 0, 0x20, 0, 0, 0, 0, 0];
        let segs = [
            Segment {
                p_type: elf::PT_LOAD,
                flags: elf::PF_R | elf::PF_X,
                paddr: 0x100000,
                data: &code,
                mem_size: code.len() as u64,
                align: 4096,
            },
            Segment { p_type: elf::PT_LOAD, flags: elf::PF_R | elf::PF_W, paddr: 0x102000, data: &data, mem_size: 0x3000, align: 4096 },
            Segment { p_type: elf::PT_LOAD, flags: 7, paddr: 0x200000, data: &head, mem_size: head.len() as u64, align: 4096 },
            Segment { p_type: elf::PT_NOTE, flags: elf::PF_R, paddr: 0x101000, data: &note, mem_size: note.len() as u64, align: 4 },
        ];
        write(0x200000, &segs)
    }

    #[test]
    fn squashed_images_unpack_to_the_linked_bytes_with_the_same_entry_and_notes() {
        let plain = linked();
        let sq = squash(&plain).unwrap();
        let img = Image::parse(&sq).unwrap();
        assert_eq!(img.entry, 0x200000);
        let loads: Vec<_> = img.segs.iter().filter(|s| s.p_type == elf::PT_LOAD).map(|s| (s.paddr, s.data.len(), s.mem_size)).collect();
        // The image's memory, with no file bytes; the head with the block.
        assert_eq!(loads[0], (0x100000, 0, 0x5000));
        assert_eq!(loads[1].0, 0x200000);
        let note = img.segs.iter().find(|s| s.p_type == elf::PT_NOTE).unwrap();
        assert_eq!(&note.data[12..16], b"Xen\0");
        let r = img.record();
        assert_eq!((r.src, r.out, r.out_len), (0x200000 + 112, 0x100000, 0x2000 + 31));

        let u = unsquash(&sq).unwrap().unwrap();
        assert_eq!(u.record, r);
        let back = Image::parse(&u.image).unwrap();
        assert_eq!(back.record(), Record { src: 0, len: 0, out: 0x100000, out_len: 0 });
        let body: Vec<_> = back.body().collect();
        assert_eq!((body.len(), body[0].paddr, body[0].mem_size), (1, 0x100000, 0x5000));
        let orig = Image::parse(&plain).unwrap();
        for s in orig.body() {
            let at = (s.paddr - 0x100000) as usize;
            assert_eq!(&body[0].data[at..at + s.data.len()], &s.data[..]);
        }
        // A plain image stays plain; the unpacked one squashes again.
        assert!(unsquash(&plain).unwrap().is_none());
        assert_eq!(squash(&u.image).unwrap(), sq);
    }

    #[test]
    fn what_cannot_be_squashed_is_refused_with_its_reason() {
        let sq = squash(&linked()).unwrap();
        assert!(squash(&sq).unwrap_err().to_string().contains("squashed already"));
        assert!(squash(b"not an elf at all, not at all......................................").is_err());
        // Two records: which one stage 0 reads is not knowable.
        let mut two = linked();
        let at = two.windows(16).position(|w| w == SQUASH_MAGIC).unwrap();
        two.copy_within(at..at + 16, at + 32);
        assert!(squash(&two).unwrap_err().to_string().contains("2 squash records"));
        // A record that does not match its block is found by the tool too.
        let at = sq.windows(16).position(|w| w == SQUASH_MAGIC).unwrap() + 16;
        for (field, delta) in [(3, 1u32), (1, u32::MAX)] {
            let mut bad = sq.clone();
            let v = u32::from_le_bytes(bad[at + 4 * field..at + 4 * field + 4].try_into().unwrap()).wrapping_add(delta);
            bad[at + 4 * field..at + 4 * field + 4].copy_from_slice(&v.to_le_bytes());
            assert!(unsquash(&bad).is_err(), "field {field}");
        }
    }
}
