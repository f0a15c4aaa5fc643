//! One writer's output as another's input, in memory: [`piped`] runs a
//! producer (something that writes an image) on a thread and hands the
//! consumer (something that reads one) a reader over what it writes.
//!
//! The disk containers (`qcow2-*`, `vmdk`, `gcp`, `dynamic-vhd`) are made
//! from a BIOS or EFI image that only they use; writing that image to a
//! scratch file for them to read back cost a write and a read of the whole
//! image (55 MB or more) through the page cache, most of the difference
//! between `iso-bios` and `vmdk`. Through the pipe the image is never
//! stored: it moves in chunks through a bounded queue, so at most a few
//! MiB of it are in memory, and making it overlaps converting it.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The bytes a chunk holds: large enough that the queue costs little per
/// byte, small enough that the consumer starts early.
const CHUNK: usize = 1 << 20;
/// Chunks written and not yet read, at most: enough to keep both sides
/// busy when one is briefly slower.
const DEPTH: usize = 4;

/// Runs `produce` on a thread, writing into a pipe, and `consume` on this
/// one, reading from it; returns what `consume` returns. The reader ends
/// (reads 0) when the producer has returned. An error of either side is
/// the result: the producer's when it failed on its own (the consumer then
/// only saw the pipe end early), the consumer's when it stopped reading
/// (the producer then only saw nobody read). A producer writing more than
/// the consumer reads is an error too, as that is a length mismatch.
pub(crate) fn piped<T>(
    produce: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send,
    consume: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> io::Result<T> {
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(DEPTH);
    // Chunks go back for reuse, so nothing is allocated (and page-faulted
    // in) per chunk; at most DEPTH + 2 are in circulation.
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut w = PipeWriter {
                full: full_tx,
                empty: empty_rx,
                buf: Vec::with_capacity(CHUNK),
                reader_gone: false,
            };
            let r = produce(&mut w).and_then(|()| w.flush());
            (r, w.reader_gone)
        });
        let mut r = PipeReader {
            full: full_rx,
            empty: empty_tx,
            cur: Vec::new(),
            pos: 0,
        };
        let consumed = consume(&mut r);
        // All the producer writes must be read: a byte more is a length
        // mismatch. (This waits for the producer to end or write on.)
        let longer = consumed.is_ok() && !matches!(r.read(&mut [0u8]), Ok(0));
        // A producer still writing now gets an error instead of waiting
        // for a reader that is gone.
        drop(r);
        let (produced, reader_gone) = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (consumed, produced) {
            (Ok(_), _) if longer => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the image is longer than its reader expected",
            )),
            (Ok(t), Ok(())) => Ok(t),
            (Err(e), _) if reader_gone => Err(e),
            (_, Err(e)) => Err(e),
            (Err(e), Ok(())) => Err(e),
        }
    })
}

/// The producer's end: fills a chunk, queues it when full (or flushed).
struct PipeWriter {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// A send failed: the reader was dropped.
    reader_gone: bool,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(CHUNK),
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.full.send(full).map_err(|_| {
            self.reader_gone = true;
            io::Error::new(io::ErrorKind::BrokenPipe, "the image's reader stopped")
        })
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Queues what is buffered (the last, partial chunk).
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

/// The consumer's end.
struct PipeReader {
    full: Receiver<Vec<u8>>,
    empty: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.cur.len() {
            match self.full.recv() {
                Ok(next) => {
                    let done = std::mem::replace(&mut self.cur, next);
                    self.pos = 0;
                    // When the producer is gone or has enough spares, the
                    // chunk is simply freed.
                    let _ = self.empty.try_send(done);
                }
                // The producer returned: the end.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn the_consumer_reads_what_the_producer_writes() {
        for n in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            5 * CHUNK + 123,
            20 * CHUNK,
        ] {
            let want = data(n);
            let got = piped(
                |w| {
                    // Odd-sized writes, across chunk boundaries.
                    for part in want.chunks(100_003) {
                        w.write_all(part)?;
                    }
                    Ok(())
                },
                |r| {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v)?;
                    Ok(v)
                },
            )
            .unwrap();
            assert!(got == want, "{n} bytes");
        }
    }

    #[test]
    fn the_producers_error_wins_over_the_early_end() {
        let e = piped(
            |w| {
                w.write_all(&data(3 * CHUNK))?;
                Err(io::Error::other("no initrd"))
            },
            |r| {
                let mut buf = vec![0u8; 10 * CHUNK];
                r.read_exact(&mut buf)
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "no initrd");
    }

    #[test]
    fn the_consumers_error_wins_over_the_broken_pipe() {
        let e = piped(
            |w| {
                for _ in 0..100 {
                    w.write_all(&data(CHUNK))?;
                }
                Ok(())
            },
            |r| {
                let mut buf = vec![0u8; CHUNK];
                r.read_exact(&mut buf)?;
                Err::<(), _>(io::Error::other("disk full"))
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn writing_more_than_is_read_is_an_error() {
        for n in [2 * CHUNK + 10, 30 * CHUNK] {
            let e = piped(
                |w| w.write_all(&data(n)),
                |r| {
                    let mut buf = vec![0u8; 2 * CHUNK];
                    r.read_exact(&mut buf)
                },
            )
            .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{n} bytes");
        }
    }
}
