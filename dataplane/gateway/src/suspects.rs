//! Reporting bad pieces met on the read path to the healer.
//!
//! A GET that has to decode around a piece that is missing on its node, that the node could not
//! read, or that fails its checksum (the node's or the shard map's) sends `ReportSuspect` for the
//! version to the partition that owns the key. The queue there is replicated, bounded and
//! deduplicated (`cairn_meta_state::suspects`), and the healer, in whichever process it runs,
//! drains it within seconds, so the piece is rebuilt long before the next scrub pass would find
//! it.
//!
//! The report never slows the GET down: it is handed to the metadata client's runtime and not
//! awaited. Versions with a report in flight are remembered (at most [`MAX_IN_FLIGHT`]), so a
//! burst of reads of one damaged object sends one report at a time; beyond the bound, reports
//! are dropped and counted (the scrubber still finds the piece). Pieces on nodes the registry
//! reports DOWN and pieces that timed out are not reported: those are the node's state, which
//! the healer tracks on its own.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cairn_meta_state::{Command, ObjectRecord, Response};
use cairn_raft::DetachedMetaClient;
use cairn_storage_client::ClientError;

use crate::storage::StorageCallError;

/// Most reports in flight at once per gateway.
pub const MAX_IN_FLIGHT: usize = 256;

/// (bucket, key, version id) of a report in flight.
type ReportKey = (String, String, u64);

#[derive(Debug, Default)]
pub struct SuspectReporter {
    in_flight: Mutex<BTreeSet<ReportKey>>,
    /// Reports the partition queued.
    queued: AtomicU64,
    /// Reports the partition answered without queueing (version gone, or its queue full).
    not_queued: AtomicU64,
    /// Reports that failed on the way (no leader, timeout).
    failed: AtomicU64,
    /// Reports not sent: the same version's report was in flight, or too many were.
    suppressed: AtomicU64,
}

/// Whether a failed piece read says something about the piece (report it) rather than about the
/// node's reachability.
pub fn read_error_is_reportable(error: &StorageCallError) -> bool {
    match error {
        StorageCallError::Timeout(_) => false,
        StorageCallError::Client(error) => !matches!(
            error,
            ClientError::Io(_) | ClientError::Unavailable { .. } | ClientError::Protocol(_)
        ),
    }
}

impl SuspectReporter {
    /// Queues `record` for the healer, without waiting for the answer.
    pub fn report(self: &Arc<Self>, meta: &DetachedMetaClient, record: &ObjectRecord) {
        let report_key = (
            record.bucket.clone(),
            record.key.clone(),
            record.version_id.0,
        );
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if in_flight.contains(&report_key) || in_flight.len() >= MAX_IN_FLIGHT {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            in_flight.insert(report_key.clone());
        }
        let command = Command::ReportSuspect {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            version_id: record.version_id,
            now_ms: now_unix_millis(),
        };
        let reporter = Arc::clone(self);
        // `run` spawns the call on the client's runtime at once; the returned future only
        // carries the answer, which the task below already consumed.
        drop(meta.run(move |client| async move {
            let output = client.write(command).await;
            reporter.finish(&report_key, output);
        }));
    }

    fn finish(
        &self,
        report_key: &ReportKey,
        output: Result<cairn_meta_state::Output, cairn_raft::ClientError>,
    ) {
        self.in_flight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(report_key);
        let counter = match output.map(|output| output.result) {
            Ok(Ok(Response::SuspectReported { queued: true })) => &self.queued,
            Ok(Ok(_)) | Ok(Err(_)) => &self.not_queued,
            Err(error) => {
                tracing::warn!(%error, bucket = report_key.0, key = report_key.1, "reporting a bad piece to the healer failed");
                &self.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for the admin listener.
    pub fn render(&self) -> String {
        let name = "cairn_gateway_suspect_reports_total";
        let mut text = format!(
            "# HELP {name} Bad pieces met on GET reported to the healer's suspect queue, by outcome.\n# TYPE {name} counter\n"
        );
        for (outcome, counter) in [
            ("queued", &self.queued),
            ("not_queued", &self.not_queued),
            ("failed", &self.failed),
            ("suppressed", &self.suppressed),
        ] {
            text += &format!(
                "{name}{{outcome=\"{outcome}\"}} {}\n",
                counter.load(Ordering::Relaxed)
            );
        }
        text
    }
}

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_errors_are_reported_and_node_errors_are_not() {
        let address = "127.0.0.1:1".parse().unwrap();
        let message = String::new;
        assert!(read_error_is_reportable(&StorageCallError::Client(
            ClientError::NotFound { message: message() }
        )));
        assert!(read_error_is_reportable(&StorageCallError::Client(
            ClientError::ChecksumMismatch { message: message() }
        )));
        assert!(read_error_is_reportable(&StorageCallError::Client(
            ClientError::Internal { message: message() }
        )));
        assert!(!read_error_is_reportable(&StorageCallError::Timeout(
            address
        )));
        assert!(!read_error_is_reportable(&StorageCallError::Client(
            ClientError::Io(std::io::Error::other("reset"))
        )));
    }

    #[test]
    fn rendered_counters_name_every_outcome() {
        let reporter = SuspectReporter::default();
        reporter.suppressed.fetch_add(2, Ordering::Relaxed);
        let text = reporter.render();
        assert!(text.contains("cairn_gateway_suspect_reports_total{outcome=\"suppressed\"} 2\n"));
        assert!(text.contains("cairn_gateway_suspect_reports_total{outcome=\"queued\"} 0\n"));
    }
}
