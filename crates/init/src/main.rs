//! The `linuxkit-init` binary; see the library for the applets.

#![forbid(unsafe_code)]

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let name = argv.first().cloned().unwrap_or_default();
    std::process::exit(linuxkit_init::dispatch(&name, &argv));
}
