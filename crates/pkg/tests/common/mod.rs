//! Helpers shared by the package builder's integration tests.

/// A `.deb` as dpkg-deb lays it out: an `ar` archive of `debian-binary`,
/// `control.tar.gz` and `data.tar.zst`, made from the given uncompressed
/// control and data tars.
pub fn deb_bytes(control_tar: &[u8], data_tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, control_tar).unwrap();
    let control = gz.finish().unwrap();
    let data = zstd::encode_all(data_tar, 3).unwrap();
    let mut ar = b"!<arch>\n".to_vec();
    for (member, body) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &control),
        ("data.tar.zst", &data),
    ] {
        ar.extend(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                member,
                0,
                0,
                0,
                100644,
                body.len()
            )
            .as_bytes(),
        );
        ar.extend(body);
        if body.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    ar
}
