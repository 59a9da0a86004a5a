# hvmlite — build, run and test. `make run` and `make test` install or fetch
# everything they need (rustup target, qemu-system-x86, Xen from Debian).

TARGET   := x86_64-unknown-none
ELF      := target/$(TARGET)/release/hvmlite
IMAGE    := hvmlite.elf
# The apps in examples/, each built into its own PVH ELF under target/examples/.
EXAMPLES := hello-stubdom net-echo-http disk-log
EXAMPLE_ELFS := $(EXAMPLES:%=target/examples/%.elf)
# Apps of hvmlite's own beside the loader (apps/xenstored: the xenstore
# domain), each built into its own PVH ELF under target/apps/.
APPS     := xenstored
APP_ELFS := $(APPS:%=target/apps/%.elf)
# Apps that exist only for the tests (tests/rt-check: the task runtime
# measured from inside a domain), built the same way.
TEST_APPS := rt-check xs-hostile
TEST_APP_ELFS := $(TEST_APPS:%=target/examples/%.elf)
# The host tool (tool/): `hvmlite pack`, `inspect`, `extract`, `squash`.
TOOL     := target/debug/hvmlite
QEMU     := qemu-system-x86_64
# What `make run` boots with: the embedded default is a report, then poweroff.
CMDLINE  ?= poweroff
MEM      ?= 512

.PHONY: all image apps examples tool lint install deb run test test-unit test-xen test-linux-6.12 test-linux-6.12-short test-xen-4.20 xen-host-shell bench fuzz fuzz-ci deps deps-rust deps-qemu deps-cc deps-fs deps-fuzz clean FORCE

all: image apps

image: $(IMAGE)

apps: $(APP_ELFS)

target/apps/%.elf: FORCE tool | deps-rust
	cargo build --release --target $(TARGET) -p $*
	@mkdir -p target/apps
	$(TOOL) squash target/$(TARGET)/release/$* -o $@

# The image as installed is squashed (`hvmlite squash`, docs/boot.md):
# its first instructions unpack the rest.
$(IMAGE): FORCE tool | deps-rust
	cargo build --release --target $(TARGET) -p hvmlite-loader
	$(TOOL) squash $(ELF) -o $(IMAGE)

examples: $(EXAMPLE_ELFS)

target/examples/%.elf: FORCE tool | deps-rust
	cargo build --release --target $(TARGET) -p $*
	@mkdir -p target/examples
	$(TOOL) squash target/$(TARGET)/release/$* -o $@

# The host tool builds lz4's C encoder: a C compiler is needed.
tool: FORCE | deps-cc
	cargo build -p hvmlite-tool

# Formatting and clippy, for the host (library, tool, tests) and for the
# PVH target (library and apps).
lint: | deps-rust
	@rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
	cargo fmt --all --check
	cargo fmt --manifest-path fuzz/Cargo.toml --all --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(TARGET) -p hvmlite -p hvmlite-loader $(APPS:%=-p %) $(EXAMPLES:%=-p %) $(TEST_APPS:%=-p %) -- -D warnings

