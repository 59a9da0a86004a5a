//! The host side of `hvmlite`: make and look into payload bundles.
//!
//! ```text
//! hvmlite pack --kernel vmlinuz [--initrd initrd.img] [--cmdline "…"] [--bzimage] [--elf hvmlite.elf] -o OUT
//! hvmlite inspect FILE
//! hvmlite extract --kernel vmlinuz -o vmlinux
//! hvmlite squash IMAGE -o OUT
//! ```
//!
//! `pack` stores a bzImage **decompressed** by default (as a compact
//! vmlinux ELF plus the bzImage's setup header), so nothing is
//! decompressed at boot; `--bzimage` keeps it as it is. `--elf` writes one
//! self-contained PVH ELF: hvmlite with the bundle as an extra segment.
//! `squash` packs an hvmlite image's code and data ([`squash`]).

mod elf_out;
mod squash;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use object::elf;

use elf_out::Segment;
use object::endian::{LittleEndian as LE, U32, U64};
use object::read::elf::{FileHeader, ProgramHeader};

use hvmlite::boot::image::SQUASH_MAGIC;
use hvmlite::payload::bundle::{self, write::Part, Verify};
use hvmlite::payload::kernel::{self, Format, Kernel};

#[derive(Parser)]
#[command(name = "hvmlite", version, about = "Make and inspect hvmlite payload bundles (kernel + initrd + command line)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pack a Linux kernel, an initrd and a command line into a bundle.
    Pack {
        /// The kernel: a bzImage (vmlinuz) or an uncompressed vmlinux ELF.
        #[arg(long)]
        kernel: PathBuf,
        /// The initrd (initramfs), handed to the kernel in place.
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// The kernel command line (hvmlite appends the one it boots with).
        #[arg(long, default_value = "")]
        cmdline: String,
        /// Keep a bzImage compressed (it then decompresses itself at boot).
        #[arg(long)]
        bzimage: bool,
        /// Write one self-contained PVH ELF: this hvmlite image plus the bundle.
        #[arg(long, value_name = "HVMLITE_ELF")]
        elf: Option<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Describe a bundle, a self-contained hvmlite ELF or a kernel image.
    Inspect { file: PathBuf },
    /// Pack an hvmlite image's code and data into one LZ4 block that its
    /// first instructions unpack (the installed hvmlite.elf is squashed).
    Squash {
        image: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the vmlinux inside a bzImage (decompressed, compacted): an ELF
    /// that Linux's own PVH entry or any ELF loader boots.
    Extract {
        #[arg(long)]
        kernel: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Pack { kernel, initrd, cmdline, bzimage, elf, output } => {
            let k = std::fs::read(&kernel).with_context(|| format!("reading {}", kernel.display()))?;
            let i = initrd.as_ref().map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display()))).transpose()?;
            let out = match elf {
                // The kernel's segments become the ELF's own, loaded in
                // place by Xen's or QEMU's ELF loader: nothing to copy at boot.
                Some(h) if !bzimage => {
                    let img = std::fs::read(&h).with_context(|| format!("reading {}", h.display()))?;
                    let (b, vmlinux) = pack_preloaded(&k, i.as_deref(), &cmdline)?;
                    embed(&img, &b, Some(&vmlinux))?
                }
                Some(h) => {
                    let img = std::fs::read(&h).with_context(|| format!("reading {}", h.display()))?;
                    embed(&img, &pack(&k, i.as_deref(), &cmdline, false)?, None)?
                }
                None => pack(&k, i.as_deref(), &cmdline, !bzimage)?,
            };
            std::fs::write(&output, &out).with_context(|| format!("writing {}", output.display()))?;
            println!("{}: {} bytes", output.display(), out.len());
            Ok(())
        }
        Cmd::Extract { kernel, output } => {
            let k = std::fs::read(&kernel).with_context(|| format!("reading {}", kernel.display()))?;
            let v = match kernel::parse(&k).context("the kernel")?.format {
                Format::BzImage => compact_vmlinux(&decompress_bzimage(&k)?)?,
                Format::Vmlinux => compact_vmlinux(&k)?,
            };
            std::fs::write(&output, &v).with_context(|| format!("writing {}", output.display()))?;
            println!("{}: {} bytes", output.display(), v.len());
            Ok(())
        }
        Cmd::Squash { image, output } => {
            let i = std::fs::read(&image).with_context(|| format!("reading {}", image.display()))?;
            let out = squash::squash(&i).with_context(|| format!("squashing {}", image.display()))?;
            std::fs::write(&output, &out).with_context(|| format!("writing {}", output.display()))?;
            println!("{}: {} bytes (from {})", output.display(), out.len(), i.len());
            Ok(())
        }
        Cmd::Inspect { file } => {
            let b = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            inspect(&b)
        }
    }
}

