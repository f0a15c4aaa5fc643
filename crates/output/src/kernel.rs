//! `--decompress-kernel`: the uncompressed kernel (`vmlinux`) inside a
//! compressed kernel image.
//!
//! An x86 `bzImage` carries its compressed payload at `payload_offset`
//! (setup header, boot protocol 2.08+, offset 0x248) after the real-mode
//! setup sectors; arm64 and others ship `Image.gz`. The payload's own magic
//! tells the compression: gzip, xz, zstd and LZ4 (the kernel's legacy
//! frame) are supported, which covers the kernels distributions ship.

use std::io::Read;

use crate::compress::{LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAGIC};
use crate::error::{Error, Result};

/// The decompressed kernel of `image`.
pub fn decompress_kernel(image: &[u8]) -> Result<Vec<u8>> {
    let payload = if image.len() > 0x250 && &image[0x202..0x206] == b"HdrS" {
        let version = u16::from_le_bytes([image[0x206], image[0x207]]);
        if version < 0x208 {
            return Err(Error::DecompressKernel(format!(
                "boot protocol {}.{:02} has no payload offset (2.08 or later needed)",
                version >> 8,
                version & 0xff
            )));
        }
        let setup_sects = match image[0x1f1] {
            0 => 4,
            n => usize::from(n),
        };
        let offset = u32::from_le_bytes(image[0x248..0x24c].try_into().expect("4 bytes")) as usize;
        let length = u32::from_le_bytes(image[0x24c..0x250].try_into().expect("4 bytes")) as usize;
        let start = (setup_sects + 1) * 512 + offset;
        image.get(start..start + length).ok_or_else(|| {
            Error::DecompressKernel("the bzImage payload lies outside the file".into())
        })?
    } else {
        image
    };
    let bad =
        |what: &str, e: String| Error::DecompressKernel(format!("invalid {what} payload: {e}"));
    let mut out = Vec::new();
    match payload {
        [0x1f, 0x8b, ..] => {
            flate2::read::GzDecoder::new(payload)
                .read_to_end(&mut out)
                .map_err(|e| bad("gzip", e.to_string()))?;
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            lzma_rust2::XzReader::new(payload, false)
                .read_to_end(&mut out)
                .map_err(|e| bad("xz", e.to_string()))?;
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            zstd::stream::read::Decoder::new(payload)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| bad("zstd", e.to_string()))?;
        }
        [0x02, 0x21, 0x4c, 0x18, ..] => out = lz4_legacy(payload).map_err(|e| bad("lz4", e))?,
        _ => {
            return Err(Error::DecompressKernel(
                "the kernel is not compressed with gzip, xz, zstd or lz4".into(),
            ));
        }
    }
    Ok(out)
}

/// The kernel's LZ4 legacy format: a magic, then blocks of
/// `[u32 compressed size][data]`; a repeated magic starts another frame and
/// the kernel build appends the 4-byte uncompressed size at the end.
fn lz4_legacy(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut pos = 4;
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while pos + 4 <= data.len() {
        let size = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
        if size == LZ4_LEGACY_MAGIC {
            pos += 4;
            continue;
        }
        let size = size as usize;
        if pos + 4 + size > data.len() {
            break; // the trailing uncompressed size
        }
        let n = lz4_flex::block::decompress_into(&data[pos + 4..pos + 4 + size], &mut block)
            .map_err(|e| e.to_string())?;
        out.extend_from_slice(&block[..n]);
        pos += 4 + size;
    }
    if out.is_empty() {
        return Err("no data".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fake bzImage: setup sectors, then a payload at payload_offset.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 2 * 512];
        img[0x1f1] = 1; // one setup sector after the boot sector
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(&[0u8; 16]);
        img.extend_from_slice(payload);
        img.extend_from_slice(&[1, 2, 3, 4]);
        img
    }

    fn vmlinux() -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        v.extend((0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()));
        v
    }

    #[test]
    fn gzip_zstd_and_xz_payloads() {
        let v = vmlinux();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&v).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress_kernel(&bzimage(&gz)).unwrap(), v);
        assert_eq!(decompress_kernel(&gz).unwrap(), v, "arm64 Image.gz");
        let zst = zstd::encode_all(&v[..], 3).unwrap();
        assert_eq!(decompress_kernel(&bzimage(&zst)).unwrap(), v);
        let mut xz =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        xz.write_all(&v).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(decompress_kernel(&bzimage(&xz)).unwrap(), v);
    }

    #[test]
    fn lz4_legacy_payload() {
        let v = vmlinux();
        let mut p = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in v.chunks(150_000) {
            let c = lz4_flex::block::compress(chunk);
            p.extend_from_slice(&(c.len() as u32).to_le_bytes());
            p.extend_from_slice(&c);
        }
        p.extend_from_slice(&(v.len() as u32).to_le_bytes());
        assert_eq!(decompress_kernel(&bzimage(&p)).unwrap(), v);
    }

    #[test]
    fn unknown_compression_is_a_clear_error() {
        let e = decompress_kernel(&bzimage(b"BZh91AY&SY"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not compressed with gzip, xz, zstd or lz4"),
            "{e}"
        );
    }
}
