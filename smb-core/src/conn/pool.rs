//! Receive buffers for large frames (READ responses), reused instead of
//! freshly allocated: page faults and the kernel's zero-fill of new pages
//! cost more than the socket copy itself.

use std::sync::{Arc, Mutex};

/// Large frame buffers kept for reuse, in bytes of capacity: the default
/// in-flight window's worth of READ responses (128 MiB), so a full window
/// cycles through the pool instead of the allocator. The pool holds only
/// buffers that were all live at once, so it never raises peak memory.
const POOL_MAX_BYTES: usize = 128 * 1024 * 1024;

/// Receive buffers for large frames, handed back when the last `Bytes` slice
/// of a frame is dropped. Reusing them skips the allocator's fresh pages
/// (page faults and kernel zeroing cost more than the socket copy) and they
/// are never zero-filled: the socket writes into their spare capacity.
#[derive(Debug, Default)]
pub(super) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    /// An empty buffer with capacity of at least `n`.
    pub(super) fn take(&self, n: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        // Best fit, so small frames do not take the big buffers.
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            return free.swap_remove(i);
        }
        drop(free);
        // Round up so frames of slightly different sizes share buffers.
        Vec::with_capacity(n.next_multiple_of(64 * 1024))
    }

    pub(super) fn give(&self, mut v: Vec<u8>) {
        v.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut held: usize = free.iter().map(Vec::capacity).sum();
        // Over the cap, smaller buffers make room for a larger one (which
        // fits any frame they did); the total never exceeds the cap.
        while held + v.capacity() > POOL_MAX_BYTES {
            let smallest = free
                .iter()
                .enumerate()
                .filter(|(_, f)| f.capacity() < v.capacity())
                .min_by_key(|(_, f)| f.capacity())
                .map(|(i, _)| i);
            match smallest {
                Some(i) => held -= free.swap_remove(i).capacity(),
                None => return,
            }
        }
        free.push(v);
    }
}

/// A pooled frame buffer owned by a `Bytes`: returns to the pool on drop.
pub(super) struct Pooled {
    pub(super) buf: Vec<u8>,
    pub(super) pool: Arc<BufPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::super::framing::FrameBuf;
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn pool_best_fit_and_cap() {
        let pool = Arc::new(BufPool::default());
        let small = pool.take(MIB);
        let big = pool.take(8 * MIB);
        assert!(small.capacity() >= MIB && big.capacity() >= 8 * MIB);
        pool.give(big);
        pool.give(small);
        // A 1 MiB frame takes the 1 MiB buffer, not the 8 MiB one.
        assert!(pool.take(MIB).capacity() < 8 * MIB);
        // Fill past the cap with 1 MiB buffers, then return big ones: the
        // total stays within the cap and the big ones are kept.
        let ones: Vec<_> = (0..POOL_MAX_BYTES / MIB + 8)
            .map(|_| Vec::with_capacity(MIB))
            .collect();
        for v in ones {
            pool.give(v);
        }
        for _ in 0..20 {
            pool.give(Vec::with_capacity(8 * MIB));
        }
        let free = pool.free.lock().unwrap();
        let held: usize = free.iter().map(Vec::capacity).sum();
        assert!(held <= POOL_MAX_BYTES, "{held}");
        assert!(free.iter().filter(|v| v.capacity() >= 8 * MIB).count() >= 15);
    }

    #[test]
    fn pooled_bytes_return_their_buffer() {
        let pool = Arc::new(BufPool::default());
        let mut v = pool.take(4 * MIB);
        v.extend_from_slice(&[7u8; 1000]);
        let b = FrameBuf::Large(Pooled {
            buf: v,
            pool: Arc::clone(&pool),
        })
        .freeze();
        let part = b.slice(10..20);
        drop(b);
        assert!(
            pool.free.lock().unwrap().is_empty(),
            "a slice still holds it"
        );
        assert_eq!(&part[..], &[7u8; 10]);
        drop(part);
        let free = pool.free.lock().unwrap();
        assert_eq!(free.len(), 1);
        assert!(free[0].is_empty() && free[0].capacity() >= 4 * MIB);
    }
}
