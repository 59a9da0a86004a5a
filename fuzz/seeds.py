#!/usr/bin/env python3
"""Write the seed corpora in fuzz/corpus/<target>/ (a few realistic inputs
each, in the layout each fuzz target reads). Re-run after changing a
target's input format: python3 fuzz/seeds.py"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x336EC578
RAM, RES, ACPI, NVS, UNUSABLE, DISABLED, PMEM = 1, 2, 3, 4, 5, 6, 7


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class Image:
    """Physical memory from address 0, grown as written."""

    def __init__(self):
        self.b = bytearray()

    def w(self, addr, data):
        if len(self.b) < addr + len(data):
            self.b.extend(bytes(addr + len(data) - len(self.b)))
        self.b[addr:addr + len(data)] = data


def start_info(version, flags, nmod, modlist, cmdline, rsdp, memmap=0, nmemmap=0):
    s = struct.pack("<IIIIQQQ", MAGIC, version, flags, nmod, modlist, cmdline, rsdp)
    if version >= 1:
        s += struct.pack("<QII", memmap, nmemmap, 0)
    return s


def memmap(entries):
    return b"".join(struct.pack("<QQII", a, s, t, 0) for a, s, t in entries)


def si_seed(name, si_at, image, img, hyper_ram_end=0x1FF00000):
    ctrl = struct.pack("<IIII", si_at, image[0], image[1], hyper_ram_end)
    put("start_info", name, ctrl + bytes(img.b))


# QEMU 7.2 q35 -m 512: command line at 0x11c0, start_info at 0x21e0 with
# its memmap and module list right after, one page-aligned module high up.
QEMU_MAP = [
    (0, 0x9FC00, RAM), (0x9FC00, 0x400, RES), (0xF0000, 0x10000, RES),
    (0x100000, 0x1FEE0000, RAM), (0x1FFE0000, 0x20000, RES),
    (0xB0000000, 0x10000000, RES), (0xFED1C000, 0x4000, RES),
    (0xFFFC0000, 0x40000, RES), (0xFD00000000, 0x300000000, RES),
]
img = Image()
img.w(0x11C0, b"root=/dev/xvda1 console=hvc0 poweroff\0")
mm_at, ml_at = 0x21E0 + 56, 0x21E0 + 56 + 24 * len(QEMU_MAP)
img.w(0x21E0, start_info(1, 0, 1, ml_at, 0x11C0, 0xF5AB0, mm_at, len(QEMU_MAP)))
img.w(mm_at, memmap(QEMU_MAP))
img.w(ml_at, struct.pack("<QQQQ", 0x1FE00000, 12345, 0, 0))
si_seed("qemu-v1-module", 0x21E0, (0x100000, 0x40000), img)

# The same without module or command line.
img = Image()
img.w(0x21E0, start_info(1, 0, 0, 0, 0, 0xF5AB0, 0x21E0 + 56, 4))
img.w(0x21E0 + 56, memmap(QEMU_MAP[:4]))
si_seed("qemu-v1-bare", 0x21E0, (0x100000, 0x40000), img)

# xl create, type=pvh: version 1, memmap unsorted (ACPI before its
# neighbour), RAM from 0, a module with its own command line, and Xen's
# DISABLED type.
XL_MAP = [
    (0, 0x2000000, RAM), (0xFC008000, 0x1000, ACPI), (0xFC000000, 0x8000, RES),
    (0xFEFF8000, 0x8000, RES), (0x2000000, 0x1000, DISABLED),
]
img = Image()
img.w(0x3000, start_info(1, 0, 1, 0x3200, 0x3100, 0xFC008000, 0x3038, len(XL_MAP)))
img.w(0x3038, memmap(XL_MAP))
img.w(0x3100, b"hvmlite.console=e9 poweroff\0")
img.w(0x3200, struct.pack("<QQQQ", 0x400000, 0x1000, 0x3300, 0))
img.w(0x3300, b"initrd args\0")
si_seed("xl-pvh-domu", 0x3000, (0x100000, 0x30000), img)

# Xen PVH dom0: version 0, SIF_PRIVILEGED|SIF_INITDOMAIN, no memmap (the
# map comes from XENMEM_memory_map).
img = Image()
img.w(0x1000, start_info(0, 3, 0, 0, 0x1100, 0))
img.w(0x1100, b"hvmlite.console=xen\0")
si_seed("xen-dom0-v0", 0x1000, (0x200000, 0x20000), img, 0x3F00000)

# Broken on purpose, as the QEMU shim tests break them.
img = Image()
img.w(0x1000, start_info(1, 0, 0, 0, 0x1100, 0, 0x1040, 3))
img.w(0x1040, memmap([(0, 0x100000, RAM), (0x80000, 0x100000, RES), (0x4000, 0, RAM)]))
img.w(0x1100, b"x" * 64)  # runs to the end of memory without a NUL
si_seed("overlap-unterminated", 0x1000, (0x200000, 0x20000), img)

# The map ends 16 bytes into the command line, whose NUL lies past it.
img = Image()
img.w(0x1000, start_info(1, 0, 0, 0, 0x1100, 0, 0x1040, 1))
img.w(0x1040, memmap([(0, 0x1110, RAM)]))
img.w(0x1100, b"x" * 16 + b"\0")
si_seed("cmdline-past-map-end", 0x1000, (0x200000, 0x20000), img)


# e820: mode byte (even = small addresses), count, entries.
def small(entries):
    out = b""
    for page, sub, npages, t in entries:
        out += bytes([page, sub, npages, t])
    return out


put("e820", "small-overlaps", bytes([0, 5]) + small([(0, 0, 160, RAM), (16, 0x20, 4, RES), (18, 0, 8, ACPI),
                                                     (200, 0, 50, RAM), (250, 0, 5, RAM)])
    + bytes([2]) + struct.pack("<HHHH", 0x100, 0x40, 0x3000, 0x10) + bytes([0, 0, 0]))
put("e820", "small-unknown-types", bytes([0, 4]) + small([(0, 0, 64, RAM), (64, 0, 1, 6), (65, 0, 1, 8), (0, 0, 0, RAM)]))
put("e820", "wide-qemu", bytes([1, len(QEMU_MAP)]) + b"".join(struct.pack("<QQI", a, s, t) for a, s, t in QEMU_MAP)
    + bytes([1]) + struct.pack("<QQQQ", 0x100000, 0x40000, 0x100000, 1 << 32))
put("e820", "wide-xl", bytes([1, len(XL_MAP)]) + b"".join(struct.pack("<QQI", a, s, t) for a, s, t in XL_MAP))
put("e820", "wide-wrap", bytes([1, 2]) + struct.pack("<QQIQQI", 0, 0x1000, RAM, 2**64 - 0x1000, 0x2000, RAM))


# zero_page: mode 0 = build a spec (see fuzz_targets/zero_page.rs).
def zp_spec(e820, bootmem, cmdline, initrd, rsdp, kind, sig, setup_len, setup_paddr):
    s = bytes([0]) + struct.pack("<H", len(e820))
    s += b"".join(struct.pack("<QQI", a, z, t) for a, z, t in e820)
    s += bytes([len(bootmem)]) + b"".join(struct.pack("<QQII", *e) for e in bootmem)
    s += struct.pack("<QI", cmdline, 4095)
    s += bytes([1]) + struct.pack("<QQ", *initrd) if initrd else bytes([0])
    s += struct.pack("<Q", rsdp) + sig + bytes([kind]) + struct.pack("<II", 0x40000000, 0x40000005)
    s += struct.pack("<QIII", 0x21E0, 1, 0, 0)
    s += struct.pack("<HQ", setup_len, setup_paddr << 1)
    return s


boot = [(0x21E0, 56, 1, 0), (0x2218, 216, 2, 0), (0x11C0, 38, 3, 0), (0x22F0, 32, 4, 0), (0x1FE00000, 12345, 5, 0)]
put("zero_page", "qemu", zp_spec(QEMU_MAP, boot, 0x200000, (0x1FE00000, 0x1FE03039), 0xF5AB0, 3, b"TCGTCGTCGTCG", 1024, 0x210000))
put("zero_page", "xen-300-entries", zp_spec([(i * 0x2000, 0x1000, RAM) for i in range(300)], boot[:1], 0, None, 0, 1,
                                            b"XenVMMXenVMM", 8192, 0x210000))
put("zero_page", "setup-too-small", zp_spec(QEMU_MAP, boot, 0x200000, None, 0, 1, b"XenVMMXenVMM", 100, 0x210000))
# mode 1 = read garbage: a zero page whose setup_data points into a region
# holding a node with an absurd length.
zp = bytearray(4096)
zp[0x1E8] = 2
struct.pack_into("<Q", zp, 0x250, 0x10000)
node = struct.pack("<QII", 0x10000, 0x48564C32, 0xFFFFFFFF) + bytes(48)
put("zero_page", "read-cyclic-bootmem", bytes([1]) + bytes(zp) + struct.pack("<I", 0x10000) + node)


# ring: geometry byte, then operations (see fuzz_targets/ring.rs).
put("ring", "xs-req-roundtrip", bytes([0, 4]) + struct.pack("<H", 300) + bytes([6]) + struct.pack("<H", 200)
    + bytes([4]) + struct.pack("<H", 2000) + bytes([6]) + struct.pack("<H", 2000))
put("ring", "cons-out-hostile-prod", bytes([3, 1]) + struct.pack("<I", 0x7FFFFFFF) + bytes([6]) + struct.pack("<H", 64)
    + bytes([0]) + struct.pack("<I", 0x7FFFFFFF - 100) + bytes([6]) + struct.pack("<H", 64))
put("ring", "race", bytes([1, 3, 1]) + struct.pack("<I", 5000) + bytes([6]) + struct.pack("<H", 16))

# xenstore: call byte, then peer actions (see fuzz_targets/xenstore.rs).
put("xenstore", "read-ok", bytes([0, 2, 0]) + struct.pack("<H", 5) + b"ready" + bytes([0]))
put("xenstore", "read-enoent", bytes([0, 2, 2]) + struct.pack("<H", 7) + b"ENOENT\0" + bytes([0]))
put("xenstore", "watch-then-event", bytes([3, 2, 0]) + struct.pack("<H", 3) + b"OK\0" + bytes([8, 26])
    + b"control/shutdown\0shutdown\0"[:26] + bytes([0, 9, 0]))
put("xenstore", "bad-index", bytes([0, 7, 3]) + struct.pack("<I", 0x7FFF0000) + bytes([0]))
put("xenstore", "oversized", bytes([0, 2, 8]) + struct.pack("<H", 0) + struct.pack("<I", 4500) + bytes([0]))


# kernel: a raw image (see fuzz_targets/kernel.rs). Small synthetic ones:
# a bzImage header with a 4 KiB protected-mode part, and an ELF64 vmlinux
# with one PT_LOAD and a "Linux" note.
def bzimage(version=0x020F, xlf=3, pm=4096):
    setup_sects = 1
    img = bytearray((setup_sects + 1) * 512 + pm)
    img[0x1F1] = setup_sects
    struct.pack_into("<I", img, 0x1F4, pm // 16)            # syssize
    struct.pack_into("<H", img, 0x1FE, 0xAA55)              # boot_flag
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    struct.pack_into("<I", img, 0x230, 0x200000)            # kernel_alignment
    img[0x234] = 1                                          # relocatable_kernel
    struct.pack_into("<H", img, 0x236, xlf)                 # xloadflags
    struct.pack_into("<I", img, 0x238, 2047)                # cmdline_size
    struct.pack_into("<II", img, 0x248, 0x100, pm - 0x200)  # payload_offset, payload_length
    struct.pack_into("<Q", img, 0x258, 0x1000000)           # pref_address
    struct.pack_into("<I", img, 0x260, 0x400000)            # init_size
    return bytes(img)


def vmlinux(entry=0x1000000, paddr=0x1000000, filesz=0x1000, memsz=0x3000, pvh=None):
    note = struct.pack("<III", 6, 4, 1) + b"Linux\0\0\0" + b"6.1\0"
    if pvh is not None:  # XEN_ELFNOTE_PHYS32_ENTRY, a .long as Linux writes it
        note += struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", pvh)
    ehdr_size, phdr_size = 64, 56
    phoff = ehdr_size
    note_off = phoff + 2 * phdr_size
    seg_off = 0x1000
    e = bytearray(seg_off + filesz)
    e[0:4] = b"\x7fELF"
    e[4], e[5], e[6] = 2, 1, 1                              # ELF64, little-endian, v1
    struct.pack_into("<HHIQQQIHHHHHH", e, 16, 2, 62, 1, entry, phoff, 0, 0,
                     ehdr_size, phdr_size, 2, 64, 0, 0)
    struct.pack_into("<IIQQQQQQ", e, phoff, 1, 5, seg_off, 0xFFFFFFFF81000000, paddr, filesz, memsz, 0x200000)
    struct.pack_into("<IIQQQQQQ", e, phoff + phdr_size, 4, 4, note_off, 0, 0, len(note), len(note), 4)
    e[note_off:note_off + len(note)] = note
    return bytes(e)


put("kernel", "bzimage-2.15", bzimage())
put("kernel", "bzimage-2.10-too-old", bzimage(version=0x020A))
put("kernel", "bzimage-truncated", bzimage()[:2048])
put("kernel", "vmlinux-one-load", vmlinux())
put("kernel", "vmlinux-pvh-entry", vmlinux(pvh=0x1000850))
put("kernel", "vmlinux-pvh-entry-outside", vmlinux(pvh=0x5000000))
put("kernel", "junk", b"\x7fELF" + bytes(60))

# bundle: a mode byte; mode 1 builds a bundle from sizes + bytes, then flips
# one byte (see fuzz_targets/bundle.rs); mode 0 is raw bytes.
put("bundle", "built-small", bytes([1, 16]) + struct.pack("<H", 300) + bytes([12]) + bytes(range(256)) * 2
    + struct.pack("<I", 0xFFFFFFFF))
put("bundle", "built-flip-header", bytes([1, 8]) + struct.pack("<H", 0) + bytes([4]) + bytes(16) + struct.pack("<I", 9))
put("bundle", "raw-magic-only", bytes([0]) + b"HVLBNDL\0" + bytes(56))

# partitions: mode (bit 0: 4096-byte sectors), u32 sectors, u16 head length,
# the disk's first bytes, then its last bytes (see fuzz_targets/partitions.rs).
import zlib


def part_seed(ss, sectors, head, tail=b""):
    mode = 1 if ss == 4096 else 0
    return bytes([mode]) + struct.pack("<IH", sectors, len(head)) + head + tail


def mbr_sector(recs, ss=512):
    s = bytearray(ss)
    for i, (status, ty, start, size) in enumerate(recs):
        struct.pack_into("<B3xB3xII", s, 446 + 16 * i, status, ty, start, size)
    s[510:512] = b"\x55\xaa"
    return bytes(s)


def gpt_disk(ss, sectors, parts, nentries=4):
    """Protective MBR, primary and backup GPT with `nentries` entries:
    returns (head, tail) bytes."""
    entries = bytearray(128 * nentries)
    linux = bytes.fromhex("af3dc60f838472478e793d69d8477de4")
    for i, (first, last, name) in enumerate(parts):
        struct.pack_into("<16s16sQQQ", entries, 128 * i, linux, bytes([i + 1]) * 16, first, last, 0)
        n = name.encode("utf-16-le")
        entries[128 * i + 56:128 * i + 56 + len(n)] = n
    array_sectors = -(-len(entries) // ss)
    entries += bytes(array_sectors * ss - len(entries))
    first_usable, last_usable = 2 + array_sectors, sectors - 2 - array_sectors
    crc = zlib.crc32(bytes(entries[:128 * nentries]))

    def header(my, alt, array_lba):
        h = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, my, alt,
                                  first_usable, last_usable, b"\x5a" * 16, array_lba, nentries, 128, crc))
        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h)))
        return bytes(h) + bytes(ss - 92)

    head = mbr_sector([(0, 0xEE, 1, min(sectors - 1, 0xFFFFFFFF))], ss) + header(1, sectors - 1, 2) + entries
    tail = bytes(entries) + header(sectors - 1, 1, sectors - 1 - array_sectors)
    return head, tail


# Sector 0 the MBR; extended [1, 7) with EBRs at 1 and 4, logicals at 2 and
# 5; primaries at 8 and 16.
ebr1 = mbr_sector([(0, 0x83, 1, 2), (0, 0x05, 3, 3)])
ebr2 = mbr_sector([(0, 0x83, 1, 2)])
mbr = mbr_sector([(0x80, 0x83, 8, 8), (0, 0x82, 16, 8), (0, 0x05, 1, 6)])
put("partitions", "mbr-2-primaries-2-logicals", part_seed(512, 64, mbr + ebr1 + bytes(1024) + ebr2))
put("partitions", "mbr-ebr-loop",
    part_seed(512, 64, mbr + mbr_sector([(0, 0x83, 1, 2), (0, 0x05, 0, 3)])))
put("partitions", "mbr-past-end", part_seed(512, 20, mbr_sector([(0, 0x83, 8, 100)])))
put("partitions", "gpt-2", part_seed(512, 2048, *gpt_disk(512, 2048, [(34, 99, "boot"), (100, 2000, "root")])))
put("partitions", "gpt-4096", part_seed(4096, 512, *gpt_disk(4096, 512, [(6, 99, "a"), (100, 500, "b")])))
h, t = gpt_disk(512, 2048, [(34, 99, "boot"), (100, 2000, "root")])
h = h[:512 + 40] + bytes([h[512 + 40] ^ 1]) + h[512 + 41:]
put("partitions", "gpt-bad-primary-crc", part_seed(512, 2048, h, t))
put("partitions", "whole-disk", part_seed(512, 100, bytes(1024) + b"\x53\xef"))

# ext4: mode (bit 0: 4096-byte sectors; bits 1-2: read-ahead window), u16
# size in KiB, the image without its trailing zeros. Small images made by
# mkfs.ext4 -d over a tiny /boot: Debian's defaults less the journal (no
# room for one), the same without metadata_csum (so mutations reach past
# the checksums), and ext2.
import shutil
import subprocess
import tempfile

mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
if os.path.exists(mkfs):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "boot", "grub"))
        with open(os.path.join(root, "boot", "vmlinuz-6.1"), "wb") as f:
            f.write(bytes(range(256)) * 20)
        with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as f:
            f.write("menuentry 'Debian' { linux /vmlinuz }\n")
        with open(os.path.join(root, "boot", "grub", "grubenv"), "w") as f:
            f.write(("# GRUB Environment Block\nnext_entry=1\n").ljust(1024, "#"))
        os.symlink("boot/vmlinuz-6.1", os.path.join(root, "vmlinuz"))
        os.symlink("loop-b", os.path.join(root, "loop-a"))
        os.symlink("loop-a", os.path.join(root, "loop-b"))
        for name, mode, opts in [("ext4-csum", 0, ["-O", "^has_journal"]),
                                 ("ext4-nocsum-4096", 1 | 2, ["-O", "^has_journal,^metadata_csum"]),
                                 ("ext2", 4, ["-t", "ext2"])]:
            img = os.path.join(tmp, name)
            subprocess.run([mkfs, "-q", "-F", "-b", "1024", "-N", "32", "-E", "root_owner=0:0",
                            "-U", "0a0b0c0d-0000-4000-8000-00000000beef", *opts, "-d", root, img, "96k"],
                           check=True, env=dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000"))
            data = open(img, "rb").read()
            put("ext4", name, bytes([mode]) + struct.pack("<H", 96) + data.rstrip(b"\0"))
else:
    print("mkfs.ext4 not found: ext4 seeds not written")

# fat: the ext4 target's layout. A FAT12 ESP written here, independently of
# the crate that reads it: BLS entries under long names, loader.conf, a
# kernel over several clusters; and the same with the kernel's chain
# looping back on itself.
def lfn_entries(name, short):
    csum = 0
    for c in short:
        csum = (((csum & 1) << 7) + (csum >> 1) + c) & 0xFF
    units = [ord(c) for c in name] + [0]
    units += [0xFFFF] * (-len(units) % 13)
    parts = [units[i:i + 13] for i in range(0, len(units), 13)]
    out = b""
    for n in range(len(parts), 0, -1):
        u = parts[n - 1]
        seq = n | (0x40 if n == len(parts) else 0)
        pack = lambda us: b"".join(struct.pack("<H", x) for x in us)
        out += bytes([seq]) + pack(u[0:5]) + bytes([0x0F, 0, csum]) + pack(u[5:11]) + b"\0\0" + pack(u[11:13])
    return out


def dirent(short, attr, cluster, size):
    return short + bytes([attr]) + bytes(8) + struct.pack("<HHHHI", 0, 0, 0, cluster, size)


def fat12_esp(loop=False):
    sectors, root_entries = 128, 16
    boot = bytearray(512)
    boot[0:3] = b"\xEB\x3C\x90"
    boot[3:11] = b"MSWIN4.1"
    struct.pack_into("<HBHBHHBHHHII", boot, 11, 512, 1, 1, 2, root_entries, sectors, 0xF8, 1, 32, 64, 0, 0)
    boot[36:39] = b"\x80\x00\x29"
    boot[39:43] = struct.pack("<I", 0x1234ABCD)
    boot[43:54] = b"ESP        "
    boot[54:62] = b"FAT12   "
    boot[510:512] = b"\x55\xAA"
    entry = b"title Debian\nversion 6.1\nlinux /vmlinuz\noptions root=/dev/xvda2\n"
    kernel = bytes(range(256)) * 6
    fat = {2: 0xFFF, 3: 0xFFF, 4: 0xFFF, 5: 0xFFF, 6: 7, 7: 8, 8: 6 if loop else 0xFFF}
    data = {}
    dot = lambda c, parent: dirent(b".          ", 0x10, c, 0) + dirent(b"..         ", 0x10, parent, 0)
    data[2] = dot(2, 0) + dirent(b"ENTRIES    ", 0x10, 3, 0) + lfn_entries("loader.conf", b"LOADER~1CON") + dirent(b"LOADER~1CON", 0x20, 5, 24)
    data[3] = dot(3, 2) + lfn_entries("debian-6.1.conf", b"DEBIAN~1CON") + dirent(b"DEBIAN~1CON", 0x20, 4, len(entry))
    data[4] = entry
    data[5] = b"default debian-6.1.conf\n"
    for i in range(3):
        data[6 + i] = kernel[512 * i:512 * (i + 1)]
    root = dirent(b"ESP        ", 0x08, 0, 0) + dirent(b"LOADER     ", 0x10, 2, 0) + dirent(b"VMLINUZ    ", 0x20, 6, len(kernel))
    fat_bytes = bytearray(512)
    entries = [0xFF8, 0xFFF] + [fat.get(i, 0) for i in range(2, 340)]
    for i in range(0, len(entries) - 1, 2):
        a, b = entries[i], entries[i + 1]
        fat_bytes[3 * i // 2:3 * i // 2 + 3] = bytes([a & 0xFF, (a >> 8) | ((b & 0xF) << 4), b >> 4])
    img = bytearray(512 * sectors)
    img[0:512] = boot
    img[512:1024] = fat_bytes
    img[1024:1536] = fat_bytes
    img[1536:1536 + len(root)] = root
    first_data = 1536 + 512
    for c, d in data.items():
        img[first_data + 512 * (c - 2):first_data + 512 * (c - 2) + len(d)] = d
    return bytes(img).rstrip(b"\0")


put("fat", "esp-fat12", bytes([0]) + struct.pack("<H", 64) + fat12_esp())
put("fat", "esp-fat12-loop", bytes([2]) + struct.pack("<H", 64) + fat12_esp(loop=True))

# bootcfg: mode 0 is a choice byte, then (path index, u16 length, bytes)
# records over fuzz_targets/bootcfg.rs's PATHS; mode 1 builds a grub.cfg
# from the bytes.
BOOTCFG_PATHS = [
    "/boot/grub/grub.cfg", "/boot/grub/grubenv", "/loader/entries/a.conf", "/loader/entries/b-6.1.0.conf",
    "/loader/loader.conf", "/boot/extlinux/extlinux.conf", "/vmlinuz", "/initrd.img", "/boot/grub2/grub.cfg",
    "/boot/grub2/grubenv", "/boot/loader/entries/c-6.5.0.conf", "/grub/grub.cfg", "/extlinux/extlinux.conf",
    "/boot/grub/custom.cfg", "/boot/vmlinuz",
]


def disk(files, choice=b"\0"):
    out = bytes([0]) + choice
    for path, text in files:
        data = text.encode()
        out += bytes([BOOTCFG_PATHS.index(path)]) + struct.pack("<H", len(data)) + data
    return out


def grubenv(*lines):
    s = "# GRUB Environment Block\n" + "".join(l + "\n" for l in lines)
    return s + "#" * (1024 - len(s))


UUID = "8d0b3a2e-4f0e-4d3c-9d8e-2b7f1c3a6e11"
GRUB_HEAD = """if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
else
   set default="%s"