/// Build a bundle. With `decompress`, a bzImage's payload is unpacked to
/// its vmlinux, stored compactly, with the bzImage's setup header beside it.
pub fn pack(kernel_image: &[u8], initrd: Option<&[u8]>, cmdline: &str, decompress: bool) -> Result<Vec<u8>> {
    if cmdline.contains('\0') {
        bail!("the command line may not contain NUL");
    }
    let k = kernel::parse(kernel_image).context("the kernel")?;
    let (stored, format, header, pvh): (Vec<u8>, u32, Option<&[u8]>, Option<u64>) = match k.format {
        Format::BzImage if decompress => {
            let vmlinux = decompress_bzimage(kernel_image)?;
            let pvh = kernel::parse(&vmlinux).context("the bzImage's vmlinux")?.pvh_entry;
            (compact_vmlinux(&vmlinux)?, bundle::FORMAT_VMLINUX, k.setup_header, pvh)
        }
        // Kept compressed: its notes are inside the payload. Look there
        // (when the compression is one the tool reads) to record the entry.
        Format::BzImage => {
            let pvh = decompress_bzimage(kernel_image).ok().and_then(|v| kernel::parse(&v).ok()?.pvh_entry);
            (kernel_image.to_vec(), bundle::FORMAT_BZIMAGE, None, pvh)
        }
        Format::Vmlinux => (compact_vmlinux(kernel_image)?, bundle::FORMAT_VMLINUX, None, k.pvh_entry),
    };
    build_bundle(Part { kind: bundle::KIND_KERNEL, format, data: &stored }, header, initrd, cmdline, pvh)
}

/// Lay out a bundle from its kernel part and the optional others, and
/// check that it parses back.
fn build_bundle(kernel: Part, header: Option<&[u8]>, initrd: Option<&[u8]>, cmdline: &str, pvh_entry: Option<u64>) -> Result<Vec<u8>> {
    let entry = pvh_entry.map(u64::to_le_bytes);
    let mut parts = vec![kernel];
    if let Some(e) = &entry {
        parts.push(Part { kind: bundle::KIND_PVH_ENTRY, format: 0, data: e });
    }
    if let Some(h) = header {
        parts.push(Part { kind: bundle::KIND_SETUP_HEADER, format: 0, data: h });
    }
    if !cmdline.is_empty() {
        parts.push(Part { kind: bundle::KIND_CMDLINE, format: 0, data: cmdline.as_bytes() });
    }
    if let Some(i) = initrd {
        parts.push(Part { kind: bundle::KIND_INITRD, format: 0, data: i });
    }
    let b = bundle::write::build(&parts);
    bundle::parse(&b, Verify::All).context("the bundle just built does not parse")?;
    Ok(b)
}

/// For a self-contained ELF: the compact vmlinux (whose segments the ELF
/// will carry) and a bundle whose kernel is that vmlinux's headers only
/// (format 3, preloaded).
pub fn pack_preloaded(kernel_image: &[u8], initrd: Option<&[u8]>, cmdline: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let k = kernel::parse(kernel_image).context("the kernel")?;
    let vmlinux = match k.format {
        Format::BzImage => compact(&decompress_bzimage(kernel_image)?, true)?,
        Format::Vmlinux => compact(kernel_image, true)?,
    };
    let headers = compact(&vmlinux, false)?;
    let pvh = kernel::parse(&vmlinux).context("the vmlinux")?.pvh_entry;
    let kernel = Part { kind: bundle::KIND_KERNEL, format: bundle::FORMAT_VMLINUX_PRELOADED, data: &headers };
    let b = build_bundle(kernel, k.setup_header, initrd, cmdline, pvh)?;
    Ok((b, vmlinux))
}

