//! Deflate for the containers that compress block by block (VMDK's
//! grains, the GCE tarball's gzip): whether a block is worth compressing,
//! independent deflate blocks that concatenate into one stream, zlib
//! streams, stored blocks and Adler-32.

use std::io;

/// Whether a block is worth deflating: the order-0 entropy of four evenly
/// spread 4 KiB samples is under 6.5 bits a byte, which means Huffman
/// coding alone would save over 18%.
///
/// Most of a LinuxKit disk is already compressed (the initrd, the kernel's
/// payload): about 8 bits a byte, which deflate cannot shrink, yet
/// deflating it costs as much as compressing text (zlib's fastest level
/// even makes it larger). What does compress well (the kernel's setup
/// code, the boot loader, file system metadata, zeros) is far under the
/// threshold. A byte histogram runs at memory speed, several times faster
/// than deflating a sample to see whether it shrinks. The threshold trades
/// size for time: on `examples/linuxkit.yml`, 6.5 bits deflates 4% of the
/// content and saves 1.5 MB, 7 bits deflates 8% (twice the time) and
/// saves 2 MB, deflating everything saves 2.7 MB at ten times the cost.
/// What the histogram cannot see is redundancy in high-entropy data (the
/// same random block twice); such blocks are stored, which costs size,
/// never correctness. The decision depends only on the bytes, so the
/// output is reproducible.
pub(crate) fn worth_deflating(b: &[u8]) -> bool {
    const SAMPLE: usize = 4096;
    const SAMPLES: usize = 4;
    // Bits per byte.
    const THRESHOLD: f64 = 6.5;
    if b.len() <= SAMPLE * SAMPLES {
        return entropy(&histogram(b), b.len()) < THRESHOLD;
    }
    let step = (b.len() - SAMPLE) / (SAMPLES - 1);
    let mut h = [0u32; 256];
    for i in 0..SAMPLES {
        let at = i * step;
        add_histogram(&mut h, &b[at..at + SAMPLE]);
    }
    entropy(&h, SAMPLE * SAMPLES) < THRESHOLD
}

fn histogram(b: &[u8]) -> [u32; 256] {
    let mut h = [0u32; 256];
    add_histogram(&mut h, b);
    h
}

/// Counts the bytes of `b` into `h`: four tables, summed, so that runs of
/// one byte value do not serialise on one counter.
fn add_histogram(h: &mut [u32; 256], b: &[u8]) {
    let mut t = [[0u32; 256]; 4];
    let mut quads = b.chunks_exact(4);
    for q in &mut quads {
        t[0][q[0] as usize] += 1;
        t[1][q[1] as usize] += 1;
        t[2][q[2] as usize] += 1;
        t[3][q[3] as usize] += 1;
    }
    for &x in quads.remainder() {
        t[0][x as usize] += 1;
    }
    for (i, c) in h.iter_mut().enumerate() {
        *c += t[0][i] + t[1][i] + t[2][i] + t[3][i];
    }
}

/// Shannon entropy of a histogram of `n` bytes, in bits per byte.
fn entropy(h: &[u32; 256], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    h.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Appends `data` as deflate blocks that end on a byte boundary and are
/// not final: deflated at `level` by this thread's compressor (reset, as
/// blocks refer back only to their own output) when
/// [`worth_deflating`], otherwise stored blocks. The result can be
/// concatenated with other such blocks into one stream.
pub(crate) fn deflate_blocks(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    if !worth_deflating(data) {
        stored_blocks(data, false, out);
        return Ok(());
    }
    thread_local! {
        static RAW: std::cell::RefCell<Vec<(u32, flate2::Compress)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    RAW.with(|c| {
        let mut c = c.borrow_mut();
        let i = match c.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                c.push((
                    level,
                    flate2::Compress::new(flate2::Compression::new(level), false),
                ));
                c.len() - 1
            }
        };
        let comp = &mut c[i].1;
        comp.reset();
        compress_all(comp, data, flate2::FlushCompress::Sync, out)
    })
}

/// Appends `data` as one zlib stream (RFC 1950): deflated at zlib's
/// default level when [`worth_deflating`], otherwise stored blocks, which
/// every inflater reads and which cost only a copy and the checksum.
pub(crate) fn zlib_stream(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    if !worth_deflating(data) {
        // Deflate, 32 KiB window; no dictionary, "fastest" (FCHECK makes
        // the 16-bit header a multiple of 31).
        out.extend_from_slice(&[0x78, 0x01]);
        stored_blocks(data, true, out);
        out.extend_from_slice(&adler32(data).to_be_bytes());
        return Ok(());
    }
    thread_local! {
        static ZLIB: std::cell::RefCell<Option<flate2::Compress>> =
            const { std::cell::RefCell::new(None) };
    }
    ZLIB.with(|c| {
        let mut c = c.borrow_mut();
        let comp =
            c.get_or_insert_with(|| flate2::Compress::new(flate2::Compression::default(), true));
        comp.reset();
        compress_all(comp, data, flate2::FlushCompress::Finish, out)
    })
}

