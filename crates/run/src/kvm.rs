//! Does KVM actually work here?
//!
//! `/dev/kvm` existing is not enough: in some nested or sandboxed
//! environments the device opens, a VM can be created and even simple
//! real-mode code runs, but an ordinary kernel never gets through its
//! switch to protected and long mode (seen with PVM-style nested KVM: the
//! guest spins or triple-faults). QEMU with `accel=kvm:tcg` does not fall
//! back in that case, it just hangs. So before choosing KVM we run a real,
//! tiny guest that takes a kernel's path: it starts in real mode, loads a
//! GDT, enters protected mode, builds page tables, enters long mode, and
//! there writes a byte to an I/O port ([`guest_code`]). KVM works if
//! `KVM_RUN` comes back promptly with that `KVM_EXIT_IO`.
//!
//! The guest runs on its own thread. If `KVM_RUN` has not returned before
//! the deadline we kick the thread with a signal (whose handler does
//! nothing, installed without `SA_RESTART`, so the ioctl fails with `EINTR`)
//! and answer "not usable" either way: a probe that stays stuck in the
//! kernel is left behind rather than waited for.
//!
//! The guest code itself is checked under QEMU's emulator (as a boot
//! sector) by this module's tests, so a failure here is KVM's.

use std::fmt;
use std::time::Duration;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmStatus {
    /// A test guest ran and did its port I/O.
    Usable,
    /// `/dev/kvm` does not exist.
    Absent,
    /// KVM is there but did not run the test guest; the reason says where
    /// it went wrong.
    Unusable(String),
}

impl KvmStatus {
    /// Whether KVM ran the test guest, so QEMU may use `accel=kvm`.
    pub fn is_usable(&self) -> bool {
        matches!(self, KvmStatus::Usable)
    }
}

impl fmt::Display for KvmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvmStatus::Usable => f.write_str("KVM works"),
            KvmStatus::Absent => f.write_str("/dev/kvm does not exist"),
            KvmStatus::Unusable(why) => write!(f, "KVM does not work here ({why})"),
        }
    }
}

/// How long the test guest may take; a working KVM needs well under a
/// millisecond.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes `/dev/kvm` (see the module docs). Returns within about
/// `timeout` whatever happens.
pub fn probe(timeout: Duration) -> KvmStatus {
    probe_device("/dev/kvm", timeout)
}

/// [`probe`] with another device path (for tests).
pub fn probe_device(dev: &str, timeout: Duration) -> KvmStatus {
    if !std::path::Path::new(dev).exists() {
        return KvmStatus::Absent;
    }
    imp::probe(dev, timeout)
}

/// The test guest's code, to be loaded and entered at `base` (real mode,
/// CS = 0): it switches to protected mode, builds identity page tables for
/// the first 2 MiB at 0x1000..0x4000, enters long mode, and there writes
/// `value` to I/O port `port` and halts. That is the path a Linux kernel
/// takes at boot, and the one where KVMs that cannot run ordinary guests
/// get stuck (a guest already put in long mode by the host runs on some of
/// them). `base` must leave the code below 64 KiB and clear of the page
/// tables.
pub fn guest_code(base: u16, port: u8, value: u8) -> Vec<u8> {
    let base = u32::from(base);
    // Offsets inside the blob, fixed so the jumps can be encoded up front.
    const PM32: u32 = 0x20;
    const LM64: u32 = 0xA0;
    const GDT: u32 = 0xB0;
    const GDTR: u32 = GDT + 32;
    let mut c = Vec::new();
    let le32 = |v: u32| v.to_le_bytes();
    // 16-bit real mode.
    c.extend([0xFA]); // cli
    c.extend([0x31, 0xC0, 0x8E, 0xD8]); // xor ax, ax; mov ds, ax
    c.extend([0x0F, 0x01, 0x16]); // lgdt [GDTR]
    c.extend(((base + GDTR) as u16).to_le_bytes());
    c.extend([0x0F, 0x20, 0xC0]); // mov eax, cr0
    c.extend([0x0C, 0x01]); // or al, 1 (PE)
    c.extend([0x0F, 0x22, 0xC0]); // mov cr0, eax
    c.extend([0x66, 0xEA]); // jmp dword 0x08:PM32
    c.extend(le32(base + PM32));
    c.extend([0x08, 0x00]);
    assert!(c.len() <= PM32 as usize);
    c.resize(PM32 as usize, 0x90);
    // 32-bit protected mode.
    c.extend([0x66, 0xB8, 0x10, 0x00]); // mov ax, 0x10
    c.extend([0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0]); // mov ds, ax; mov es, ax; mov ss, ax
    // Page tables: PML4[0] -> 0x2000, PDPT[0] -> 0x3000, PD[0] = 2 MiB page
    // at 0 (present, writable, user; PS in the PD entry).
    for (addr, v) in [
        (0x1000u32, 0x2007u32),
        (0x1004, 0),
        (0x2000, 0x3007),
        (0x2004, 0),
        (0x3000, 0x87),
        (0x3004, 0),
    ] {
        c.extend([0xC7, 0x05]); // mov dword [addr], v
        c.extend(le32(addr));
        c.extend(le32(v));
    }
    c.extend([0x0F, 0x20, 0xE0]); // mov eax, cr4
    c.extend([0x83, 0xC8, 0x20]); // or eax, 0x20 (PAE)
    c.extend([0x0F, 0x22, 0xE0]); // mov cr4, eax
    c.push(0xB8); // mov eax, 0x1000
    c.extend(le32(0x1000));
    c.extend([0x0F, 0x22, 0xD8]); // mov cr3, eax
    c.push(0xB9); // mov ecx, EFER
    c.extend(le32(0xC000_0080));
    c.extend([0x0F, 0x32]); // rdmsr
    c.push(0x0D); // or eax, LME
    c.extend(le32(0x100));
    c.extend([0x0F, 0x30]); // wrmsr
    c.extend([0x0F, 0x20, 0xC0]); // mov eax, cr0
    c.push(0x0D); // or eax, PG
    c.extend(le32(0x8000_0000));
    c.extend([0x0F, 0x22, 0xC0]); // mov cr0, eax
    c.push(0xEA); // jmp 0x18:LM64
    c.extend(le32(base + LM64));
    c.extend([0x18, 0x00]);
    assert!(c.len() <= LM64 as usize);
    c.resize(LM64 as usize, 0x90);
    // 64-bit long mode.
    c.extend([0xB0, value]); // mov al, value
    c.extend([0xE6, port]); // out port, al
    c.extend([0xF4, 0xEB, 0xFD]); // hlt; jmp back to hlt
    c.resize(GDT as usize, 0);
    // Null, flat 32-bit code (0x08), flat data (0x10), 64-bit code (0x18).
    for d in [
        0u64,
        0x00CF_9A00_0000_FFFF,
        0x00CF_9200_0000_FFFF,
        0x00AF_9A00_0000_FFFF,
    ] {
        c.extend(d.to_le_bytes());
    }
    c.extend(31u16.to_le_bytes());
    c.extend(le32(base + GDT));
    c
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use super::KvmStatus;
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::mpsc;
    use std::time::Duration;

    // ioctl numbers from <linux/kvm.h> (KVMIO = 0xAE), x86_64.
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    const KVM_GET_VCPU_MMAP_SIZE: libc::c_ulong = 0xAE04;
    const KVM_CREATE_VCPU: libc::c_ulong = 0xAE41;
    /// `_IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)` (32 bytes).
    const KVM_SET_USER_MEMORY_REGION: libc::c_ulong = 0x4020_AE46;
    const KVM_RUN: libc::c_ulong = 0xAE80;
    /// `_IOW(KVMIO, 0x82, struct kvm_regs)` (144 bytes).
    const KVM_SET_REGS: libc::c_ulong = 0x4090_AE82;
    /// `_IOR(KVMIO, 0x83, struct kvm_sregs)` (312 bytes).
    const KVM_GET_SREGS: libc::c_ulong = 0x8138_AE83;
    /// `_IOW(KVMIO, 0x84, struct kvm_sregs)`.
    const KVM_SET_SREGS: libc::c_ulong = 0x4138_AE84;
    const KVM_API_VERSION: i32 = 12;
    const KVM_EXIT_IO: u32 = 2;

    /// Guest memory at physical address 0 (the code builds its page
    /// tables at 0x1000..0x4000).
    const MEM_SIZE: usize = 0x10000;
    const CODE_ADDR: u16 = 0x8000;
    const PORT: u8 = 0x10;
    const VALUE: u8 = 0x42;

    #[repr(C)]
    struct UserspaceMemoryRegion {
        slot: u32,
        flags: u32,
        guest_phys_addr: u64,
        memory_size: u64,
        userspace_addr: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct Regs {
        gpr: [u64; 16], // rax rbx rcx rdx rsi rdi rsp rbp r8..r15
        rip: u64,
        rflags: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Segment {
        base: u64,
        limit: u32,
        selector: u16,
        type_: u8,
        present: u8,
        dpl: u8,
        db: u8,
        s: u8,
        l: u8,
        g: u8,
        avl: u8,
        unusable: u8,
        padding: u8,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Dtable {
        base: u64,
        limit: u16,
        padding: [u16; 3],
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Sregs {
        cs: Segment,
        ds: Segment,
        es: Segment,
        fs: Segment,
        gs: Segment,
        ss: Segment,
        tr: Segment,
        ldt: Segment,
        gdt: Dtable,
        idt: Dtable,
        cr0: u64,
        cr2: u64,
        cr3: u64,
        cr4: u64,
        cr8: u64,
        efer: u64,
        apic_base: u64,
        interrupt_bitmap: [u64; 4],
    }

    const _: () = assert!(std::mem::size_of::<Regs>() == 144);
    const _: () = assert!(std::mem::size_of::<Sregs>() == 312);
    const _: () = assert!(std::mem::size_of::<UserspaceMemoryRegion>() == 32);

    /// An anonymous or file mapping, unmapped on drop.
    struct Mapping {
        ptr: *mut libc::c_void,
        len: usize,
    }

    // SAFETY: the mapping is plain memory owned by this value; moving it to
    // the probe thread is fine (only that thread touches it afterwards).
    unsafe impl Send for Mapping {}

    impl Mapping {
        fn new(len: usize, fd: Option<i32>) -> Result<Mapping, String> {
            let (flags, fd) = match fd {
                Some(fd) => (libc::MAP_SHARED, fd),
                None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
            };
            // SAFETY: a fresh mapping chosen by the kernel (addr NULL); the
            // result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    fd,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(format!("mmap: {}", std::io::Error::last_os_error()));
            }
            Ok(Mapping { ptr, len })
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: ptr/len are exactly what mmap returned.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }

    /// `ioctl(fd, req, arg)`, with errno turned into a message.
    fn ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: usize, what: &str) -> Result<i32, String> {
        // SAFETY: every caller passes a request whose argument is either an
        // integer or a pointer to a live value of the size the request
        // encodes.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
        if r < 0 {
            Err(format!("{what}: {}", std::io::Error::last_os_error()))
        } else {
            Ok(r)
        }
    }

    fn own(fd: i32) -> OwnedFd {
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// Everything up to (not including) `KVM_RUN`.
    struct Guest {
        _kvm: OwnedFd,
        _vm: OwnedFd,
        vcpu: OwnedFd,
        _mem: Mapping,
        run: Mapping,
    }

    fn setup(dev: &str, code: &[u8]) -> Result<Guest, String> {
        let path = CString::new(dev).map_err(|e| e.to_string())?;
        // SAFETY: a plain open(2) of a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open {dev}: {}", std::io::Error::last_os_error()));
        }
        let kvm = own(fd);
        let v = ioctl(&kvm, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")?;
        if v != KVM_API_VERSION {
            return Err(format!("KVM API version {v}, expected {KVM_API_VERSION}"));
        }
        let vm = own(ioctl(&kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM")?);
        let mem = Mapping::new(MEM_SIZE, None)?;
        if usize::from(CODE_ADDR) + code.len() > MEM_SIZE {
            return Err(format!("a test guest of {} bytes does not fit", code.len()));
        }
        // SAFETY: the mapping is MEM_SIZE bytes of writable memory and the
        // code fits in it at CODE_ADDR (checked above).
        unsafe {
            let base = mem.ptr.cast::<u8>();
            std::ptr::copy_nonoverlapping(code.as_ptr(), base.add(CODE_ADDR.into()), code.len());
        }
        let region = UserspaceMemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: mem.len as u64,
            userspace_addr: mem.ptr as u64,
        };
        ioctl(
            &vm,
            KVM_SET_USER_MEMORY_REGION,
            &region as *const _ as usize,
            "KVM_SET_USER_MEMORY_REGION",
        )?;
        let vcpu = own(ioctl(&vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU")?);
        let size = ioctl(&kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE")? as usize;
        if size < 64 {
            return Err(format!("vcpu mmap size {size} is too small"));
        }
        let run = Mapping::new(size, Some(vcpu.as_raw_fd()))?;
        let mut sregs = Sregs::default();
        ioctl(
            &vcpu,
            KVM_GET_SREGS,
            &mut sregs as *mut _ as usize,
            "KVM_GET_SREGS",
        )?;
        // Start in real mode at 0:CODE_ADDR, as a PC does; the guest code
        // switches to protected then long mode itself.
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        ioctl(
            &vcpu,
            KVM_SET_SREGS,
            &sregs as *const _ as usize,
            "KVM_SET_SREGS",
        )?;
        let regs = Regs {
            rip: CODE_ADDR.into(),
            rflags: 0x2,
            ..Regs::default()
        };
        ioctl(
            &vcpu,
            KVM_SET_REGS,
            &regs as *const _ as usize,
            "KVM_SET_REGS",
        )?;
        Ok(Guest {
            _kvm: kvm,
            _vm: vm,
            vcpu,
            _mem: mem,
            run,
        })
    }

    /// Runs the guest once and checks how it came back.
    fn run(g: &Guest) -> Result<(), String> {
        ioctl(&g.vcpu, KVM_RUN, 0, "KVM_RUN")?;
        // struct kvm_run: exit_reason is the u32 at offset 8; for
        // KVM_EXIT_IO the union at offset 32 starts with
        // { u8 direction; u8 size; u16 port; u32 count; u64 data_offset }.
        let base = g.run.ptr.cast::<u8>();
        // SAFETY: the kvm_run mapping is at least 64 bytes (checked in
        // setup) and the kernel is done writing it (KVM_RUN returned).
        let (reason, port, data_offset) = unsafe {
            (
                base.add(8).cast::<u32>().read_unaligned(),
                base.add(34).cast::<u16>().read_unaligned(),
                base.add(40).cast::<u64>().read_unaligned(),
            )
        };
        if reason != KVM_EXIT_IO {
            return Err(format!(
                "a test guest entering long mode stopped with {} instead of doing its port I/O",
                exit_name(reason)
            ));
        }
        if port != u16::from(PORT) {
            return Err(format!("the test guest wrote to port {port:#x}"));
        }
        let value = if (data_offset as usize) < g.run.len {
            // SAFETY: the offset was checked to lie inside the mapping.
            unsafe { base.add(data_offset as usize).read() }
        } else {
            0
        };
        if value != VALUE {
            return Err(format!(
                "the test guest wrote {value:#x}, expected {VALUE:#x}"
            ));
        }
        Ok(())
    }

    /// `KVM_EXIT_*` names from <linux/kvm.h>.
    fn exit_name(reason: u32) -> String {
        let name = match reason {
            0 => "KVM_EXIT_UNKNOWN",
            1 => "KVM_EXIT_EXCEPTION",
            3 => "KVM_EXIT_HYPERCALL",
            4 => "KVM_EXIT_DEBUG",
            5 => "KVM_EXIT_HLT",
            6 => "KVM_EXIT_MMIO",
            8 => "KVM_EXIT_SHUTDOWN (a triple fault)",
            9 => "KVM_EXIT_FAIL_ENTRY",
            10 => "KVM_EXIT_INTR",
            17 => "KVM_EXIT_INTERNAL_ERROR",
            _ => return format!("exit reason {reason}"),
        };
        name.to_string()
    }

    extern "C" fn on_kick(_: libc::c_int) {}

    /// Installs a do-nothing handler for the kick signal, without
    /// `SA_RESTART`, unless the program already handles it.
    fn install_kick_handler(sig: libc::c_int) {
        // SAFETY: sigaction with a zeroed struct is valid; we only install
        // our handler when the current disposition is the default one.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                return;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }

    pub fn probe(dev: &str, timeout: Duration) -> KvmStatus {
        probe_code(dev, &super::guest_code(CODE_ADDR, PORT, VALUE), timeout)
    }

    /// Runs `code` (real mode, at CODE_ADDR) as the test guest.
    pub fn probe_code(dev: &str, code: &[u8], timeout: Duration) -> KvmStatus {
        let guest = match setup(dev, code) {
            Ok(g) => g,
            Err(e) => return KvmStatus::Unusable(e),
        };
        let sig = libc::SIGRTMIN() + 3;
        install_kick_handler(sig);
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("kvm-probe".into())
            .spawn(move || {
                let r = run(&guest);
                let _ = tx.send(r);
                drop(guest);
            });
        let handle = match handle {
            Ok(h) => h,
            Err(e) => return KvmStatus::Unusable(format!("cannot start the probe thread: {e}")),
        };
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => {
                let _ = handle.join();
                KvmStatus::Usable
            }
            Ok(Err(e)) => {
                let _ = handle.join();
                KvmStatus::Unusable(e)
            }
            Err(_) => {
                // SAFETY: the thread is still running (it has not sent), so
                // its pthread_t is valid; the signal only interrupts KVM_RUN.
                unsafe { libc::pthread_kill(handle.as_pthread_t(), sig) };
                // Give it a moment to come back; if it does not, leave it.
                let _ = rx.recv_timeout(Duration::from_millis(200));
                KvmStatus::Unusable(format!(
                    "KVM_RUN of a test guest did not return within {} ms",
                    timeout.as_millis()
                ))
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use super::KvmStatus;
    use std::time::Duration;

    /// Only x86_64 has a test guest; elsewhere a device that opens is
    /// taken as working, as the reference does.
    pub fn probe(dev: &str, _timeout: Duration) -> KvmStatus {
        match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
            Ok(_) => KvmStatus::Usable,
            Err(e) => KvmStatus::Unusable(format!("open {dev}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn probe_answers_promptly() {
        let t = Instant::now();
        let status = probe(PROBE_TIMEOUT);
        let took = t.elapsed();
        eprintln!("kvm probe: {status} in {took:?}");
        assert!(took < PROBE_TIMEOUT + Duration::from_secs(1), "{took:?}");
    }

    /// The test guest really reaches long mode: run it as a boot sector
    /// under QEMU's emulator, writing to QEMU's `isa-debug-exit` port,
    /// which makes QEMU exit with status `value * 2 + 1`.
    #[test]
    fn the_test_guest_reaches_long_mode_under_emulation() {
        let mut sector = guest_code(0x7C00, 0xF4, 0x21);
        assert!(sector.len() <= 510, "{} bytes", sector.len());
        sector.resize(510, 0);
        sector.extend([0x55, 0xAA]);
        // SeaBIOS will not boot a disk smaller than its geometry.
        sector.resize(1 << 20, 0);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("boot.img");
        std::fs::write(&img, &sector).unwrap();
        let mut child = std::process::Command::new("qemu-system-x86_64")
            .args(["-machine", "q35,accel=tcg", "-m", "64", "-nodefaults"])
            .args([
                "-display",
                "none",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=1",
            ])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=ide", img.display()))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 is installed (scripts/setup)");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the test guest did not reach its port write under TCG");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0x21 * 2 + 1));
    }

    /// A guest that never exits (`jmp $`) is kicked out of KVM_RUN at the
    /// deadline (where KVM can create a VM at all).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn a_guest_that_never_exits_is_cut_off() {
        if !std::path::Path::new("/dev/kvm").exists() {
            return;
        }
        let t = Instant::now();
        let status = imp::probe_code("/dev/kvm", &[0xEB, 0xFE], Duration::from_millis(300));
        eprintln!("spinning guest: {status} in {:?}", t.elapsed());
        assert!(matches!(status, KvmStatus::Unusable(_)), "{status:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_missing_device_is_absent() {
        assert_eq!(
            probe_device("/nonexistent/kvm", PROBE_TIMEOUT),
            KvmStatus::Absent
        );
    }

    #[test]
    fn a_device_that_is_not_kvm_is_unusable() {
        let s = probe_device("/dev/null", PROBE_TIMEOUT);
        assert!(matches!(s, KvmStatus::Unusable(_)), "{s:?}");
    }
}
