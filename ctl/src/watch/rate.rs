//! Changes per second for the header, measured over rolling windows.

/// Events-per-second is measured over windows of at least this long.
const RATE_WINDOW_MS: i64 = 2000;

/// Counts changes and turns the count into a rate once per window.
#[derive(Debug, Default)]
pub(super) struct RateMeter {
    window_start_ms: i64,
    count: u64,
    per_sec: f64,
}

impl RateMeter {
    /// Closes the window if it is long enough; the first call opens one.
    pub(super) fn roll(&mut self, now_ms: i64) {
        if self.window_start_ms == 0 {
            self.window_start_ms = now_ms;
        }
        let elapsed = now_ms - self.window_start_ms;
        if elapsed >= RATE_WINDOW_MS {
            self.per_sec = self.count as f64 * 1000.0 / elapsed as f64;
            self.count = 0;
            self.window_start_ms = now_ms;
        }
    }

    /// One change at `now_ms`.
    pub(super) fn count(&mut self, now_ms: i64) {
        self.roll(now_ms);
        self.count += 1;
    }

    /// The rate of the last closed window (0 until one closes).
    pub(super) fn per_sec(&self) -> f64 {
        self.per_sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_the_last_closed_window() {
        let mut m = RateMeter::default();
        for i in 0..10 {
            m.count(1_000 + i * 100);
        }
        m.roll(2_500);
        assert_eq!(m.per_sec(), 0.0, "the window is not 2 s long yet");
        m.roll(3_000);
        assert_eq!(m.per_sec(), 5.0);
        m.roll(5_000);
        assert_eq!(m.per_sec(), 0.0, "nothing in the next window");
    }
}
