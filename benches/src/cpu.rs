//! Where the CPU went during a measured phase: the server processes named on the command line,
//! this client, and the whole machine, read from /proc before and after the phase.
//!
//! Model: on a machine whose cores the client and every server share, throughput is often set by
//! CPU, not by any one server's design. Two targets compared in one run then differ by how much
//! CPU each spends per byte (or per operation), and the machine's busy fraction says whether the
//! cores were saturated at all. A [`CpuProbe`] snapshot is cheap (a few /proc reads), so it is
//! taken around the timed phase only, not around warm-up.
//!
//! Units: process times are utime + stime of all threads (fields 14 and 15 of /proc/PID/stat) in
//! clock ticks, converted to seconds with `sysconf(_SC_CLK_TCK)`; the machine's busy fraction is
//! 1 − (idle + iowait) / total over the `cpu` line of /proc/stat, so 1.0 means every core busy.

use serde_json::{Value, json};

/// Which processes to account for: the target's servers (one or more: e.g. an edge and the
/// gateway behind it).
#[derive(Clone, Debug, Default)]
pub struct CpuProbe {
    pub server_pids: Vec<u32>,
}

/// Counters at one instant.
#[derive(Clone, Debug)]
pub struct CpuSnapshot {
    /// Per server pid: ticks so far, `None` once the process is gone.
    server_ticks: Vec<Option<u64>>,
    client_ticks: Option<u64>,
    machine: Option<MachineTicks>,
}

#[derive(Clone, Copy, Debug)]
struct MachineTicks {
    busy: u64,
    total: u64,
}

/// CPU spent between two snapshots.
#[derive(Clone, Debug)]
pub struct CpuUsage {
    pub server_pids: Vec<u32>,
    /// utime + stime of all server pids together; `None` if one could not be read.
    pub server_cpu_seconds: Option<f64>,
    pub client_cpu_seconds: Option<f64>,
    /// Fraction of all cores busy over the phase (0.0 to 1.0).
    pub machine_busy_fraction: Option<f64>,
    pub cores: usize,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime in ticks from the text of /proc/PID/stat. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after its closing parenthesis.
fn parse_process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: field 3 (state) is the first; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy and total ticks from the text of /proc/stat (its aggregate `cpu` line).
fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|value| value.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
    // counted in user, so only the first eight are summed.
    let counted = &values[..values.len().min(8)];
    let total: u64 = counted.iter().sum();
    let idle = counted.get(3).copied().unwrap_or(0) + counted.get(4).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: total.saturating_sub(idle),
        total,
    })
}

fn process_ticks(path: &str) -> Option<u64> {
    parse_process_ticks(&std::fs::read_to_string(path).ok()?)
}

impl CpuProbe {
    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            server_ticks: self
                .server_pids
                .iter()
                .map(|pid| process_ticks(&format!("/proc/{pid}/stat")))
                .collect(),
            client_ticks: process_ticks("/proc/self/stat"),
            machine: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| parse_machine_ticks(&text)),
        }
    }

    /// What was spent from `before` to `after`.
    pub fn usage(&self, before: &CpuSnapshot, after: &CpuSnapshot) -> CpuUsage {
        let per_second = clock_ticks_per_second();
        let server_ticks: Option<u64> = before
            .server_ticks
            .iter()
            .zip(&after.server_ticks)
            .map(|(start, end)| Some(end.as_ref()?.saturating_sub(*start.as_ref()?)))
            .sum();
        let client_ticks = after
            .client_ticks
            .zip(before.client_ticks)
            .map(|(end, start)| end.saturating_sub(start));
        let machine_busy_fraction = after.machine.zip(before.machine).and_then(|(end, start)| {
            let total = end.total.saturating_sub(start.total);
            (total > 0).then(|| end.busy.saturating_sub(start.busy) as f64 / total as f64)
        });
        CpuUsage {
            server_pids: self.server_pids.clone(),
            server_cpu_seconds: if self.server_pids.is_empty() {
                None
            } else {
                server_ticks.map(|ticks| ticks as f64 / per_second)
            },
            client_cpu_seconds: client_ticks.map(|ticks| ticks as f64 / per_second),
            machine_busy_fraction,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }
}

impl CpuUsage {
    /// JSON for one round, with the server CPU per MB moved and per 1,000 operations.
    pub fn to_json(&self, operations: u64, bytes: u64) -> Value {
        let megabytes = bytes as f64 / 1e6;
        let per = |seconds: Option<f64>, amount: f64, scale: f64| {
            seconds.filter(|_| amount > 0.0).map(|s| s * scale / amount)
        };
        json!({
            "server_pids": self.server_pids,
            "server_cpu_seconds": self.server_cpu_seconds,
            "server_cpu_ms_per_megabyte": per(self.server_cpu_seconds, megabytes, 1e3),
            "server_cpu_ms_per_1000_operations": per(self.server_cpu_seconds, operations as f64, 1e6),
            "client_cpu_seconds": self.client_cpu_seconds,
            "machine_busy_fraction": self.machine_busy_fraction,
            "cores": self.cores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_are_read_after_a_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat = "4242 (cairn edge (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 269 0 0 20 0 9";
        assert_eq!(parse_process_ticks(stat), Some(1000));
        assert_eq!(parse_process_ticks("4242 (cut"), None);
    }

    #[test]
    fn machine_ticks_exclude_idle_iowait_and_guest() {
        let stat = "cpu  100 5 50 800 40 3 2 0 70 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        let ticks = parse_machine_ticks(stat).unwrap();
        assert_eq!(ticks.total, 1000);
        assert_eq!(ticks.busy, 160);
    }

    #[test]
    fn usage_is_the_difference_and_a_vanished_server_gives_none() {
        let probe = CpuProbe {
            server_pids: vec![1, 2],
        };
        let before = CpuSnapshot {
            server_ticks: vec![Some(100), Some(50)],
            client_ticks: Some(10),
            machine: Some(MachineTicks {
                busy: 100,
                total: 400,
            }),
        };
        let after = CpuSnapshot {
            server_ticks: vec![Some(300), Some(150)],
            client_ticks: Some(60),
            machine: Some(MachineTicks {
                busy: 250,
                total: 600,
            }),
        };
        let usage = probe.usage(&before, &after);
        let per_second = clock_ticks_per_second();
        assert_eq!(usage.server_cpu_seconds, Some(300.0 / per_second));
        assert_eq!(usage.client_cpu_seconds, Some(50.0 / per_second));
        assert_eq!(usage.machine_busy_fraction, Some(0.75));
        let gone = CpuSnapshot {
            server_ticks: vec![Some(300), None],
            ..after
        };
        assert_eq!(probe.usage(&before, &gone).server_cpu_seconds, None);
        let json = usage.to_json(2000, 4_000_000);
        let per_megabyte = json["server_cpu_ms_per_megabyte"].as_f64().unwrap();
        assert!((per_megabyte - 300.0 / per_second * 1e3 / 4.0).abs() < 1e-9);
    }

    #[test]
    fn this_process_can_be_read() {
        let probe = CpuProbe {
            server_pids: vec![std::process::id()],
        };
        let before = probe.snapshot();
        let mut spin = 0u64;
        for value in 0..5_000_000u64 {
            spin = spin.wrapping_add(value * value);
        }
        std::hint::black_box(spin);
        let usage = probe.usage(&before, &probe.snapshot());
        assert!(usage.server_cpu_seconds.is_some());
        assert!(usage.client_cpu_seconds.is_some());
        let busy = usage.machine_busy_fraction.unwrap_or(0.0);
        assert!((0.0..=1.0).contains(&busy));
    }
}
