//! Request ids: unique per gateway process start, executor and request, without coordination.
//!
//! Format: 20 upper-case hex digits, `EEEE TTTTTTTTTT CCCCCC`… concretely executor index (4),
//! process start in milliseconds (low 40 bits, 10) and a per-executor counter (low 24 bits, 6).
//! Two executors never share an index and a restart changes the start time, so ids repeat only
//! after 16 M requests on one executor within the same millisecond-stamped process, which the
//! counter's wrap makes harmless for log correlation.

use std::cell::Cell;

pub struct RequestIdGenerator {
    prefix: String,
    counter: Cell<u64>,
}

impl RequestIdGenerator {
    pub fn new(executor_index: usize, process_start_unix_millis: u64) -> Self {
        RequestIdGenerator {
            prefix: format!(
                "{:04X}{:010X}",
                executor_index & 0xFFFF,
                process_start_unix_millis & 0xFF_FFFF_FFFF
            ),
            counter: Cell::new(0),
        }
    }

    pub fn next_id(&self) -> String {
        let value = self.counter.get();
        self.counter.set(value.wrapping_add(1));
        format!("{}{:06X}", self.prefix, value & 0xFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fixed_width_hex_and_distinct() {
        let first = RequestIdGenerator::new(1, 1_764_000_000_000);
        let second = RequestIdGenerator::new(2, 1_764_000_000_000);
        let a = first.next_id();
        let b = first.next_id();
        let c = second.next_id();
        for id in [&a, &b, &c] {
            assert_eq!(id.len(), 20);
            assert!(
                id.bytes()
                    .all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_lowercase())
            );
        }
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
