//! `--bwlimit`: one pacing clock shared by every worker. Each block reserves
//! its transmission slot (`bytes / rate`) and sleeps until that slot ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A shared rate limiter in bytes per second.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `bytes_per_sec`.
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            rate: bytes_per_sec as f64,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Reserves `n` bytes and returns how long to wait: until the end of their
    /// slot, so even one block is paced.
    pub fn reserve(&self, n: u64, now: Instant) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Idle time is not banked beyond the present: no bursts after a pause.
        let start = (*next).max(now);
        *next = start + Duration::from_secs_f64(n as f64 / self.rate);
        *next - now
    }

    /// Waits for the slot of `n` bytes.
    pub async fn acquire(&self, n: u64) {
        let wait = self.reserve(n, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_paced_by_rate() {
        let l = RateLimiter::new(1000);
        let t0 = Instant::now();
        assert_eq!(l.reserve(500, t0), Duration::from_millis(500));
        assert_eq!(l.reserve(500, t0), Duration::from_secs(1));
        assert_eq!(l.reserve(1000, t0), Duration::from_secs(2));
        // After an idle pause no burst is banked: each slot is paced from now.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.reserve(1000, later), Duration::from_secs(1));
        assert_eq!(l.reserve(1, later), Duration::from_millis(1001));
    }
}
