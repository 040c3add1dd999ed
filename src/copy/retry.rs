//! Retry policy: exponential backoff with jitter, for transient errors only
//! (access denied and other permanent errors fail at once).

use std::time::Duration;

use rand::Rng as _;

/// Longest single wait.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// `--retries` and `--wait`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Wait before the first retry.
    pub wait: Duration,
}

impl RetryPolicy {
    /// Wait before retry number `attempt` (0-based): `wait · 2^attempt`, ±25% jitter, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .wait
            .saturating_mul(1u32 << attempt.min(16))
            .min(MAX_WAIT);
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        base.mul_f64(jitter).min(MAX_WAIT)
    }

    /// Runs `op` until it succeeds, fails permanently, or retries run out.
    /// `transient` decides which errors are retried.
    pub async fn run<T, E, F, Fut>(&self, op: F, transient: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.run_noting(op, transient, |_, _| {}).await
    }

    /// [`Self::run`], calling `noted(attempt, error)` (attempt from 1)
    /// before each retry, so retries leave a trace.
    pub async fn run_noting<T, E, F, Fut>(
        &self,
        mut op: F,
        transient: impl Fn(&E) -> bool,
        noted: impl Fn(u32, &E),
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.retries && transient(&e) => {
                    noted(attempt + 1, &e);
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_with_jitter_and_cap() {
        let p = RetryPolicy {
            retries: 3,
            wait: Duration::from_secs(2),
        };
        for attempt in 0..4 {
            let want = 2.0 * f64::from(1u32 << attempt);
            let got = p.delay(attempt).as_secs_f64();
            assert!(
                got >= want * 0.75 && got <= want * 1.25,
                "attempt {attempt}: {got}"
            );
        }
        assert!(p.delay(30) <= MAX_WAIT);
    }

    #[test]
    fn retries_only_transient_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let p = RetryPolicy {
            retries: 3,
            wait: Duration::from_millis(1),
        };
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = rt.block_on(p.run(
            || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err("busy") }
            },
            |e| *e == "busy",
        ));
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        calls.store(0, Ordering::Relaxed);
        let r: Result<(), &str> = rt.block_on(p.run(
            || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err("denied") }
            },
            |e| *e == "busy",
        ));
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            1,
            "permanent errors are not retried"
        );
        calls.store(0, Ordering::Relaxed);
        let r = rt.block_on(p.run(
            || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    if n < 2 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                }
            },
            |e| *e == "busy",
        ));
        assert_eq!(r, Ok(2));
    }
}
