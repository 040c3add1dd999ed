//! The in-flight window: how many bytes the engine may have read and not yet
//! written, over all files. It bounds memory, and it is what keeps the wire
//! full: too small and the link idles for a round trip per window; too large
//! and, on a fast local link, every byte is cold in the CPU caches by the
//! time the other side touches it.
//!
//! It starts at the bandwidth-delay product of the measured round trip
//! ([`Window::initial`]) and grows by half while throughput keeps rising:
//! after each interval (at least 150 ms and two windows' worth of
//! bytes) the rate is compared with the previous interval's; when two
//! intervals in a row rise by less than 5 %, the window settles at the
//! previous size, the last one that paid. Measured on loopback Samba (2 GiB
//! upload through memory, 4 rounds interleaved): a fixed 16 MiB window gave
//! 1934-2210 MB/s at 0.41-0.45
//! client CPU-s/GB, 64 MiB 1727-1881 MB/s at 0.52-0.54; at +5 ms one way a
//! 2 GiB download needs 64-128 MiB (16 MiB: 389-395 MB/s, 128 MiB: 553-588).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Unit of the window.
const UNIT: u64 = 64 * 1024;
/// Smallest window: two 8 MiB blocks, so one can be read while the other is
/// written.
pub const MIN_BYTES: u64 = 16 << 20;
/// Shortest measuring interval.
const INTERVAL: Duration = Duration::from_millis(150);
/// Throughput must rise by this fraction for the window to keep growing.
const GAIN: f64 = 0.05;
/// Rate assumed for the first window: above what one connection reaches
/// here, so the window starts no smaller than the link needs.
const ASSUMED_RATE: f64 = 4e9;

/// The adaptive byte window (see the module docs).
#[derive(Debug)]
pub struct Window {
    sem: Arc<Semaphore>,
    ctl: Mutex<Ctl>,
    max_units: u32,
}

/// What the window did, for the summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowReport {
    /// Bytes at the start.
    pub start_bytes: u64,
    /// Bytes at the end.
    pub final_bytes: u64,
    /// Largest size tried.
    pub peak_bytes: u64,
    /// True once growth stopped paying (or hit the ceiling).
    pub settled: bool,
}

#[derive(Debug)]
struct Ctl {
    units: u32,
    start_units: u32,
    prev_units: u32,
    peak_units: u32,
    interval_start: Option<Instant>,
    interval_bytes: u64,
    last_rate: f64,
    /// The current size was measured once without paying.
    strike: bool,
    settled: bool,
}

impl Ctl {
    fn new(units: u32) -> Self {
        Self {
            units,
            start_units: units,
            prev_units: units,
            peak_units: units,
            interval_start: None,
            interval_bytes: 0,
            last_rate: 0.0,
            strike: false,
            settled: false,
        }
    }

