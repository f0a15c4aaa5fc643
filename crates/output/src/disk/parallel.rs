//! Compressing on every core while the disk's I/O goes on: a pipeline of
//! read, compress and write, and an ordered parallel map.

use std::io;

/// Reads, compresses and writes at once: `read` fills a buffer with the
/// next batch (false when there is none), `work` compresses a batch (on
/// all cores, with [`par_map`]) on a worker thread, and `write` gets the
/// results in order, on the calling thread. While the worker compresses
/// one batch, the calling thread writes the one before and reads the one
/// after, so the disk's I/O (a read of the raw image and a write of the
/// container, both serial) overlaps the compression instead of adding to
/// it. Two buffers circulate, so nothing is allocated per batch.
pub(crate) fn pipeline<O: Send>(
    buf_len: usize,
    mut read: impl FnMut(&mut Vec<u8>) -> io::Result<bool>,
    work: impl Fn(&[u8]) -> O + Sync,
    mut write: impl FnMut(O) -> io::Result<()>,
) -> io::Result<()> {
    use std::sync::mpsc::sync_channel;
    std::thread::scope(|s| {
        let (to_worker, batches) = sync_channel::<Vec<u8>>(1);
        let (to_writer, done) = sync_channel::<(Vec<u8>, O)>(1);
        let work = &work;
        s.spawn(move || {
            for b in batches {
                let o = work(&b);
                if to_writer.send((b, o)).is_err() {
                    return;
                }
            }
        });
        let gone = || io::Error::other("the compressing thread stopped");
        let mut free = vec![Vec::with_capacity(buf_len), Vec::with_capacity(buf_len)];
        let mut in_flight = 0;
        loop {
            let mut b = match free.pop() {
                Some(b) => b,
                None => {
                    let (b, o) = done.recv().map_err(|_| gone())?;
                    in_flight -= 1;
                    write(o)?;
                    b
                }
            };
            b.clear();
            if !read(&mut b)? {
                break;
            }
            to_worker.send(b).map_err(|_| gone())?;
            in_flight += 1;
        }
        drop(to_worker);
        for _ in 0..in_flight {
            let (_, o) = done.recv().map_err(|_| gone())?;
            write(o)?;
        }
        Ok(())
    })
}

/// `f` over `items` on all cores, results in order. Used for the
/// compressing formats, whose blocks are compressed independently of one
/// another (so the output does not depend on the number of cores).
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        return;
                    }
                    let r = f(&items[i]);
                    *results[i].lock().expect("no panics while held") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("no panics while held")
                .expect("every item is mapped")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_keeps_the_order_and_stops_on_errors() {
        let mut i = 0u8;
        let mut got = Vec::new();
        pipeline(
            4,
            |b| {
                i += 1;
                b.extend_from_slice(&[i; 3]);
                Ok(i <= 50)
            },
            |b: &[u8]| b.iter().map(|&x| u32::from(x)).sum::<u32>(),
            |o| {
                got.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, (1..=50).map(|x| 3 * x).collect::<Vec<u32>>());
        let mut written = 0;
        let e = pipeline(
            4,
            |_| Ok(true),
            |_: &[u8]| (),
            |()| {
                written += 1;
                if written > 10 {
                    Err(io::Error::other("full"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(e.unwrap_err().to_string(), "full");
        let e = pipeline(
            4,
            |_| Err(io::Error::other("short")),
            |_: &[u8]| (),
            |()| Ok(()),
        );
        assert_eq!(e.unwrap_err().to_string(), "short");
    }
}