fi
if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
export menuentry_id_option
function load_video {
  insmod all_video
}
if loadfont unicode ; then
  set gfxmode=auto
  load_video
fi
"""


def debian_entry(title, ident, version, indent=""):
    body = ("load_video\ninsmod gzio\nif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
            "set root='hd0,gpt2'\nsearch --no-floppy --fs-uuid --set=root %s\n"
            "linux\t/boot/vmlinuz-%s root=UUID=%s ro  quiet\ninitrd\t/boot/initrd.img-%s\n") % (UUID, version, UUID, version)
    body = "".join(indent + "\t" + l + "\n" for l in body.splitlines())
    return "%smenuentry '%s' --class debian --class gnu-linux $menuentry_id_option '%s' {\n%s%s}\n" % (
        indent, title, ident, body, indent)


debian_cfg = GRUB_HEAD % "1>1" + debian_entry("Debian GNU/Linux", "gnulinux-simple-" + UUID, "6.1.0-13-amd64")
debian_cfg += "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-%s' {\n" % UUID
for v in ["6.1.0-13-amd64", "6.1.0-12-amd64"]:
    debian_cfg += debian_entry("Debian GNU/Linux, with Linux " + v, "gnulinux-%s-advanced-%s" % (v, UUID), v, "\t")
debian_cfg += "}\nmenuentry 'Windows Boot Manager' { chainloader /EFI/Microsoft/Boot/bootmgfw.efi\n}\n"
put("bootcfg", "debian12-submenu", disk([("/boot/grub/grub.cfg", debian_cfg)]))
put("bootcfg", "ubuntu-saved-entry", disk([
    ("/boot/grub/grub.cfg", debian_cfg.replace('set default="1>1"', 'set default="${saved_entry}"')),
    ("/boot/grub/grubenv", grubenv("saved_entry=gnulinux-advanced-%s>gnulinux-6.1.0-12-amd64-advanced-%s" % (UUID, UUID))),
], choice=b"\x01\x02"))

fedora_cfg = GRUB_HEAD % "${saved_entry}" + """if [ -z "${kernelopts}" ]; then
  set kernelopts="root=/dev/mapper/fedora-root ro rhgb quiet "