    /// Records `bytes` done at `now`; returns the change of the window in
    /// units (positive: grow, negative: shrink).
    fn record(&mut self, bytes: u64, now: Instant, max_units: u32) -> i64 {
        if self.settled {
            return 0;
        }
        let Some(start) = self.interval_start else {
            // The first completion opens the first interval: connection
            // setup and the first round trip are not throughput.
            self.interval_start = Some(now);
            return 0;
        };
        self.interval_bytes += bytes;
        let elapsed = now.saturating_duration_since(start);
        if elapsed < INTERVAL || self.interval_bytes < 2 * u64::from(self.units) * UNIT {
            return 0;
        }
        let rate = self.interval_bytes as f64 / elapsed.as_secs_f64();
        self.interval_start = Some(now);
        self.interval_bytes = 0;
        if self.last_rate > 0.0 && rate < self.last_rate * (1.0 + GAIN) {
            // One slow interval can be noise (another process, the
            // host): measure this size once more before judging it.
            if !self.strike {
                self.strike = true;
                return 0;
            }
            // The last growth did not pay: back to the size before it.
            self.settled = true;
            let back = i64::from(self.prev_units) - i64::from(self.units);
            self.units = self.prev_units;
            return back;
        }
        self.strike = false;
        self.last_rate = rate;
        if self.units >= max_units {
            self.settled = true;
            return 0;
        }
        let next = (self.units + self.units / 2).min(max_units);
        self.prev_units = self.units;
        self.units = next;
        self.peak_units = self.peak_units.max(next);
        i64::from(next - self.prev_units)
    }
}

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl Window {
    /// The starting size for a round trip of `rtt`: the bandwidth-delay
    /// product at 4 GB/s on top of [`MIN_BYTES`] (the blocks
    /// being streamed and requested while the first bytes of the next are
    /// on their way), at most `max_bytes`.
    pub fn initial(rtt: Duration, max_bytes: u64) -> u64 {
        (MIN_BYTES + (rtt.as_secs_f64() * ASSUMED_RATE) as u64).min(max_bytes.max(MIN_BYTES))
    }

    /// A window of `start_bytes` that may grow up to `max_bytes`.
    pub fn new(start_bytes: u64, max_bytes: u64) -> Self {
        let max_units = units(max_bytes.max(MIN_BYTES));
        let start = units(start_bytes).clamp(units(MIN_BYTES), max_units);
        Self {
            sem: Arc::new(Semaphore::new(start as usize)),
            ctl: Mutex::new(Ctl::new(start)),
            max_units,
        }
    }

    /// Waits for room for `len` bytes; the room is given back when the
    /// permit drops. A request never needs more than the smallest window,
    /// so it cannot wait forever after a shrink.
    pub async fn acquire(&self, len: u64) -> SemaphorePermit<'_> {
        let n = units(len).clamp(1, units(MIN_BYTES));
        self.sem
            .acquire_many(n)
            .await
            .expect("the window semaphore is never closed")
    }

    /// Records `bytes` copied just now, and resizes the window when an
    /// interval ends.
    pub fn done(&self, bytes: u64) {
        let delta = self.ctl.lock().unwrap_or_else(|e| e.into_inner()).record(
            bytes,
            Instant::now(),
            self.max_units,
        );
        self.resize(delta);
    }

    fn resize(&self, delta: i64) {
        if delta > 0 {
            self.sem.add_permits(delta as usize);
        } else if delta < 0 {
            let want = delta.unsigned_abs() as usize;
            let gone = self.sem.forget_permits(want);
            if gone < want {
                // The rest is in use: take it as it comes back.
                let sem = self.sem.clone();
                let rest = (want - gone) as u32;
                tokio::spawn(async move {
                    if let Ok(p) = sem.acquire_many(rest).await {
                        p.forget();
                    }
                });
            }
        }
    }

    /// Where the window started, ended and peaked.
    pub fn report(&self) -> WindowReport {
        let c = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        WindowReport {
            start_bytes: u64::from(c.start_units) * UNIT,
            final_bytes: u64::from(c.units) * UNIT,
            peak_bytes: u64::from(c.peak_units) * UNIT,
            settled: c.settled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Feeds `ctl` one interval at `rate` bytes/s, in 8 MiB completions;
    /// returns the window change at its end.
    fn interval(ctl: &mut Ctl, t: &mut Instant, rate: f64, max: u32) -> i64 {
        loop {
            *t += Duration::from_secs_f64((8 * MIB) as f64 / rate);
            let delta = ctl.record(8 * MIB, *t, max);
            if ctl.interval_bytes == 0 || ctl.settled {
                return delta;
            }
        }
    }

    #[test]
    fn grows_while_throughput_rises_then_settles_on_the_last_size_that_paid() {
        let max = units(256 * MIB);
        let mut ctl = Ctl::new(units(16 * MIB));
        let mut t = Instant::now();
        assert_eq!(
            ctl.record(8 * MIB, t, max),
            0,
            "the first completion only starts the clock"
        );
        // 16 MiB: the first interval always grows.
        assert_eq!(
            interval(&mut ctl, &mut t, 500e6, max),
            i64::from(units(8 * MIB))
        );
        assert_eq!(ctl.units, units(24 * MIB));
        // 24 MiB pays (+40%): grow to 36.
        assert_eq!(
            interval(&mut ctl, &mut t, 700e6, max),
            i64::from(units(12 * MIB))
        );
        // 36 MiB gives only +2%, twice: back to 24 and stay.
        assert_eq!(interval(&mut ctl, &mut t, 714e6, max), 0);
        assert!(!ctl.settled, "one slow interval is not enough");
        assert_eq!(
            interval(&mut ctl, &mut t, 690e6, max),
            -i64::from(units(12 * MIB))
        );
        assert!(ctl.settled);
        assert_eq!(ctl.units, units(24 * MIB));
        assert_eq!(ctl.peak_units, units(36 * MIB));
        t += Duration::from_secs(1);
        assert_eq!(ctl.record(800 * MIB, t, max), 0, "a settled window stays");
    }

    #[test]
    fn stops_at_the_ceiling() {
        let max = units(40 * MIB);
        let mut ctl = Ctl::new(units(16 * MIB));
        let mut t = Instant::now();
        ctl.record(MIB, t, max);
        let mut rate = 100e6;
        for _ in 0..10 {
            rate *= 2.0;
            interval(&mut ctl, &mut t, rate, max);
        }
        assert_eq!(ctl.units, max);
        assert!(ctl.settled);
    }

    #[test]
    fn short_or_thin_intervals_decide_nothing() {
        let max = units(256 * MIB);
        let mut ctl = Ctl::new(units(16 * MIB));
        let t = Instant::now();
        ctl.record(MIB, t, max);
        // Lots of bytes, but under 150 ms.
        assert_eq!(
            ctl.record(200 * MIB, t + Duration::from_millis(100), max),
            0
        );
        let mut ctl = Ctl::new(units(16 * MIB));
        ctl.record(MIB, t, max);
        // A long interval with less than two windows of bytes.
        assert_eq!(ctl.record(MIB, t + Duration::from_secs(5), max), 0);
    }

    #[test]
    fn initial_size_follows_the_round_trip() {
        let max = 128 * MIB;
        assert_eq!(Window::initial(Duration::ZERO, max), MIN_BYTES);
        assert_eq!(
            Window::initial(Duration::from_micros(80), max),
            MIN_BYTES + 320_000
        );
        // 10 ms at 4 GB/s = 40 MB.
        assert_eq!(
            Window::initial(Duration::from_millis(10), max),
            MIN_BYTES + 40_000_000
        );
        assert_eq!(Window::initial(Duration::from_secs(1), max), max);
    }

    #[tokio::test]
    async fn shrinking_takes_back_permits_in_use_as_they_return() {
        let w = Window::new(32 * MIB, 64 * MIB);
        let held = w.acquire(16 * MIB).await;
        let held2 = w.acquire(16 * MIB).await;
        assert_eq!(w.sem.available_permits(), 0);
        w.resize(-i64::from(units(16 * MIB)));
        drop(held);
        drop(held2);
        for _ in 0..100 {
            if w.sem.available_permits() == units(16 * MIB) as usize {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(w.sem.available_permits(), units(16 * MIB) as usize);
        w.resize(i64::from(units(8 * MIB)));
        assert_eq!(w.sem.available_permits(), units(24 * MIB) as usize);
        // A request larger than the smallest window still fits.
        let _p = w.acquire(1 << 40).await;
    }
}