/// The vmlinux inside a bzImage: `payload_offset`/`payload_length` of the
/// protected-mode part, decompressed by its magic.
pub fn decompress_bzimage(image: &[u8]) -> Result<Vec<u8>> {
    let setup = (match image[0x1f1] {
        0 => 4,
        n => n as usize,
    } + 1)
        * 512;
    let off = u32::from_le_bytes(image[0x248..0x24c].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(image[0x24c..0x250].try_into().unwrap()) as usize;
    let p = image.get(setup + off..setup + off + len).context("bzImage payload lies outside the file")?;
    // Linux appends the decompressed size, 4 bytes little-endian, to the stream.
    let want = u32::from_le_bytes(p[len - 4..].try_into().unwrap()) as usize;
    let mut out = Vec::with_capacity(want);
    if p.starts_with(b"\xfd7zXZ\0") {
        lzma_rust2::XzReader::new(&p[..len - 4], false).read_to_end(&mut out).context("xz payload")?;
    } else if p.starts_with(b"\x1f\x8b") {
        flate2::read::GzDecoder::new(p).read_to_end(&mut out).context("gzip payload")?;
    } else if p.starts_with(b"\x28\xb5\x2f\xfd") {
        ruzstd::decoding::StreamingDecoder::new(&p[..len - 4])
            .map_err(|e| anyhow::anyhow!("zstd payload: {e}"))?
            .read_to_end(&mut out)
            .context("zstd payload")?;
    } else {
        bail!(
            "bzImage payload compression {:02x?} is not supported (xz, gzip, zstd are); use --bzimage to keep it compressed",
            &p[..4.min(p.len())]
        );
    }
    if out.len() != want {
        bail!("bzImage payload decompressed to {} bytes, its trailer says {want}", out.len());
    }
    Ok(out)
}

/// A vmlinux reduced to what a loader needs: the ELF header, PT_LOAD
/// segments without their trailing zeros (they come back as p_memsz >
/// p_filesz) and the PT_NOTEs, packed at 4 KiB-aligned offsets; no
/// section headers. Still an ELF64 vmlinux that any loader reads.
pub fn compact_vmlinux(image: &[u8]) -> Result<Vec<u8>> {
    compact(image, true)
}

/// [`compact_vmlinux`], or with `load_data` false the headers and notes
/// only (every PT_LOAD with `p_filesz` 0).
fn compact(image: &[u8], load_data: bool) -> Result<Vec<u8>> {
    kernel::parse_vmlinux(image).context("the vmlinux")?;
    let hdr = elf::FileHeader64::<object::Endianness>::parse(image)?;
    let e = hdr.endian()?;
    let phdrs: Vec<_> =
        hdr.program_headers(e, image)?.iter().filter(|p| matches!(p.p_type(e), elf::PT_LOAD | elf::PT_NOTE) && p.p_memsz(e) > 0).collect();
    let mut segs = Vec::new();
    for p in &phdrs {
        let data = p.data(e, image).map_err(|_| anyhow::anyhow!("segment outside the file"))?;
        let keep = match p.p_type(e) {
            elf::PT_LOAD if !load_data => 0,
            elf::PT_LOAD => data.len() - data.iter().rev().take_while(|&&b| b == 0).count(),
            _ => data.len(),
        };
        segs.push(Segment {
            p_type: p.p_type(e),
            flags: p.p_flags(e),
            paddr: p.p_paddr(e),
            data: &data[..keep],
            mem_size: p.p_memsz(e),
            align: p.p_align(e),
        });
    }
    let out = elf_out::write(hdr.e_entry(e), &segs);
    // Same segments, same entry: the loader sees the same kernel.
    let (a, b) = (kernel::parse_vmlinux(image)?, kernel::parse_vmlinux(&out).context("the compacted vmlinux")?);
    assert_eq!((a.span, a.entry_offset, a.min_addr), (b.span, b.entry_offset, b.min_addr));
    Ok(out)
}

/// hvmlite's image with `bundle` appended as one more PT_LOAD right after
/// the image (and after `preloaded`'s kernel) in physical memory, and the
/// image's `Embedded` record (found by its magic) pointing at it. A
/// squashed image is unpacked first: the record lies inside its block, and
/// the result is tens of MiB of kernel anyway. With
/// `preloaded` (a compact vmlinux), its PT_LOADs become the ELF's own, at
/// their physical addresses, and the record names their range. The
/// original bytes stay where they were; the program header table moves to
/// the end of the file.
pub fn embed(image: &[u8], bundle_bytes: &[u8], preloaded: Option<&[u8]>) -> Result<Vec<u8>> {
    let unsquashed = squash::unsquash(image).context("the hvmlite image")?;
    let image = unsquashed.as_ref().map_or(image, |u| &u.image[..]);
    let hdr = elf::FileHeader64::<object::Endianness>::parse(image).context("hvmlite image is not an ELF64")?;
    let e = hdr.endian()?;
    let phdrs = hdr.program_headers(e, image)?;
    if phdrs.iter().all(|p| p.p_type(e) != elf::PT_NOTE) {
        bail!("hvmlite image has no PT_NOTE: is it a PVH image?");
    }
    let hits: Vec<usize> = image.windows(16).enumerate().filter(|(_, w)| *w == bundle::EMBED_MAGIC).map(|(i, _)| i).collect();
    let [at] = hits[..] else {
        bail!("hvmlite image has {} payload records (want exactly 1): not a plain hvmlite.elf?", hits.len());
    };
    let rec = at + 16..at + bundle::EMBED_RECORD_SIZE;
    if image.len() < rec.end || image[rec.clone()].iter().any(|&b| b != 0) {
        bail!("hvmlite image already carries a payload");
    }
    let loads = || phdrs.iter().filter(|p| p.p_type(e) == elf::PT_LOAD);
    let image_start = loads().map(|p| p.p_paddr(e)).min().unwrap_or(0);
    let image_end = loads().map(|p| p.p_paddr(e) + p.p_memsz(e)).max().unwrap_or(0);
    let kernel = preloaded.map(kernel::parse_vmlinux).transpose().context("the preloaded vmlinux")?;
    let mut end = image_end;
    if let Some(k) = &kernel {
        if k.min_addr < image_end && image_start < k.min_addr + k.span {
            bail!("the kernel's physical range {:#x}+{:#x} overlaps hvmlite's image", k.min_addr, k.span);
        }
        end = end.max(k.min_addr + k.span);
    }
    let paddr = end.div_ceil(4096) * 4096;
    let mut out = image.to_vec();
    let (kpaddr, ksize) = kernel.as_ref().map_or((0, 0), |k| (k.min_addr, k.span));
    for (i, v) in [paddr, bundle_bytes.len() as u64, kpaddr, ksize].iter().enumerate() {
        out[rec.start + 8 * i..rec.start + 8 * (i + 1)].copy_from_slice(&v.to_le_bytes());
    }
    // (paddr, file bytes, memory size, flags) of every new segment.
    let mut segs: Vec<(u64, &[u8], u64, u32)> = vec![(paddr, bundle_bytes, bundle_bytes.len() as u64, elf::PF_R)];
    if let Some(k) = &kernel {
        for s in k.segments() {
            segs.push((k.min_addr + s.offset, s.data, s.mem_size, elf::PF_R | elf::PF_W | elf::PF_X));
        }
    }
    let mut new_phdrs = Vec::new();
    for (p, data, memsz, flags) in segs {
        out.resize(out.len().div_ceil(4096) * 4096 + (p % 4096) as usize, 0);
        let off = out.len() as u64;
        out.extend_from_slice(data);
        new_phdrs.push(elf::ProgramHeader64::<LE> {
            p_type: U32::new(LE, elf::PT_LOAD),
            p_flags: U32::new(LE, flags),
            p_offset: U64::new(LE, off),
            p_vaddr: U64::new(LE, p),
            p_paddr: U64::new(LE, p),
            p_filesz: U64::new(LE, data.len() as u64),
            p_memsz: U64::new(LE, memsz),
            p_align: U64::new(LE, 4096),
        });
    }
    out.resize(out.len().div_ceil(8) * 8, 0);
    let phoff = out.len() as u64;
    for p in phdrs {
        out.extend_from_slice(object::bytes_of(p));
    }
    for p in &new_phdrs {
        out.extend_from_slice(object::bytes_of(p));
    }
    // e_phoff at 32, e_phnum at 56.
    out[32..40].copy_from_slice(&phoff.to_le_bytes());
    out[56..58].copy_from_slice(&((phdrs.len() + new_phdrs.len()) as u16).to_le_bytes());
    Ok(out)
}

fn describe_kernel(k: &Kernel, image: &[u8], indent: &str) {
    println!("{indent}format: {}", k.format.name());
    if let Some(v) = k.version(image) {
        println!("{indent}version: {v}");
    }
    if let Some(h) = k.setup_header {
        let ver = u16::from_le_bytes([h[0x206 - 0x1f1], h[0x207 - 0x1f1]]);
        println!("{indent}boot protocol: {}.{:02}", ver >> 8, ver & 0xff);
    }
    println!("{indent}size: {:#x}", image.len());
    println!(
        "{indent}needs: {:#x} bytes at {:#x}{}, aligned to {:#x}",
        k.span,
        k.min_addr,
        if k.relocatable { " or above" } else { " exactly" },
        k.align
    );
    println!("{indent}entry: load address + {:#x}", k.entry_offset);
    match k.pvh_entry {
        Some(e) => println!("{indent}pvh entry: {e:#x} (XEN_ELFNOTE_PHYS32_ENTRY)"),
        None if k.format == Format::BzImage => println!("{indent}pvh entry: not visible (inside the compressed payload)"),
        None => println!("{indent}pvh entry: none"),
    }
    for (i, s) in k.segments().iter().enumerate() {
        println!("{indent}segment[{i}]: +{:#x} file {:#x} mem {:#x}", s.offset, s.data.len(), s.mem_size);
    }
}

fn describe_bundle(b: &[u8]) -> Result<()> {
    let p = bundle::parse(b, Verify::All)?;
    println!("bundle: version {}, {:#x} bytes, all CRCs good", p.version, p.total_size);
    let k = kernel::parse(p.kernel).context("bundle kernel")?;
    println!("kernel:");
    describe_kernel(&k, p.kernel, "  ");
    if let Some(h) = p.setup_header {
        let ver = u16::from_le_bytes([h[0x206 - 0x1f1], h[0x207 - 0x1f1]]);
        println!("setup header: {:#x} bytes, boot protocol {}.{:02}", h.len(), ver >> 8, ver & 0xff);
    }
    match p.initrd {
        Some(i) => println!("initrd: {:#x} bytes, crc32 {:#010x}", i.len(), p.initrd_crc),
        None => println!("initrd: none"),
    }
    println!("cmdline: {:?}", p.cmdline);
    match p.pvh_entry {
        Some(e) => println!("pvh entry: {e:#x} (recorded at pack time)"),
        None => println!("pvh entry: none recorded"),
    }
    Ok(())
}

fn inspect(b: &[u8]) -> Result<()> {
    if bundle::is_bundle(b) {
        return describe_bundle(b);
    }
    match squash::unsquash(b) {
        Ok(Some(u)) => {
            let r = u.record;
            println!("squashed hvmlite image: {:#x} bytes of LZ4 at {:#x} unpack to {:#x} bytes at {:#x}", r.len, r.src, r.out_len, r.out);
            inspect_plain(&u.image)
        }
        // An hvmlite image whose block is damaged says so.
        Err(e) if b.windows(16).any(|w| w == SQUASH_MAGIC) => Err(e),
        // Not squashed, or not an hvmlite image at all.
        _ => inspect_plain(b),
    }
}

fn inspect_plain(b: &[u8]) -> Result<()> {
    if let Some(at) = b.windows(16).position(|w| w == bundle::EMBED_MAGIC) {
        let paddr = u64::from_le_bytes(b[at + 16..at + 24].try_into().unwrap());
        let size = u64::from_le_bytes(b[at + 24..at + 32].try_into().unwrap());
        if size == 0 {
            println!("hvmlite image without a payload");
            return Ok(());
        }
        println!("self-contained hvmlite ELF: bundle at {paddr:#x}, {size:#x} bytes");
        let kpaddr = u64::from_le_bytes(b[at + 32..at + 40].try_into().unwrap());
        let ksize = u64::from_le_bytes(b[at + 40..at + 48].try_into().unwrap());
        if ksize != 0 {
            println!("preloaded kernel: {kpaddr:#x}-{:#x} (the ELF's own segments)", kpaddr + ksize);
        }
        let hdr = elf::FileHeader64::<object::Endianness>::parse(b)?;
        let e = hdr.endian()?;
        let seg = hdr
            .program_headers(e, b)?
            .iter()
            .find(|p| p.p_type(e) == elf::PT_LOAD && p.p_paddr(e) == paddr)
            .context("no PT_LOAD holds the bundle")?;
        let data = seg.data(e, b).map_err(|_| anyhow::anyhow!("bundle segment outside the file"))?;
        return describe_bundle(data);
    }
    let k = kernel::parse(b).context("not a bundle, an hvmlite ELF or a Linux kernel")?;
    describe_kernel(&k, b, "");
    Ok(())
}