fi
insmod blscfg
blscfg
"""
put("bootcfg", "fedora-blscfg", disk([
    ("/boot/grub2/grub.cfg", fedora_cfg),
    ("/boot/grub2/grubenv", grubenv("kernelopts=root=UUID=c2d1 ro rhgb quiet", "saved_entry=c-6.5.0")),
    ("/boot/loader/entries/c-6.5.0.conf", "title Fedora Linux (6.5.0-300.fc39.x86_64) 39\nversion 6.5.0-300.fc39.x86_64\n"
     "linux /vmlinuz-6.5.0-300.fc39.x86_64\ninitrd /initramfs-6.5.0-300.fc39.x86_64.img\noptions $kernelopts\n"
     "grub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"),
]))
put("bootcfg", "bls-loader-conf", disk([
    ("/loader/entries/a.conf", "title Debian\nversion 6.1.0-9-amd64\nsort-key debian\nlinux /a/linux\ninitrd /a/initrd\n"
     "options root=/dev/xvda2 ro\noptions quiet\n"),
    ("/loader/entries/b-6.1.0.conf", "title Debian\nversion 6.1.0-13-amd64\nsort-key debian\nlinux /b/linux\n"
     "initrd /b/initrd\noptions root=/dev/xvda2 ro\n"),
    ("/loader/loader.conf", "timeout 3\ndefault a*\n"),
]))
put("bootcfg", "extlinux", disk([("/boot/extlinux/extlinux.conf",
    "DEFAULT l1\nTIMEOUT 20\nAPPEND root=/dev/vda2 ro\nLABEL l0\n\tMENU LABEL ^Debian 6.1.0-13\n"
    "\tLINUX /boot/vmlinuz-6.1.0-13-amd64\n\tINITRD /boot/initrd.img-6.1.0-13-amd64\nLABEL l1\n"
    "\tKERNEL ../vmlinuz-6.1.0-12-amd64\n\tINITRD ../initrd.img-6.1.0-12-amd64,../ucode.img\n\tAPPEND -\n"
    "LABEL hdt\n\tCOM32 hdt.c32\n")]))
put("bootcfg", "debian-symlinks", disk([("/vmlinuz", "MZ kernel"), ("/initrd.img", "initrd")], choice=b"\x03"))
put("bootcfg", "unterminated-brace", disk([("/grub/grub.cfg", "menuentry 'a' {\n  linux /vmlinuz ro\n")]))
put("bootcfg", "generated-submenu", bytes([1, 4, 0, 5, 1, 2, 3, 4, 5, 6, 3, 3, 9, 8, 7, 2, 1, 1, 2, 1, 0, 3, 7, 7, 7])
    + bytes(range(64)))

# time_info: mode (bit 0: hostile writer, bits 1-2 both set: stuck odd), the
# first record (tsc_timestamp, system_time, mul, shift, flags), one scale
# case (delta, mul, shift), then writer steps (see fuzz_targets/time_info.rs).
def rec(ts, sys, mul, shift, flags=1):
    return struct.pack("<QQIbB", ts, sys, mul, shift, flags)


XEN_2G6 = rec(1000, 5_000_000, 0xC4EC4EC4, -1)  # a 2.6 GHz TSC as Xen scales it
put("time_info", "honest-update", bytes([0]) + XEN_2G6 + struct.pack("<QIb", 2_600_000_000, 0xC4EC4EC4, -1)
    + bytes([0]) + rec(2000, 6_000_000, 0xC4EC4EC4, -1) + bytes([1, 0, 1, 0, 1, 0, 1, 0]) + bytes(16))
put("time_info", "hostile-bumps", bytes([1]) + XEN_2G6 + struct.pack("<QIb", 2**64 - 1, 2**32 - 1, 31)
    + bytes([2, 7, 3]) + struct.pack("<Q", 99) + bytes([2, 1] * 8))
put("time_info", "stuck-odd", bytes([6]) + XEN_2G6 + struct.pack("<QIb", 1, 1, 96))

# acpi: a mode byte (bit 0: search for the RSDP; bits 1-2: the image at
# 0xe0000, at 0, at a u32, at a u64; bit 3: the target fixes checksums),
# that base when asked for, a u16 RSDP offset from the base, then the
# memory image. Tables laid out as QEMU 7.2
# lays them (RSDT and a revision 3 FADT on q35, a 116-byte revision 1 FADT
# on pc, the DSDT's Name (_S5, Package (4) { Zero, Zero, Zero, Zero })),
# and as an ACPI 2.0+ firmware does (XSDT, X_ fields).
def acpi_sum(t, at):
    t = bytearray(t)
    t[at] = 0
    t[at] = (-sum(t)) & 0xFF
    return bytes(t)


def acpi_table(sig, rev, body):
    t = sig + struct.pack("<IBB", 36 + len(body), rev, 0) + b"HVMLTE" + b"TESTTABL"
    t += struct.pack("<I", 1) + b"HVML" + struct.pack("<I", 1) + body
    return acpi_sum(t, 9)


def acpi_rsdp(rsdt, xsdt=None):
    r = b"RSD PTR " + b"\0" + b"HVMLTE" + bytes([0 if xsdt is None else 2]) + struct.pack("<I", rsdt)
    r = acpi_sum(r, 8)
    if xsdt is not None:
        r = acpi_sum(r + struct.pack("<IQ", 36, xsdt) + bytes(4), 32)
    return r


def gas_io(port):
    return struct.pack("<BBBBQ", 1, 16, 0, 0, port)


def acpi_fadt(length, rev, dsdt, x_dsdt=0, enable=2, reset=None, flags=0xA5, x_pm1=None):
    f = bytearray(length)
    struct.pack_into("<I", f, 40, dsdt)
    struct.pack_into("<I", f, 48, 0xB2)
    f[52] = enable
    struct.pack_into("<III", f, 64, 0x604, 0, 0)
    struct.pack_into("<I", f, 76, 0x608)
    f[89], f[91] = 2, 4
    if length >= 129:
        if reset is not None:
            flags |= 1 << 10
            f[116:128] = gas_io(reset[0])
            f[128] = reset[1]
        struct.pack_into("<I", f, 112, flags)
    if length >= 148:
        struct.pack_into("<Q", f, 140, x_dsdt)
    if x_pm1 is not None and length >= 196:
        f[172:184] = gas_io(x_pm1[0])
        f[184:196] = gas_io(x_pm1[1])
    if length >= 220:
        f[208:220] = gas_io(0x608)
    return acpi_table(b"FACP", rev, bytes(f[36:]))


S5_QEMU = bytes([0x08]) + b"_S5_" + bytes([0x12, 0x06, 0x04, 0, 0, 0, 0])
S3_QEMU = bytes([0x08]) + b"_S3_" + bytes([0x12, 0x06, 0x04, 1, 1, 0, 0])
# Method (_PTS, 1) { Store (\_S5_, Local0) }: a reference, not the object.
S5_REF = bytes([0x14, 0x0C]) + b"_PTS" + bytes([0x01, 0x70, 0x5C]) + b"_S5_" + bytes([0x60])


def acpi_seed(name, mode, image, base=0xE0000, rsdp_off=0x10, base_field=b""):
    put("acpi", name, bytes([mode]) + base_field + struct.pack("<H", rsdp_off) + bytes(image.b))


def acpi_image(base, rsdp_at, fadt, aml, xsdt=False, ebda=None):
    img = Image()
    o = lambda a: a - base
    root, fadt_at, dsdt_at = rsdp_at + 0x30, rsdp_at + 0x100, rsdp_at + 0x300
    if ebda is not None:
        img.w(0x40E, struct.pack("<H", ebda >> 4))
    apic = rsdp_at + 0xB0
    img.w(o(apic), acpi_table(b"APIC", 1, bytes(8)))
    if xsdt:
        img.w(o(rsdp_at), acpi_rsdp(0, root))
        img.w(o(root), acpi_table(b"XSDT", 1, struct.pack("<QQ", apic, fadt_at)))
    else:
        img.w(o(rsdp_at), acpi_rsdp(root))
        img.w(o(root), acpi_table(b"RSDT", 1, struct.pack("<II", apic, fadt_at)))
    img.w(o(fadt_at), fadt(dsdt_at))
    img.w(o(dsdt_at), acpi_table(b"DSDT", 1, aml))
    return img


Q35_AML = bytes([0x10, 0x0B]) + b"_SB_" + bytes([0x5B, 0x82, 0x05]) + b"PCI0" + S3_QEMU + S5_REF + S5_QEMU
q35 = acpi_image(0xE0000, 0xE0010, lambda d: acpi_fadt(244, 3, d, x_dsdt=d, reset=(0xCF9, 0x0F), x_pm1=(0x604, 0)), Q35_AML)
acpi_seed("qemu-q35-search", 1, q35)
acpi_seed("qemu-q35", 8, q35)
acpi_seed("qemu-pc", 0, acpi_image(0xE0000, 0xE0010, lambda d: acpi_fadt(116, 1, d, enable=0xF1), Q35_AML))
# ACPI 2.0+: XSDT, X_PM1a/X_PM1b, \_S5_ with BytePrefix values and a
# two-byte PkgLength; at an address of its own.
v2_aml = S5_REF + bytes([0x08, 0x5C]) + b"_S5_" + bytes([0x12, 0x48, 0x00, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0, 0])
acpi_seed("xsdt-x-fields", 12, acpi_image(0x7FFE0000, 0x7FFE0000, lambda d: acpi_fadt(276, 6, d, x_dsdt=d, reset=(0xCF9, 6), x_pm1=(0x404, 0x408)), v2_aml, xsdt=True),
          base=0x7FFE0000, rsdp_off=0, base_field=struct.pack("<I", 0x7FFE0000))
# The RSDP in the EBDA the BIOS data area names (segment 0x50: 0x500).
acpi_seed("ebda", 3, acpi_image(0, 0x520, lambda d: acpi_fadt(244, 3, d), S5_QEMU, ebda=0x500), base=0)
# Hardware-reduced ACPI: no PM1 ports, a reset register only.
acpi_seed("hw-reduced", 0, acpi_image(0xE0000, 0xE0010, lambda d: acpi_fadt(276, 6, d, reset=(0x3C0, 1), flags=1 << 20), S5_QEMU))
# A DSDT whose checksum fails, and an XSDT that leads nowhere (the RSDT
# is used).
bad = acpi_image(0xE0000, 0xE0010, lambda d: acpi_fadt(244, 3, d), Q35_AML)
bad.b[0x310 + 40] ^= 0x10
acpi_seed("bad-dsdt-checksum", 0, bad)
fallback = acpi_image(0xE0000, 0xE0010, lambda d: acpi_fadt(244, 3, d), S5_QEMU)
fallback.w(0x10, acpi_rsdp(0xE0040, 0xEFFF0))
acpi_seed("xsdt-nowhere-rsdt-used", 0, fallback)
# Mode bit 4: the target lays the tables out itself; the input is flags,
# the FADT's length - 116, its bytes after the header, then the AML.
put("acpi", "built-q35", bytes([16, 0, 244 - 116]) + acpi_fadt(244, 3, 0, reset=(0xCF9, 0x0F))[36:] + Q35_AML)
put("acpi", "built-xsdt", bytes([16, 1, 276 - 116]) + acpi_fadt(276, 6, 0, x_pm1=(0x404, 0x408))[36:] + v2_aml)

# menu: mode (bits 0-1 style, bits 2-3 default), then steps: n < 0x80 types
# n & 0x3f bytes, n >= 0x80 advances time by (n & 0x7f) * 100 ms.
put("menu", "timeout", bytes([0, 0x9e, 0x9e]))
put("menu", "down-edit-enter", bytes([1, 3]) + b"\x1b[B" + bytes([9]) + b"e single\r")
put("menu", "hidden-key", bytes([2, 0x85, 1]) + b" " + bytes([2]) + b"2\r")
put("menu", "flood", bytes([3, 1]) + b"e" + bytes([0x3f]) + b"x" * 63 + bytes([1]) + b"\r")

def sparse_records(img):
    """An image's non-zero sectors as `sparse_input` records."""
    data = open(img, "rb").read()
    recs = b""
    for s in range(0, len(data) // 512):
        sec = data[s * 512:(s + 1) * 512]
        if any(sec):
            recs += struct.pack("<IB", s, 1) + sec
    return recs


# xfs: mode (bit 0: 4096-byte sectors; bits 1-2: read-ahead window), the
# disk's size in MiB - 1, then sparse records: sector (u32), count (u8),
# that many 512-byte sectors. mkfs.xfs (1 KiB blocks, one AG, rmapbt and
# nrext64) through a protofile over a tiny /boot; mkfs.xfs refuses small
# filesystems except for fstests, hence its environment.
mkxfs = shutil.which("mkfs.xfs") or "/usr/sbin/mkfs.xfs"
if os.path.exists(mkxfs):
    with tempfile.TemporaryDirectory() as tmp:
        k = os.path.join(tmp, "k")
        with open(k, "wb") as f:
            f.write(bytes(range(256)) * 80)
        cfg = os.path.join(tmp, "cfg")
        with open(cfg, "w") as f:
            f.write("blscfg\n")
        env_file = os.path.join(tmp, "env")
        with open(env_file, "w") as f:
            f.write(("# GRUB Environment Block\nsaved_entry=a\n").ljust(1024, "#"))
        proto = os.path.join(tmp, "proto")
        with open(proto, "w") as f:
            f.write(f"/dummy\n0 0\nd--755 0 0\nvmlinuz ---644 0 0 {k}\nloop l--777 0 0 loop\n"
                    f"grub2 d--755 0 0\ngrub.cfg ---644 0 0 {cfg}\ngrubenv ---644 0 0 {env_file}\n$\n$\n")
        img = os.path.join(tmp, "img")
        with open(img, "wb") as f:
            f.truncate(20 << 20)
        subprocess.run([mkxfs, "-q", "-f", "-b", "size=1024", "-d", "agcount=1", "-m", "rmapbt=1,uuid=0a0b0c0d-0000-4000-8000-00000000beef",
                        "-i", "nrext64=1", "-p", proto, img], check=True,
                       env=dict(os.environ, TEST_DIR="/tmp", TEST_DEV="x", QA_CHECK_FS="1"))
        put("xfs", "mkfs-1k-rmap-nrext64", bytes([0, 19]) + sparse_records(img))
else:
    print("mkfs.xfs not found: xfs seeds not written")

# btrfs: mode (bit 0: 4096-byte sectors; bits 1-2: read-ahead window; bits
# 3-4: the tree paths start at), the disk's size in MiB - 1, then sparse
# records as for xfs. mkfs.btrfs (its defaults: DUP metadata, no-holes,
# free-space-tree) over a tiny /boot through --rootdir; and, where a loop
# mount works (root), openSUSE's shape: subvolumes, a snapshot as the
# default subvolume, zstd/zlib/lzo extents.
mkbtrfs = shutil.which("mkfs.btrfs") or "/usr/sbin/mkfs.btrfs"


if os.path.exists(mkbtrfs):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "boot", "grub2"))
        with open(os.path.join(root, "boot", "vmlinuz-6.5"), "wb") as f:
            f.write(bytes(range(256)) * 80)
        os.symlink("vmlinuz-6.5", os.path.join(root, "boot", "vmlinuz"))
        os.symlink("loop", os.path.join(root, "loop"))
        with open(os.path.join(root, "boot", "grub2", "grub.cfg"), "w") as f:
            f.write("set timeout=0\nmenuentry 'openSUSE' {\n  linux /boot/vmlinuz quiet\n}\n")
        with open(os.path.join(root, "boot", "grub2", "grubenv"), "w") as f:
            f.write(("# GRUB Environment Block\nsaved_entry=a\n").ljust(1024, "#"))
        img = os.path.join(tmp, "img")
        with open(img, "wb") as f:
            f.truncate(120 << 20)
        subprocess.run([mkbtrfs, "-q", "-U", "0a0b0c0d-0000-4000-8000-00000000beef", "--rootdir", root, img], check=True)
        put("btrfs", "mkfs-rootdir", bytes([0, 119]) + sparse_records(img))
        mnt = os.path.join(tmp, "mnt")
        os.makedirs(mnt)
        img2 = os.path.join(tmp, "img2")
        with open(img2, "wb") as f:
            f.truncate(120 << 20)
        subprocess.run([mkbtrfs, "-q", "-U", "0a0b0c0d-0000-4000-8000-00000000cafe", img2], check=True)
        if subprocess.run(["mount", "-o", "loop,compress-force=zstd", img2, mnt], capture_output=True).returncode == 0:
            try:
                sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)
                sh("btrfs", "subvolume", "create", mnt + "/@")
                sh("btrfs", "subvolume", "create", mnt + "/@/.snapshots")
                os.makedirs(mnt + "/@/.snapshots/1")
                sh("btrfs", "subvolume", "create", mnt + "/@/.snapshots/1/snapshot")
                s1 = mnt + "/@/.snapshots/1/snapshot"
                os.makedirs(s1 + "/boot/grub2")
                os.makedirs(s1 + "/etc")
                with open(s1 + "/etc/fstab", "w") as f:
                    f.write("UUID=0a0b0c0d-0000-4000-8000-00000000cafe /.snapshots btrfs subvol=/@/.snapshots 0 0\n")
                with open(s1 + "/boot/vmlinuz-6.5", "wb") as f:
                    f.write(b"kernel " * 20000)
                os.symlink("vmlinuz-6.5", s1 + "/boot/vmlinuz")
                with open(s1 + "/boot/grub2/grub.cfg", "w") as f:
                    f.write("set btrfs_relative_path=y\nset timeout=0\nmenuentry 'openSUSE' {\n  linux /boot/vmlinuz quiet\n}\n"
                            "if [ -f /.snapshots/grub-snapshot.cfg ]; then\n  source /.snapshots/grub-snapshot.cfg\nfi\n")
                with open(mnt + "/@/.snapshots/grub-snapshot.cfg", "w") as f:
                    f.write("submenu 'snapshots' {\n  menuentry 'one' {\n    btrfs_subvol=/@/.snapshots/1/snapshot\n"
                            "    configfile /boot/grub2/grub.cfg\n  }\n}\n")
                for alg in ["zlib", "lzo"]:
                    sh("mount", "-o", "remount,compress-force=" + alg, mnt)
                    with open(s1 + "/boot/" + alg, "wb") as f:
                        f.write(alg.encode() * 30000)
                sh("btrfs", "subvolume", "set-default", s1)
            finally:
                subprocess.run(["umount", mnt])
            put("btrfs", "opensuse-snapshot-zstd-zlib-lzo", bytes([0, 119]) + sparse_records(img2))
        else:
            print("no loop mount: btrfs snapshot seed not written")
else:
    print("mkfs.btrfs not found: btrfs seeds not written")
