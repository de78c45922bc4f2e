//! CPU time and resident memory of a process, read from `/proc` (Linux).

use std::sync::OnceLock;
use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size, bytes.
    pub hwm_bytes: u64,
}

impl ProcSample {
    /// CPU cores used on average between `self` and the later `after`.
    pub fn cores_until(&self, after: &ProcSample) -> f64 {
        let wall = after.at.duration_since(self.at).as_secs_f64();
        if wall > 0.0 {
            (after.cpu_s - self.cpu_s) / wall
        } else {
            0.0
        }
    }

    pub fn cpu_s_until(&self, after: &ProcSample) -> f64 {
        after.cpu_s - self.cpu_s
    }
}

/// Clock ticks per second for `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime in clock ticks from the text of `/proc/PID/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after
    // the last ')'. Then: state(3) ... utime(14) stime(15).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line such as `VmRSS:   1234 kB` from `/proc/PID/status`, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Reads a process; `None` when it is gone or `/proc` is not there.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        at,
        cpu_s: parse_stat_ticks(&stat)? as f64 / clock_ticks(),
        rss_bytes: parse_status_kb(&status, "VmRSS")?,
        hwm_bytes: parse_status_kb(&status, "VmHWM").unwrap_or(0),
    })
}

/// Busy CPU seconds of the whole machine since boot (every field of the
/// `cpu` line of `/proc/stat` but idle and iowait).
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy_ticks(&stat).map(|t| t as f64 / clock_ticks())
}

/// Busy ticks from the text of `/proc/stat`.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let busy: u64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    Some(busy)
}

/// Reads this process (the load generator).
pub fn sample_self() -> Option<ProcSample> {
    sample(std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "4242 (pat rol) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 123 456 789";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn parses_status_kb() {
        let status = "Name:\tpatrold\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn parses_machine_busy() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(
            parse_machine_busy_ticks(stat),
            Some(100 + 5 + 50 + 3 + 2 + 1)
        );
        assert!(machine_busy_s().is_some());
    }

    #[test]
    fn reads_itself() {
        let s = sample_self().expect("/proc/self");
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_s >= 0.0);
    }
}
