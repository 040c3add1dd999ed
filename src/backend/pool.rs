//! A small fixed pool of threads for local file-system calls.
//!
//! Tokio's blocking pool grows a thread per concurrent call and wakes an idle
//! one (a futex round trip) for every call; with 32 jobs each doing several
//! short calls per small file that hand-off cost more CPU than the calls
//! themselves (perf: ~35% of a 10,000-file download in futex wake/wait and
//! task switches). Here a few long-lived threads drain one queue: under load a
//! thread that finishes a call takes the next without sleeping, and the
//! number of concurrent writers into one file stays small (tmpfs serialises
//! them on the inode lock anyway).

use std::io;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::oneshot;

/// Threads in the pool: enough to overlap a few slow disk calls, few enough
/// that they rarely sleep on a busy 2-core machine.
const THREADS: usize = 4;

type Call = Box<dyn FnOnce() + Send>;

/// The process-wide pool, started on first use.
fn pool() -> &'static Sender<Call> {
    static POOL: OnceLock<Sender<Call>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Call>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("smbcp-io-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::warn!("cannot start I/O thread: {e}");
            }
        }
        tx
    })
}

fn worker(rx: &Mutex<Receiver<Call>>) {
    loop {
        // The lock is held only while waiting for the next call.
        let call = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match call {
            // A panicking call drops its reply (the caller sees an error);
            // the thread lives on.
            Ok(f) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            }
            Err(_) => return,
        }
    }
}

/// Runs `f` on the pool and waits for its result without blocking the runtime.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = oneshot::channel();
    let call: Call = Box::new(move || {
        let _ = tx.send(f());
    });
    if pool().send(call).is_err() {
        return Err(io::Error::other("I/O pool stopped"));
    }
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("I/O call panicked")))
}

/// Block buffers kept for reuse: as many as the copy engine's window holds
/// in 8 MiB blocks when the data passes through memory (at most 64 MiB).
const SPARE_BUFFERS: usize = 8;
/// Buffers smaller than this are not worth keeping.
const MIN_SPARE: usize = 1 << 20;

/// Returned blocks. smb-core's writer task may still hold a WRITE's payload
/// for a moment after the reply arrived, so a block is kept as `Bytes` and
/// taken back only once it is unique.
fn spares() -> &'static Mutex<Vec<Bytes>> {
    static SPARES: OnceLock<Mutex<Vec<Bytes>>> = OnceLock::new();
    SPARES.get_or_init(|| Mutex::new(Vec::new()))
}

/// A buffer of `len` bytes for a positional read: a recycled one when there
/// is one (no zeroing, no page faults: a fresh 8 MiB `vec!` per block cost
/// 2,048 page faults and a memset, and glibc kept freed 8 MiB blocks in
/// per-thread arenas — 254-286 MiB peak RSS on a 2 GiB upload).
pub(crate) fn take_buf(len: usize) -> Vec<u8> {
    let mut buf = if len >= MIN_SPARE {
        reuse().unwrap_or_default()
    } else {
        Vec::new()
    };
    // Only bytes beyond the buffer's previous length are zeroed.
    buf.resize(len, 0);
    buf
}

fn reuse() -> Option<Vec<u8>> {
    let mut s = spares().lock().ok()?;
    let i = s.iter().position(Bytes::is_unique)?;
    let b = s.swap_remove(i);
    drop(s);
    b.try_into_mut().ok().map(Vec::from)
}

/// Returns a block's buffer for reuse once no one else holds it.
pub(crate) fn give_buf(data: Bytes) {
    if data.len() < MIN_SPARE {
        return;
    }
    if let Ok(mut s) = spares().lock() {
        if s.len() >= SPARE_BUFFERS {
            // Still shared ones are the likeliest to stay so: drop one of those.
            match s.iter().position(|b| !b.is_unique()) {
                Some(i) => {
                    s.swap_remove(i);
                }
                None => return,
            }
        }
        s.push(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_calls_and_returns_results() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let calls = (0..64u32).map(|i| run(move || Ok(i * 2)));
            let got: Vec<u32> = futures_join(calls).await;
            assert_eq!(got, (0..64).map(|i| i * 2).collect::<Vec<_>>());
            let e = run(|| Err::<(), _>(io::Error::other("x"))).await;
            assert_eq!(e.unwrap_err().to_string(), "x");
        });
    }

    async fn futures_join<F: std::future::Future<Output = io::Result<u32>>>(
        it: impl Iterator<Item = F>,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        for f in it {
            out.push(f.await.unwrap());
        }
        out
    }
}