/// Feeds all of `input` to `comp` with `flush`, appending its output.
fn compress_all(
    comp: &mut flate2::Compress,
    input: &[u8],
    flush: flate2::FlushCompress,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let start = comp.total_in();
    loop {
        out.reserve(input.len() / 2 + 4096);
        let done = (comp.total_in() - start) as usize;
        let before = out.len();
        let status = comp
            .compress_vec(&input[done..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = (comp.total_in() - start) as usize == input.len();
        match status {
            flate2::Status::StreamEnd => return Ok(()),
            // Everything is in and the flush had room to complete.
            _ if all_in
                && out.len() < out.capacity()
                && !matches!(flush, flate2::FlushCompress::Finish) =>
            {
                return Ok(());
            }
            flate2::Status::BufError if out.len() == before && all_in => return Ok(()),
            _ => {}
        }
    }
}

/// Appends `data` as stored deflate blocks (at most 65535 bytes each),
/// starting on a byte boundary; the last is final when `last`.
pub(crate) fn stored_blocks(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / 65535 * 5 + 5);
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        // An empty stored block, to end the stream when asked.
        if last {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        return;
    }
    while let Some(c) = chunks.next() {
        let fin = last && chunks.peek().is_none();
        let n = c.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
}

/// Adler-32 (RFC 1950), written so that the compiler vectorises it: per
/// 32-byte lane, the byte sums and the sums of those sums, combined per
/// 4 KiB (which keeps the lanes within 32 bits).
pub(crate) fn adler32(data: &[u8]) -> u32 {
    const MOD: u64 = 65521;
    const L: usize = 32;
    let (mut a, mut b) = (1u64, 0u64);
    for chunk in data.chunks(4096) {
        let blocks = chunk.chunks_exact(L);
        let rest = blocks.remainder();
        let m = (chunk.len() / L) as u64;
        let mut va = [0u32; L];
        let mut vt = [0u32; L];
        for block in blocks {
            for ((a, t), &x) in va.iter_mut().zip(vt.iter_mut()).zip(block) {
                *a += u32::from(x);
                *t += *a;
            }
        }
        // b gains n·a for the whole chunk, then each byte times the
        // number of bytes from it to the chunk's end (itself included).
        let n = m * L as u64;
        let sum_a: u64 = va.iter().map(|&v| u64::from(v)).sum();
        let sum_t: u64 = vt.iter().map(|&v| u64::from(v)).sum();
        let sum_ka: u64 = va
            .iter()
            .enumerate()
            .map(|(k, &v)| k as u64 * u64::from(v))
            .sum();
        b = (b + n * a + L as u64 * sum_t - sum_ka) % MOD;
        a = (a + sum_a) % MOD;
        for &x in rest {
            a += u64::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    ((b << 16) | a) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_data_is_told_from_text() {
        let text: Vec<u8> = (0..65536u32)
            .map(|i| b"linuxkit "[(i % 9) as usize])
            .collect();
        assert!(worth_deflating(&text));
        assert!(worth_deflating(&[0u8; 65536]));
        assert!(worth_deflating(&[0u8; 100]));
        // Pseudo-random bytes, and the same compressed: not worth it.
        let noise = noise(200_000);
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &noise).unwrap();
        let gz = z.finish().unwrap();
        assert!(!worth_deflating(&gz[..65536]));
        assert!(!worth_deflating(&noise[..1 << 17]));
        assert!(!worth_deflating(&noise[..5000]));
        // Half zeros, half noise: deflate halves it.
        let mut half = noise[..65536].to_vec();
        half[..32768].fill(0);
        assert!(worth_deflating(&half));
    }

    /// `n` pseudo-random bytes (xorshift64): incompressible test data.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn adler32_is_zlibs() {
        let mut x = 7u32;
        let data: Vec<u8> = (0..100_000)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 { 0xff } else { (x >> 16) as u8 }
            })
            .collect();
        for n in [0, 1, 31, 32, 33, 4095, 4096, 4097, 5552, 65536, 100_000] {
            let z = {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, &data[..n]).unwrap();
                e.finish().unwrap()
            };
            let want = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
            assert_eq!(adler32(&data[..n]), want, "{n} bytes");
        }
        assert_eq!(adler32(&[0xff; 1 << 20]), {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &[0xff; 1 << 20]).unwrap();
            let z = e.finish().unwrap();
            u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap())
        });
    }

    #[test]
    fn zlib_streams_and_deflate_blocks_inflate_back() {
        use std::io::Read;
        let noise = noise(150_000);
        let text: Vec<u8> = (0..70_000u32)
            .map(|i| b"linuxkit "[(i % 9) as usize])
            .collect();
        for data in [
            &noise[..],
            &text[..],
            &noise[..65536],
            &[][..],
            &noise[..10],
        ] {
            let mut z = Vec::new();
            zlib_stream(data, &mut z).unwrap();
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{} bytes", data.len());
        }
        // Raw blocks of several kinds, one stream once ended.
        let mut d = Vec::new();
        for part in [&noise[..70_000], &text[..], &noise[..3], &text[..100]] {
            deflate_blocks(part, 6, &mut d).unwrap();
        }
        stored_blocks(&[], true, &mut d);
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&d[..])
            .read_to_end(&mut back)
            .unwrap();
        let want: Vec<u8> = [&noise[..70_000], &text[..], &noise[..3], &text[..100]].concat();
        assert!(back == want);
    }
}