# Install the loader image the way GRUB's PVH image is installed:
# $(PREFIX)/lib/hvmlite/hvmlite.elf, the xl configs as examples.
PREFIX  ?= /usr/local
DESTDIR ?=
XL_CONFIGS := $(wildcard xen/*.cfg)

install: $(IMAGE)
	install -D -m 0644 $(IMAGE) $(DESTDIR)$(PREFIX)/lib/hvmlite/hvmlite.elf
	install -d $(DESTDIR)$(PREFIX)/share/doc/hvmlite/examples
	install -m 0644 $(XL_CONFIGS) $(DESTDIR)$(PREFIX)/share/doc/hvmlite/examples/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/hvmlite/

# A Debian package of the above under /usr, built with dpkg-deb.
DEB_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
DEB := target/hvmlite_$(DEB_VERSION)_amd64.deb

deb: $(IMAGE)
	rm -rf target/deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath target/deb) PREFIX=/usr
	install -d target/deb/DEBIAN
	printf 'Package: hvmlite\nVersion: %s\nArchitecture: amd64\nMaintainer: hvmlite developers <hvmlite@localhost>\nSection: admin\nPriority: optional\nDescription: Xen PVH loader and stubdomain runtime\n hvmlite.elf boots a PVH guest'"'"'s own disk (BLS, grub.cfg, extlinux,\n Debian symlinks) or a packed kernel, and runs stubdomain apps.\n' "$(DEB_VERSION)" > target/deb/DEBIAN/control
	dpkg-deb --root-owner-group --build target/deb $(DEB)
	@echo "$(DEB)"

deps: deps-rust deps-qemu deps-cc deps-fs

deps-rust:
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)

# Debian's QEMU; apt-get needs root (CI and these machines run as root).
deps-qemu:
	@command -v $(QEMU) >/dev/null || { \
	    echo "installing qemu-system-x86"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null; }

# The tests make XFS images with mkfs.xfs (xfsprogs), through a protofile,
# and btrfs images with mkfs.btrfs and the kernel's btrfs on a loop mount
# (btrfs-progs: subvolumes, snapshots, compress-force as distributions do).
# xz unpacks Debian 13's kernel modules (shipped .ko.xz) for test initramfses.
deps-fs:
	@command -v mkfs.xfs >/dev/null && command -v mkfs.btrfs >/dev/null && command -v xz >/dev/null || { \
	    echo "installing xfsprogs btrfs-progs xz-utils"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xfsprogs btrfs-progs xz-utils >/dev/null; }

# A C toolchain builds the test-only PVH shim (tests/shim/shim.S).
deps-cc:
	@command -v cc >/dev/null || { \
	    echo "installing gcc"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null; }

# Boot hvmlite through QEMU's PVH path; its console is this terminal.
# QEMU exits 1 on hvmlite's clean poweroff (isa-debug-exit), 3 on a crash.
run: $(IMAGE) deps-qemu
	@$(QEMU) -accel tcg -M q35 -m $(MEM) -nographic -nodefaults -no-reboot \
	    -debugcon stdio -device isa-debug-exit,iobase=0x501,iosize=1 \
	    -kernel $(IMAGE) -append "$(CMDLINE)"; rc=$$?; \
	    if [ $$rc -eq 1 ]; then echo "[hvmlite powered off]"; else echo "[QEMU exit $$rc: hvmlite crashed]"; exit $$rc; fi

# Host unit tests, then the end-to-end tests on QEMU and on real Xen.
#
# The test runner: cargo-nextest where it is installed (each test a process
# of its own, the tests of every binary scheduled together on all cores;
# .config/nextest.toml), else cargo test (one binary after another, its
# tests in threads). The same tests either way; with nextest, each of the
# three parts below is one run.
ifneq ($(shell command -v cargo-nextest 2>/dev/null),)
TEST_RUN := cargo nextest run --no-fail-fast
TEST_BUILD := cargo nextest run --no-run
XEN420_OWN = $(TEST_RUN) --test xen_host --test apps --test xen_stubdom --test xen_net --test xen_suspend --test xen_dom0 --test xen_linux \
	-E 'not binary(xen_linux) | test(=$(XEN420_LINUX_A)) | test(=$(XEN420_LINUX_B))'
LINUX612_ALL = $(TEST_RUN) --test linux --test xen_linux --test xen_disk \
	-E 'binary(linux) | test(=linux_domu_through_hvmlite) | test(=boots_the_kernel_on_each_kind_of_disk)'
else
TEST_RUN := cargo test --no-fail-fast
TEST_BUILD := cargo test --no-run
XEN420_OWN = ( rc=0; $(TEST_RUN) --test xen_host --test apps --test xen_stubdom --test xen_net --test xen_suspend --test xen_dom0 || rc=1; \
	$(TEST_RUN) --test xen_linux -- $(XEN420_LINUX_A) $(XEN420_LINUX_B) || rc=1; exit $$rc )
LINUX612_ALL = ( rc=0; $(TEST_RUN) --test linux || rc=1; $(LINUX612_DOMU) || rc=1; $(LINUX612_DISK) || rc=1; exit $$rc )
endif
XEN420_LINUX_A = linux_pvh_dom0_through_hvmlite_matches_xen_direct
XEN420_LINUX_B = xen_host_dom0_through_hvmlite_runs_a_stubdomain

# Everything on the Xen 4.17 host with Linux 6.1 as the guest; then the
# second Xen host's own tests (test-xen-4.20's, less its Linux 6.12
# guest); then Linux 6.12 as the guest: QEMU's PVH path
# (test-linux-6.12-short) and its domU and two kinds of disk on the 4.20
# host. First, side by side, the test binaries compile while
# tests/xen-host/prepare.sh makes the Xen hosts and their QEMU (on a fresh
# clone; a no-op after).
test: $(IMAGE) apps examples $(TEST_APP_ELFS) tool deps-qemu deps-cc deps-fs
	rc=0; sh tests/xen-host/prepare.sh & prep=$$!; \
	    $(TEST_ENV) $(TEST_BUILD) || rc=$$?; wait $$prep || rc=$$?; \
	    $(TEST_ENV) $(TEST_RUN) || rc=$$?; \
	    ( export $(TEST_ENV) HVMLITE_XEN_HOST=4.20; $(XEN420_OWN) ) || rc=$$?; \
	    ( export $(TEST_ENV) HVMLITE_XEN_HOST=4.20 $(LINUX612_ON_420); $(LINUX612_ALL) ) || rc=$$?; exit $$rc

TEST_ENV = HVMLITE_ELF=$(abspath $(IMAGE)) HVMLITE_APPS=$(abspath target/apps) HVMLITE_EXAMPLES=$(abspath target/examples) HVMLITE_TOOL=$(abspath $(TOOL))

# Debian 13's Linux 6.12 as the guest kernel the loader boots
# (HVMLITE_GUEST_LINUX=6.12): on QEMU's PVH path (tests/linux.rs), and on
# the Xen 4.17 host the bzImage, vmlinux and one-file ELF domains and the
# disk boot.
LINUX612_DOMU = $(TEST_RUN) --test xen_linux linux_domu_through_hvmlite
LINUX612_DISK = $(TEST_RUN) --test xen_disk boots_the_kernel_on_each_kind_of_disk
LINUX612_SHORT = export $(TEST_ENV) HVMLITE_GUEST_LINUX=6.12; rc=0; \
	$(TEST_RUN) --test linux || rc=$$?; $(LINUX612_DOMU) || rc=$$?
test-linux-6.12: $(IMAGE) apps examples tool deps-qemu deps-fs
	$(LINUX612_SHORT); $(LINUX612_DISK) || rc=$$?; exit $$rc

# QEMU's PVH path with Linux 6.12 (part of `make test`).
test-linux-6.12-short: $(IMAGE) apps examples tool deps-qemu deps-fs
	export $(TEST_ENV) HVMLITE_GUEST_LINUX=6.12; $(TEST_RUN) --test linux

# The second Xen host (Debian 13: Xen 4.20, Linux 6.12 as dom0): the
# boot, stubdomain, network and suspend scenarios; hvmlite as PVH dom0 and
# Linux 6.12 as PVH dom0 through it; and the loader's Linux tests with
# Linux 6.12 as the guest (of the disk kinds, two: tests/xen_disk.rs).
LINUX612_ON_420 = HVMLITE_GUEST_LINUX=6.12 HVMLITE_DISK_KINDS=mbr-grub,esp-bls
test-xen-4.20: $(IMAGE) apps examples $(TEST_APP_ELFS) tool deps-qemu deps-cc deps-fs
	export $(TEST_ENV) HVMLITE_XEN_HOST=4.20; rc=0; $(XEN420_OWN) || rc=$$?; \
	    export $(LINUX612_ON_420); $(LINUX612_DOMU) || rc=$$?; $(LINUX612_DISK) || rc=$$?; exit $$rc

test-unit: deps-fs
	cargo test --lib

test-xen: $(IMAGE) apps examples $(TEST_APP_ELFS) tool deps-qemu deps-fs
	$(TEST_ENV) $(TEST_RUN) --test xen_dom0 --test xen_host --test xen_stubdom --test xen_linux --test xen_disk --test apps --test xen_net --test xen_runtime --test xen_timers --test xen_xsdomain --test xen_xenstored --test xen_suspend

# Fuzz every parser of outside bytes (fuzz/README.md): each target runs
# FUZZ_TIME seconds, one per core at a time; `make fuzz-ci` is the short pass.
# Stable Rust works: fuzz/run.sh sets RUSTC_BOOTSTRAP=1 for AddressSanitizer.
FUZZ_TARGETS ?= start_info e820 zero_page ring xenstore kernel bundle partitions ext4 fat bootcfg blkif netif time_info acpi http xenstored menu xfs btrfs
FUZZ_TIME    ?= 60
FUZZ_CI_TIME ?= 5

fuzz: deps-fuzz
	sh fuzz/run.sh $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-ci: deps-fuzz
	sh fuzz/run.sh $(FUZZ_CI_TIME) $(FUZZ_TARGETS)

# cargo-fuzz from crates.io; libFuzzer itself is built by libfuzzer-sys (g++).
deps-fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@command -v c++ >/dev/null || { \
	    echo "installing g++"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }

# Xen + Linux dom0 + xl in QEMU with a dom0 shell on this terminal, hvmlite.elf
# and xen/hvmlite-pvh.cfg in place: `xl create /etc/xen/hvmlite-pvh.cfg`.
xen-host-shell: $(IMAGE) deps-qemu
	XEN_HOST=$(or $(XEN_HOST),4.17) sh tests/xen-host/shell.sh $(IMAGE)

# Not a test: benches/boot.rs (QEMU start → Linux's /init for hvmlite and
# the stock paths) and benches/disk.rs (the Xen host: `xl create` → /init
# booting a disk through hvmlite and through GRUB's PVH image); each prints
# the table docs/benchmarks.md keeps. BENCH_RUNS=N runs (rounds) of each way,
# default 5; BENCHES="disk" runs only that one (BENCH_ICOUNT=0: its Xen
# host counts instructions instead of this machine's time). benches/net.rs: the network
# stubdomain against a Linux PVH domU on the Xen host (docs/network.md).
# benches/xenstored.rs: the xenstore domain against xenstored and
# oxenstored (docs/xenstored.md). benches/suspend.rs: the downtime a client
# of the network stubdomain sees across xl save/restore and xl migrate,
# against a Linux PVH domU (docs/lifecycle.md).
BENCHES ?= boot disk net xenstored suspend

bench: $(IMAGE) apps tool examples deps-qemu
	HVMLITE_ELF=$(abspath $(IMAGE)) HVMLITE_APPS=$(abspath target/apps) HVMLITE_TOOL=$(abspath $(TOOL)) HVMLITE_EXAMPLES=$(abspath target/examples) cargo bench $(BENCHES:%=--bench %)

clean:
	cargo clean
	rm -f $(IMAGE)

FORCE:
