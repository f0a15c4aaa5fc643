//! The architecture vocabulary: one [`Arch`] value, many spellings.
//!
//! Every tool LinuxKit talks to names the same machine differently: Go and
//! OCI platforms say `amd64`, `uname -m`, QEMU and Rust say `x86_64`,
//! Debian says `amd64` but `armhf`, `ppc64el` and `mips64el` where Go says
//! `arm`, `ppc64le` and `mips64le`. Each crate used to translate with its
//! own string match, and the matches disagreed (one knew `s390x`, another
//! did not). Here the architecture is parsed once, at the edge (a command
//! line flag, a `--platforms` entry), and every name is derived from the
//! value, so a new architecture is one variant and one row of each table.
//!
//! Parsing accepts what the reference LinuxKit accepts (its `util.GoArch`
//! and `util.MArch`: `amd64`/`x86_64`, `arm64`/`aarch64`, `riscv64`; `run
//! qemu` also `s390x`; `build --arch` any Go name), Debian's architecture
//! names, `uname -m`'s and the OCI `ARCH/VARIANT` forms. Spellings are
//! exact (case matters, as in the reference). [`Display`](std::fmt::Display)
//! gives the Go name, which is also what LinuxKit's flags print.

use std::fmt;
use std::str::FromStr;

/// A CPU architecture LinuxKit can build for or run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM (AArch64).
    Arm64,
    /// 32-bit ARMv7 with hardware floating point.
    Arm,
    /// 32-bit x86.
    I386,
    /// 64-bit little-endian POWER.
    Ppc64le,
    /// 64-bit RISC-V.
    Riscv64,
    /// IBM Z.
    S390x,
    /// 64-bit little-endian MIPS.
    Mips64le,
}

/// One row per architecture: the value and every spelling it is parsed
/// from, the Go name first.
const SPELLINGS: [(Arch, &[&str]); 8] = [
    (Arch::Amd64, &["amd64", "x86_64", "x86-64"]),
    (Arch::Arm64, &["arm64", "aarch64", "arm64/v8"]),
    (Arch::Arm, &["arm", "armhf", "armv7", "armv7l", "arm/v7"]),
    (Arch::I386, &["386", "i386", "i686", "x86"]),
    (Arch::Ppc64le, &["ppc64le", "ppc64el", "powerpc64le"]),
    (Arch::Riscv64, &["riscv64"]),
    (Arch::S390x, &["s390x"]),
    (Arch::Mips64le, &["mips64le", "mips64el"]),
];

#[cfg(target_arch = "x86_64")]
const HOST: Arch = Arch::Amd64;
#[cfg(target_arch = "aarch64")]
const HOST: Arch = Arch::Arm64;
#[cfg(target_arch = "arm")]
const HOST: Arch = Arch::Arm;
#[cfg(target_arch = "x86")]
const HOST: Arch = Arch::I386;
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
const HOST: Arch = Arch::Ppc64le;
#[cfg(target_arch = "riscv64")]
const HOST: Arch = Arch::Riscv64;
#[cfg(target_arch = "s390x")]
const HOST: Arch = Arch::S390x;
#[cfg(all(target_arch = "mips64", target_endian = "little"))]
const HOST: Arch = Arch::Mips64le;
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "x86",
    all(target_arch = "powerpc64", target_endian = "little"),
    target_arch = "riscv64",
    target_arch = "s390x",
    all(target_arch = "mips64", target_endian = "little"),
)))]
compile_error!("linuxkit-base: this target architecture has no `Arch` variant; add one");

impl Arch {
    /// Every architecture, in declaration order.
    pub const ALL: [Arch; 8] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Arm,
        Arch::I386,
        Arch::Ppc64le,
        Arch::Riscv64,
        Arch::S390x,
        Arch::Mips64le,
    ];

    /// The architecture this program was built for (and so runs on).
    pub const fn host() -> Arch {
        HOST
    }

    /// Go's `GOARCH`, also the OCI platform's `architecture` and the name
    /// LinuxKit's `--arch` and `arches:` use: `amd64`, `arm64`, `arm`, ...
    pub const fn go(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::I386 => "386",
            Arch::Ppc64le => "ppc64le",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
            Arch::Mips64le => "mips64le",
        }
    }

    /// Debian's architecture name (`dpkg --print-architecture`, the
    /// `binary-ARCH` of the archive, `debian.lock`'s keys).
    pub const fn debian(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "armhf",
            Arch::I386 => "i386",
            Arch::Ppc64le => "ppc64el",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
            Arch::Mips64le => "mips64el",
        }
    }

    /// QEMU's name: the `ARCH` of `qemu-system-ARCH`, and what `run qemu
    /// --arch` prints (the reference's `x86_64`, `aarch64`, `s390x`).
    pub const fn qemu(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
            Arch::Arm => "arm",
            Arch::I386 => "i386",
            Arch::Ppc64le => "ppc64",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
            Arch::Mips64le => "mips64el",
        }
    }

    /// The `qemu-system-*` program for this architecture.
    pub const fn qemu_system(self) -> &'static str {
        match self {
            Arch::Amd64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
            Arch::Arm => "qemu-system-arm",
            Arch::I386 => "qemu-system-i386",
            Arch::Ppc64le => "qemu-system-ppc64",
            Arch::Riscv64 => "qemu-system-riscv64",
            Arch::S390x => "qemu-system-s390x",
            Arch::Mips64le => "qemu-system-mips64el",
        }
    }

    /// QEMU's `-machine` for a virtual machine of this architecture (the
    /// reference's choice where it has one: `q35`, `virt`,
    /// `s390-ccw-virtio`).
    pub const fn qemu_machine(self) -> &'static str {
        match self {
            Arch::Amd64 | Arch::I386 => "q35",
            Arch::Arm64 | Arch::Arm | Arch::Riscv64 => "virt",
            Arch::Ppc64le => "pseries",
            Arch::S390x => "s390-ccw-virtio",
            Arch::Mips64le => "malta",
        }
    }

    /// Rust's name (`std::env::consts::ARCH`, `cfg(target_arch)`).
    pub const fn rust(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
            Arch::Arm => "arm",
            Arch::I386 => "x86",
            Arch::Ppc64le => "powerpc64",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
            Arch::Mips64le => "mips64",
        }
    }

    /// Rust's static (musl) target triple, for `cargo build --target`.
    pub const fn rust_musl_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
            Arch::Arm => "armv7-unknown-linux-musleabihf",
            Arch::I386 => "i686-unknown-linux-musl",
            Arch::Ppc64le => "powerpc64le-unknown-linux-musl",
            Arch::Riscv64 => "riscv64gc-unknown-linux-musl",
            Arch::S390x => "s390x-unknown-linux-musl",
            Arch::Mips64le => "mips64el-unknown-linux-muslabi64",
        }
    }

    /// The OCI platform's `architecture` (the Go name).
    pub const fn oci_architecture(self) -> &'static str {
        self.go()
    }

    /// The OCI platform's `variant`, where one is needed to tell images
    /// apart: `v7` for 32-bit ARM. (arm64 images often say `v8`, but
    /// nothing else is arm64, so it is not asked for.)
    pub const fn oci_variant(self) -> Option<&'static str> {
        match self {
            Arch::Arm => Some("v7"),
            _ => None,
        }
    }

    /// The OCI platform as `docker --platform` and `pkg build --platforms`
    /// write it: `linux/amd64`, `linux/arm/v7`.
    pub const fn oci_platform(self) -> &'static str {
        match self {
            Arch::Amd64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
            Arch::Arm => "linux/arm/v7",
            Arch::I386 => "linux/386",
            Arch::Ppc64le => "linux/ppc64le",
            Arch::Riscv64 => "linux/riscv64",
            Arch::S390x => "linux/s390x",
            Arch::Mips64le => "linux/mips64le",
        }
    }

    /// The Linux kernel's name (`make ARCH=...`, `arch/NAME/` in its tree).
    pub const fn kernel(self) -> &'static str {
        match self {
            Arch::Amd64 | Arch::I386 => "x86",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::Ppc64le => "powerpc",
            Arch::Riscv64 => "riscv",
            Arch::S390x => "s390",
            Arch::Mips64le => "mips",
        }
    }

    /// The file name of the kernel's bootable image in its build tree
    /// (`arch/ARCH/boot/NAME`): what a LinuxKit kernel image ships as
    /// `/kernel` (Debian installs the same image as `boot/vmlinuz-*`, or
    /// `boot/vmlinux-*` where it is `vmlinux`).
    pub const fn kernel_image(self) -> &'static str {
        match self {
            Arch::Amd64 | Arch::I386 | Arch::S390x => "bzImage",
            Arch::Arm64 | Arch::Riscv64 => "Image",
            Arch::Arm => "zImage",
            Arch::Ppc64le | Arch::Mips64le => "vmlinux",
        }
    }

    /// Every spelling [`FromStr`] accepts for this architecture, the Go
    /// name first.
    pub fn spellings(self) -> &'static [&'static str] {
        SPELLINGS
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, s)| *s)
            .expect("every architecture has a row")
    }
}

impl fmt::Display for Arch {
    /// The Go name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.go())
    }
}

impl FromStr for Arch {
    type Err = ParseArchError;

    fn from_str(s: &str) -> Result<Arch, ParseArchError> {
        SPELLINGS
            .iter()
            .find(|(_, names)| names.contains(&s))
            .map(|(a, _)| *a)
            .ok_or_else(|| ParseArchError {
                given: s.to_string(),
            })
    }
}

/// A name that is no architecture's; its message lists the valid
/// spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseArchError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for ParseArchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown architecture {:?}: give one of {}",
            self.given,
            valid_spellings()
        )
    }
}

impl std::error::Error for ParseArchError {}

/// `amd64 (x86_64, x86-64), arm64 (aarch64, arm64/v8), ...`
pub fn valid_spellings() -> String {
    SPELLINGS
        .iter()
        .map(|(_, names)| match names {
            [go] => go.to_string(),
            [go, rest @ ..] => format!("{go} ({})", rest.join(", ")),
            [] => unreachable!("every row has the Go name"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_to_its_architecture() {
        let cases = [
            ("amd64", Arch::Amd64),
            ("x86_64", Arch::Amd64),
            ("x86-64", Arch::Amd64),
            ("arm64", Arch::Arm64),
            ("aarch64", Arch::Arm64),
            ("arm64/v8", Arch::Arm64),
            ("arm", Arch::Arm),
            ("armhf", Arch::Arm),
            ("armv7", Arch::Arm),
            ("armv7l", Arch::Arm),
            ("arm/v7", Arch::Arm),
            ("386", Arch::I386),
            ("i386", Arch::I386),
            ("i686", Arch::I386),
            ("x86", Arch::I386),
            ("ppc64le", Arch::Ppc64le),
            ("ppc64el", Arch::Ppc64le),
            ("powerpc64le", Arch::Ppc64le),
            ("riscv64", Arch::Riscv64),
            ("s390x", Arch::S390x),
            ("mips64le", Arch::Mips64le),
            ("mips64el", Arch::Mips64le),
        ];
        for (s, a) in cases {
            assert_eq!(s.parse::<Arch>(), Ok(a), "{s}");
        }
        let total: usize = Arch::ALL.iter().map(|a| a.spellings().len()).sum();
        assert_eq!(total, cases.len(), "a spelling without a test case");
    }

    #[test]
    fn every_name_of_every_architecture() {
        // arch, go, debian, qemu, qemu-system, machine, rust, musl target,
        // OCI platform, kernel, kernel image
        let table = [
            (
                Arch::Amd64,
                "amd64",
                "amd64",
                "x86_64",
                "qemu-system-x86_64",
                "q35",
                "x86_64",
                "x86_64-unknown-linux-musl",
                "linux/amd64",
                "x86",
                "bzImage",
            ),
            (
                Arch::Arm64,
                "arm64",
                "arm64",
                "aarch64",
                "qemu-system-aarch64",
                "virt",
                "aarch64",
                "aarch64-unknown-linux-musl",
                "linux/arm64",
                "arm64",
                "Image",
            ),
            (
                Arch::Arm,
                "arm",
                "armhf",
                "arm",
                "qemu-system-arm",
                "virt",
                "arm",
                "armv7-unknown-linux-musleabihf",
                "linux/arm/v7",
                "arm",
                "zImage",
            ),
            (
                Arch::I386,
                "386",
                "i386",
                "i386",
                "qemu-system-i386",
                "q35",
                "x86",
                "i686-unknown-linux-musl",
                "linux/386",
                "x86",
                "bzImage",
            ),
            (
                Arch::Ppc64le,
                "ppc64le",
                "ppc64el",
                "ppc64",
                "qemu-system-ppc64",
                "pseries",
                "powerpc64",
                "powerpc64le-unknown-linux-musl",
                "linux/ppc64le",
                "powerpc",
                "vmlinux",
            ),
            (
                Arch::Riscv64,
                "riscv64",
                "riscv64",
                "riscv64",
                "qemu-system-riscv64",
                "virt",
                "riscv64",
                "riscv64gc-unknown-linux-musl",
                "linux/riscv64",
                "riscv",
                "Image",
            ),
            (
                Arch::S390x,
                "s390x",
                "s390x",
                "s390x",
                "qemu-system-s390x",
                "s390-ccw-virtio",
                "s390x",
                "s390x-unknown-linux-musl",
                "linux/s390x",
                "s390",
                "bzImage",
            ),
            (
                Arch::Mips64le,
                "mips64le",
                "mips64el",
                "mips64el",
                "qemu-system-mips64el",
                "malta",
                "mips64",
                "mips64el-unknown-linux-muslabi64",
                "linux/mips64le",
                "mips",
                "vmlinux",
            ),
        ];
        assert_eq!(table.len(), Arch::ALL.len());
        for (a, go, deb, qemu, system, machine, rust, musl, oci, kernel, image) in table {
            assert_eq!(a.go(), go);
            assert_eq!(a.to_string(), go);
            assert_eq!(a.oci_architecture(), go);
            assert_eq!(a.debian(), deb);
            assert_eq!(a.qemu(), qemu);
            assert_eq!(a.qemu_system(), system);
            assert_eq!(a.qemu_system(), format!("qemu-system-{qemu}"));
            assert_eq!(a.qemu_machine(), machine);
            assert_eq!(a.rust(), rust);
            assert_eq!(a.rust_musl_target(), musl);
            assert_eq!(a.oci_platform(), oci);
            let variant = a.oci_variant().map(|v| format!("/{v}")).unwrap_or_default();
            assert_eq!(oci, format!("linux/{go}{variant}"));
            assert_eq!(a.kernel(), kernel);
            assert_eq!(a.kernel_image(), image);
            // Every name a tool prints for it reads back as the same value
            // (Rust's `x86`/`powerpc64`/`mips64` and the OCI platform less
            // its `linux/` are the exceptions that need no parsing).
            for name in [go, deb, &oci["linux/".len()..]] {
                assert_eq!(name.parse::<Arch>(), Ok(a), "{name}");
            }
            assert_eq!(a.spellings()[0], go);
        }
    }

    #[test]
    fn the_host_is_the_target_rust_was_built_for() {
        assert_eq!(Arch::host().rust(), std::env::consts::ARCH);
        assert_eq!(
            std::env::consts::ARCH.parse::<Arch>().ok(),
            // Rust's own names parse, except where Rust and everyone else
            // disagree (`x86`, `powerpc64`, `mips64`).
            Some(Arch::host()).filter(|h| h.rust() != "powerpc64" && h.rust() != "mips64")
        );
    }

    #[test]
    fn unknown_names_list_the_valid_spellings() {
        for bad in [
            "",
            "AMD64",
            "x86_64 ",
            "ppc64",
            "mips",
            "arm/v6",
            "linux/amd64",
        ] {
            let e = bad.parse::<Arch>().unwrap_err();
            assert_eq!(e.given, bad);
            let m = e.to_string();
            assert!(
                m.starts_with(&format!("unknown architecture {bad:?}: ")),
                "{m}"
            );
            assert!(
                m.contains("amd64 (x86_64, x86-64), arm64 (aarch64, arm64/v8)"),
                "{m}"
            );
            assert!(m.contains("riscv64, s390x"), "{m}");
        }
    }
}
