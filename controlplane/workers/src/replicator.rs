//! The replicator: copies what the replication queues of this region's object partitions hold to
//! the destination buckets of the source buckets' replication rules, in any region.
//!
//! # Model
//!
//! The queues are filled by the partitions themselves, in the same log entry as the commit of a
//! write or delete marker a rule selects (see `cairn_meta_state::replication`), so a change is
//! queued exactly when it commits. Each pass, per partition, in `seq` order:
//!
//! 1. the entry's source bucket and its configuration (bucket attribute `replication`) are read
//!    from the (global) bucket service; the rules that apply to the key, one per destination bucket,
//!    pick the destinations (for a delete marker, only rules replicating delete markers);
//! 2. each destination bucket's primary region gives the S3 endpoint to write to: this region's
//!    gateway ([`ReplicatorConfig::local_endpoint`]) or the one configured for that region
//!    ([`ReplicatorConfig::region_endpoints`]);
//! 3. a version is read through this region's gateway (`GET ?versionId=`, or part by part with
//!    `partNumber` for a multipart object) and streamed to the destination — a PUT, or a
//!    multipart upload with the same part boundaries so the ETag is the same — with its content
//!    type, user metadata, tags and object-lock settings (a retention still in force, a legal
//!    hold) and ACL; a delete marker becomes a DELETE of the key. Every request is
//!    SigV4-signed as the **source bucket's owner**: one of its active access keys, read from the
//!    bucket service and opened with the cluster master key (so `s3:ReplicateObject` is the
//!    owner's right on the destination, granted there to its owner or by a bucket policy). Writes
//!    carry `x-cairn-replica: true`, so the destination stores status `REPLICA` and never queues
//!    the replica again, and a version's copy names its source (`x-cairn-replica-source:
//!    SOURCE-BUCKET/VERSION-ID`, stored on the replica and shown to replicators on HEAD);
//! 4. a metadata change (a later PutObjectTagging, DeleteObjectTagging, PutObjectAcl,
//!    PutObjectRetention or PutObjectLegalHold of a replicated version) is a whole-state sync:
//!    the replica is found (`Replicator::find_replica`: one HEAD under the id it keeps, or
//!    for a replica that keeps the destination's own id, the destination key's versions are
//!    listed and the `REPLICA` candidates, those with the source's ETag first, are HEADed until
//!    one names the source version) and given the source version's tags, ACL, retention and
//!    legal hold as they are now, so a retry or a second entry for the same version is
//!    harmless. Retention follows what S3 lets the bucket owner do: it is extended or set
//!    freely, a GOVERNANCE one is shortened or removed with `x-amz-bypass-governance-retention`,
//!    and a refusal (COMPLIANCE shortened, object lock off in the destination) is FAILED, not
//!    retried. No replica found is FAILED too: the key's earlier entries, among them the
//!    version's own copy, were resolved before this one (see the ordering below), so the copy
//!    failed, the replica was deleted in the destination, or it predates replica sources;
//!    waiting cannot bring it;
//! 5. the entry is resolved (`ResolveReplication`: removed, source status `COMPLETED`), or
//!    `FAILED` when a destination refuses for good (a 4xx other than a timeout, throttling or a
//!    redirect: its bucket is gone, access denied, …) or the source version no longer exists.
//!
//! A transient failure (a region down, 5xx, a timeout, a missing endpoint, an endpoint whose TLS
//! certificate does not verify) leaves the entry in the queue and retries it with exponential
//! backoff; nothing leaves the queue without a resolution, so the queue is the checkpoint across
//! restarts of either region or of the replicator. While an entry of a key waits, the later
//! entries of the same key wait too, so a key's changes reach the destination in commit order
//! (a delete marker never lands before the version it hides).
//!
//! # Transport
//!
//! Endpoints are `http://HOST:PORT` or `https://HOST:PORT` (a gateway serving S3 over TLS only).
//! HTTPS is rustls (ring; TLS 1.3 and 1.2) with certificate and host name verification always
//! on: the roots are the certificates of the CA bundle the replicator is given
//! ([`tls_client_config`]; `--replication-ca-bundle`, for `cairn dev` with `--tls-cert` its dev
//! CA), or without one the public roots of `webpki-roots`. A certificate that does not verify is
//! logged (WARN, with a hint at the CA bundle) and retried; the entry is never resolved for it.
//!
//! Version ids: a replica keeps its source version's id, as on S3, when that id is tagged by the
//! source's region and the destination is in another region (`kept_id`; the tag is the id's
//! top byte, see `cairn_meta_state::VersionId::tagged`): the write carries
//! `x-cairn-replica-version-id`, and the destination's partition refuses an id its key already
//! has. A replica of an untagged id (written before tags existed) or in the source's own region
//! keeps the destination's own id. So does a copy whose destination refused the id
//! (InvalidArgument: a destination partition tagged for another region, e.g. metadata replicas
//! started without `--region`, or a race): it is retried once more without the header
//! (`Replicator::kept_id`), so a misconfigured destination degrades to the ids of before
//! instead of failing every copy.
//!
//! Idempotence: a version whose id is kept is first looked up under that id in the destination
//! (one HEAD): a `REPLICA` naming the source, or a delete marker, means an earlier attempt
//! finished; a version there that is not this one's replica (another source bucket's, with the
//! same id) makes the copy keep the destination's own id instead. Otherwise, a PUT carries
//! `x-cairn-idempotency-token` derived from (source region, bucket, key, version id), so the
//! destination answers a repeated copy with the version the first created; a multipart copy
//! (CompleteMultipartUpload has no token) and a delete marker first look at the destination's
//! current version: a `REPLICA` with the source's ETag, or a delete marker, means an earlier
//! attempt finished.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_meta_state::{
    AccessKeyStatus, BucketRecord, MetaError, ObjectRecord, Query, ReplicationEntry,
    ReplicationEventKind, ReplicationOutcome, ReplicationResolution, Response, VersionId,
    VersionSelector,
};
use cairn_raft::GroupId;
use cairn_s3_proto::acl::{Acl, CannedAcl};
use cairn_s3_proto::encoding::uri_encode;
use cairn_s3_proto::replication::{ReplicationConfiguration, decode_stored_replication};
use cairn_s3_proto::sigv4::{UNSIGNED_PAYLOAD, sign_request_headers_with_payload_hash};
use cairn_s3_proto::tagging::{decode_stored_tags, encode_stored_tags};

use crate::shared::{MetaAccess, RaftMeta, render_counters};

/// The bucket attribute holding the configuration (the gateway's `REPLICATION_ATTRIBUTE`).
pub const REPLICATION_ATTRIBUTE: &str = "replication";
const TAGGING_ATTRIBUTE: &str = "tagging";
const ACL_ATTRIBUTE: &str = "acl";
const REPLICA_HEADER: &str = "x-cairn-replica";
/// Names the source version of a replica write (the gateway's `REPLICA_SOURCE_HEADER`).
const REPLICA_SOURCE_HEADER: &str = "x-cairn-replica-source";
/// The source version id a replica keeps (the gateway's `REPLICA_VERSION_HEADER`).
const REPLICA_VERSION_HEADER: &str = "x-cairn-replica-version-id";
const BYPASS_GOVERNANCE_HEADER: &str = "x-amz-bypass-governance-retention";
/// How long an owner's opened credentials are reused before they are read again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct ReplicatorConfig {
    /// The region this replicator's partitions belong to (the source region).
    pub region: String,
    /// This region's S3 endpoint (`http://HOST:PORT` or `https://HOST:PORT`): versions are read
    /// through it, and destinations in this region are written through it.
    pub local_endpoint: String,
    /// Other regions' S3 endpoints (`region` → `http(s)://HOST:PORT`).
    pub region_endpoints: BTreeMap<String, String>,
    /// The TLS client of `https://` endpoints ([`tls_client_config`]: the CA bundle's
    /// certificates are the only roots); without it, the public roots of `webpki-roots`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Pause between passes when the queues are empty or only hold entries backing off.
    pub poll_interval: Duration,
    pub page_limit: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Connect, read and write timeout of each HTTP request.
    pub request_timeout: Duration,
}

impl ReplicatorConfig {
    pub fn new(region: String, local_endpoint: String) -> Self {
        ReplicatorConfig {
            region,
            local_endpoint,
            region_endpoints: BTreeMap::new(),
            tls: None,
            poll_interval: Duration::from_millis(500),
            page_limit: 256,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("CA bundle {path}: {reason}")]
    Unusable { path: String, reason: String },
}

/// A TLS client (TLS 1.3 and 1.2, ring provider, certificate and host name verification on)
/// trusting exactly the certificates of the PEM file `ca_bundle`.
pub fn tls_client_config(
    ca_bundle: &std::path::Path,
) -> Result<Arc<rustls::ClientConfig>, CaBundleError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unusable = |reason: String| CaBundleError::Unusable {
        path: ca_bundle.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(ca_bundle)
        .map_err(|error| unusable(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unusable(error.to_string()))?;
    if certificates.is_empty() {
        return Err(unusable("no PEM certificate in the file".to_owned()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| unusable(error.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| unusable(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// How a pass fails (the workers share the shape: [`crate::shared::MetaCallError`]).
pub type ReplicatorError = crate::shared::MetaCallError;

/// Counters since start, and the queue gauges of the last pass.
#[derive(Debug, Default)]
pub struct ReplicatorStats {
    pub passes: AtomicU64,
    pub objects_replicated: AtomicU64,
    pub bytes_replicated: AtomicU64,
    pub delete_markers_replicated: AtomicU64,
    /// Metadata changes (tags, ACL, retention, legal hold) brought to every destination.
    pub metadata_changes_replicated: AtomicU64,
    /// Entries resolved FAILED.
    pub entries_failed: AtomicU64,
    /// Attempts that failed transiently (retried with backoff).
    pub attempt_failures: AtomicU64,
    pub errors: AtomicU64,
    /// Entries in the queues at the end of the last pass.
    pub pending_entries: AtomicU64,
    /// Age of the oldest entry in the queues at the last pass (0 when empty).
    pub oldest_pending_age_seconds: AtomicU64,
}

impl ReplicatorStats {
    pub fn render_metrics(&self) -> String {
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (
                "cairn_replication_passes_total",
                "Replicator passes over the replication queues.",
                &self.passes,
            ),
            (
                "cairn_replication_objects_replicated_total",
                "Object versions copied to a destination bucket.",
                &self.objects_replicated,
            ),
            (
                "cairn_replication_bytes_replicated_total",
                "Bytes of object versions copied to a destination bucket.",
                &self.bytes_replicated,
            ),
            (
                "cairn_replication_delete_markers_replicated_total",
                "Delete markers replicated to a destination bucket.",
                &self.delete_markers_replicated,
            ),
            (
                "cairn_replication_metadata_changes_replicated_total",
                "Metadata changes (tags, ACL, retention, legal hold) replicated to a destination bucket.",
                &self.metadata_changes_replicated,
            ),
            (
                "cairn_replication_failed_total",
                "Queue entries resolved FAILED (the destination refused for good).",
                &self.entries_failed,
            ),
            (
                "cairn_replication_attempt_failures_total",
                "Replication attempts that failed transiently and are retried with backoff.",
                &self.attempt_failures,
            ),
            (
                "cairn_replication_errors_total",
                "Metadata errors met by the replicator (retried next pass).",
                &self.errors,
            ),
        ];
        let mut text = render_counters(&counters);
        text += &format!(
            "# HELP cairn_replication_pending_entries Entries waiting in this region's replication queues.\n# TYPE cairn_replication_pending_entries gauge\ncairn_replication_pending_entries {}\n",
            self.pending_entries.load(Ordering::Relaxed)
        );
        text += &format!(
            "# HELP cairn_replication_lag_seconds Age of the oldest entry waiting in this region's replication queues (0 when none).\n# TYPE cairn_replication_lag_seconds gauge\ncairn_replication_lag_seconds {}\n",
            self.oldest_pending_age_seconds.load(Ordering::Relaxed)
        );
        text
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicatorPassReport {
    pub entries_seen: u64,
    pub completed: u64,
    pub failed: u64,
    pub retried_later: u64,
}

/// How copying one entry to its destinations ended.
#[derive(Debug)]
enum Attempt {
    Done(ReplicationOutcome),
    /// Keep the entry and try again later.
    Retry(String),
}

/// The opened credentials of a bucket owner.
#[derive(Clone)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    read_at: Instant,
}

/// Whether a failed attempt of one entry is logged at WARN: the 1st, 2nd, 4th, 8th, … (the rest
/// at DEBUG). With the default backoff (capped at 30 s) an entry that keeps failing (a
/// destination that refuses the certificate, a region that is down) logs at WARN about twelve
/// times in its first day, not every 30 s.
fn retry_is_logged_loudly(attempts: u32) -> bool {
    attempts.is_power_of_two()
}

struct Backoff {
    attempts: u32,
    next_attempt: Instant,
}

pub struct Replicator<M: MetaAccess> {
    meta: M,
    config: ReplicatorConfig,
    master_key: Option<Arc<cairn_sse::MasterKeyFile>>,
    agent: ureq::Agent,
    stats: Arc<ReplicatorStats>,
    credentials: BTreeMap<String, Credentials>,
    backoff: BTreeMap<(GroupId, u64), Backoff>,
    /// Copies whose destination refused the source's id (`x-cairn-replica-version-id`): the
    /// next attempt writes them with the destination's own id. Keyed by (source bucket, key,
    /// version id, destination bucket).
    own_ids: BTreeSet<(String, String, VersionId, String)>,
}

impl<M: MetaAccess> Replicator<M> {
    pub fn new(
        meta: M,
        config: ReplicatorConfig,
        master_key: Option<Arc<cairn_sse::MasterKeyFile>>,
    ) -> Self {
        let mut agent = ureq::AgentBuilder::new();
        if let Some(tls) = &config.tls {
            agent = agent.tls_config(tls.clone());
        }
        let agent = agent
            .timeout_connect(config.request_timeout)
            .timeout_read(config.request_timeout)
            .timeout_write(config.request_timeout)
            // A redirect names another region: never follow it with these signatures.
            .redirects(0)
            .build();
        Replicator {
            meta,
            config,
            master_key,
            agent,
            stats: Arc::new(ReplicatorStats::default()),
            credentials: BTreeMap::new(),
            backoff: BTreeMap::new(),
            own_ids: BTreeSet::new(),
        }
    }

    pub fn stats(&self) -> Arc<ReplicatorStats> {
        self.stats.clone()
    }

    /// Passes forever; errors are logged and counted, never fatal.
    pub fn run_forever(mut self) -> ! {
        // Idle passes (empty queues) come further apart, up to IDLE_POLL_FACTOR × the interval,
        // so an idle region costs few metadata reads; any entry brings the interval back.
        const IDLE_POLL_FACTOR: u32 = 4;
        let mut idle_factor = 1u32;
        loop {
            match self.run_pass() {
                Ok(report) => {
                    if report.completed + report.failed > 0 {
                        tracing::info!(?report, "replication pass");
                        // A pass that finished entries goes on at once: more may be queued.
                        idle_factor = 1;
                        continue;
                    }
                    idle_factor = if report.entries_seen == 0 {
                        (idle_factor * 2).min(IDLE_POLL_FACTOR)
                    } else {
                        1
                    };
                }
                Err(error) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "replication pass failed; retrying");
                }
            }
            std::thread::sleep(self.config.poll_interval * idle_factor);
        }
    }

    /// One pass over every partition's queue.
    pub fn run_pass(&mut self) -> Result<ReplicatorPassReport, ReplicatorError> {
        let mut report = ReplicatorPassReport::default();
        let mut pending = 0u64;
        let mut oldest_ms: Option<u64> = None;
        for group in self.meta.partitions() {
            let mut after_seq = None;
            // Keys with an entry waiting (backing off or just failed): their later entries wait
            // too, so a key's changes reach the destination in commit order (a delete marker
            // never lands before the version it hides).
            let mut waiting_keys: BTreeSet<(String, String)> = BTreeSet::new();
            loop {
                let query = Query::ListReplicationQueue {
                    after_seq,
                    limit: self.config.page_limit,
                };
                let entries = match self.meta.read_from(group, query)? {
                    Ok(Response::ReplicationQueue(entries)) => entries,
                    Ok(_) => return Err(ReplicatorError::UnexpectedAnswer("ListReplicationQueue")),
                    Err(error) => {
                        return Err(ReplicatorError::Refused {
                            command: "ListReplicationQueue",
                            error,
                        });
                    }
                };
                let Some(last) = entries.last() else {
                    break;
                };
                after_seq = Some(last.seq);
                let full_page = entries.len() as u32 == self.config.page_limit;
                let mut resolutions = Vec::new();
                for entry in &entries {
                    report.entries_seen += 1;
                    let key = (group, entry.seq);
                    let object = (entry.bucket.clone(), entry.key.clone());
                    if waiting_keys.contains(&object)
                        || self
                            .backoff
                            .get(&key)
                            .is_some_and(|backoff| backoff.next_attempt > Instant::now())
                    {
                        waiting_keys.insert(object);
                        pending += 1;
                        oldest_ms = Some(oldest_ms.map_or(entry.enqueued_at_ms, |oldest| {
                            oldest.min(entry.enqueued_at_ms)
                        }));
                        report.retried_later += 1;
                        continue;
                    }
                    match self.replicate(entry) {
                        Attempt::Done(outcome) => {
                            self.backoff.remove(&key);
                            if outcome == ReplicationOutcome::Failed {
                                report.failed += 1;
                                self.stats.entries_failed.fetch_add(1, Ordering::Relaxed);
                            } else {
                                report.completed += 1;
                            }
                            resolutions.push(ReplicationResolution {
                                seq: entry.seq,
                                outcome,
                            });
                        }
                        Attempt::Retry(reason) => {
                            waiting_keys.insert(object);
                            self.stats.attempt_failures.fetch_add(1, Ordering::Relaxed);
                            report.retried_later += 1;
                            pending += 1;
                            oldest_ms = Some(oldest_ms.map_or(entry.enqueued_at_ms, |oldest| {
                                oldest.min(entry.enqueued_at_ms)
                            }));
                            let backoff = self.backoff.entry(key).or_insert(Backoff {
                                attempts: 0,
                                next_attempt: Instant::now(),
                            });
                            backoff.attempts = backoff.attempts.saturating_add(1);
                            let delay = self
                                .config
                                .initial_backoff
                                .saturating_mul(1u32 << backoff.attempts.min(16).saturating_sub(1))
                                .min(self.config.max_backoff);
                            backoff.next_attempt = Instant::now() + delay;
                            macro_rules! retrying {
                                ($level:ident) => {
                                    tracing::$level!(
                                        bucket = entry.bucket,
                                        key = entry.key,
                                        version_id = entry.version_id.0,
                                        attempts = backoff.attempts,
                                        retry_in_ms = delay.as_millis() as u64,
                                        %reason,
                                        "replication attempt failed; retrying"
                                    )
                                };
                            }
                            if retry_is_logged_loudly(backoff.attempts) {
                                retrying!(warn);
                            } else {
                                retrying!(debug);
                            }
                        }
                    }
                }
                if !resolutions.is_empty() {
                    let command = cairn_meta_state::Command::ResolveReplication { resolutions };
                    let output = self.meta.write_to(group, command)?;
                    if let Err(error) = output.result {
                        return Err(ReplicatorError::Refused {
                            command: "ResolveReplication",
                            error,
                        });
                    }
                }
                if !full_page {
                    break;
                }
            }
        }
        // Forget the backoff of entries resolved elsewhere (another replicator, a restart).
        let now = Instant::now();
        self.backoff
            .retain(|_, backoff| backoff.next_attempt + self.config.max_backoff * 4 > now);
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats.pending_entries.store(pending, Ordering::Relaxed);
        let age_seconds =
            oldest_ms.map_or(0, |oldest| now_unix_millis().saturating_sub(oldest) / 1000);
        self.stats
            .oldest_pending_age_seconds
            .store(age_seconds, Ordering::Relaxed);
        Ok(report)
    }

    fn bucket(&mut self, bucket: &str) -> Result<Option<BucketRecord>, String> {
        match self.meta.read(Query::GetBucket {
            bucket: bucket.to_owned(),
        }) {
            Ok(Ok(Response::Bucket(record))) => Ok(Some(record)),
            Ok(Err(MetaError::NoSuchBucket { .. })) => Ok(None),
            Ok(Ok(_)) => Err("unexpected answer to GetBucket".to_owned()),
            Ok(Err(error)) => Err(format!("GetBucket refused: {error}")),
            Err(error) => Err(format!("metadata: {error}")),
        }
    }

    /// Copies one entry to every destination its rules name.
    fn replicate(&mut self, entry: &ReplicationEntry) -> Attempt {
        let source = match self.bucket(&entry.bucket) {
            Ok(Some(record)) => record,
            Ok(None) => return Attempt::Done(ReplicationOutcome::Failed),
            Err(reason) => return Attempt::Retry(reason),
        };
        let Some(configuration) = source
            .attributes
            .get(REPLICATION_ATTRIBUTE)
            .and_then(|stored| decode_stored_replication(stored).ok())
        else {
            // The configuration was removed since the change was queued.
            return Attempt::Done(ReplicationOutcome::Failed);
        };
        let credentials = match self.owner_credentials(&source.owner) {
            Ok(credentials) => credentials,
            Err(reason) => return Attempt::Retry(reason),
        };
        let destinations = destinations(&configuration, entry);
        if destinations.is_empty() {
            // The rules changed since: nothing selects this change any more.
            return Attempt::Done(ReplicationOutcome::Failed);
        }
        let record = match entry.kind {
            ReplicationEventKind::Put | ReplicationEventKind::MetadataChange => {
                match self.meta.read(Query::GetObject {
                    bucket: entry.bucket.clone(),
                    key: entry.key.clone(),
                    version: VersionSelector::Id(entry.version_id),
                }) {
                    Ok(Ok(Response::Object(record))) => Some(record),
                    Ok(Err(MetaError::NoSuchVersion { .. } | MetaError::NoSuchKey { .. })) => {
                        // Removed before it could be copied: nothing to replicate.
                        return Attempt::Done(ReplicationOutcome::Failed);
                    }
                    Ok(Ok(_)) => return Attempt::Retry("unexpected answer to GetObject".into()),
                    Ok(Err(error)) => return Attempt::Retry(format!("GetObject refused: {error}")),
                    Err(error) => return Attempt::Retry(format!("metadata: {error}")),
                }
            }
            ReplicationEventKind::DeleteMarker => None,
        };
        for destination_bucket in destinations {
            let destination = match self.bucket(&destination_bucket) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    tracing::warn!(
                        bucket = entry.bucket,
                        destination = destination_bucket,
                        "replication destination bucket does not exist"
                    );
                    return Attempt::Done(ReplicationOutcome::Failed);
                }
                Err(reason) => return Attempt::Retry(reason),
            };
            let Some(endpoint) = self.endpoint_of(&destination.primary_region) else {
                return Attempt::Retry(format!(
                    "no replication endpoint for region {} (--replication-endpoint)",
                    destination.primary_region
                ));
            };
            let target = Target {
                endpoint,
                region: destination.primary_region.clone(),
                bucket: destination.name.clone(),
            };
            let result = match &record {
                Some(record) if entry.kind == ReplicationEventKind::MetadataChange => {
                    self.sync_metadata(entry, record, &credentials, &target, &source.owner)
                }
                Some(record) => self.copy_version(entry, record, &credentials, &target),
                None => self.copy_delete_marker(entry, &credentials, &target),
            };
            match result {
                Ok(()) => {}
                Err(
                    failure @ (Failure::Permanent(_)
                    | Failure::NotFound { .. }
                    | Failure::DeleteMarkerVersion),
                ) => {
                    let reason = failure.to_string();
                    tracing::warn!(
                        bucket = entry.bucket,
                        key = entry.key,
                        destination = destination_bucket,
                        %reason,
                        "replication refused by the destination"
                    );
                    return Attempt::Done(ReplicationOutcome::Failed);
                }
                Err(Failure::Transient(reason)) => return Attempt::Retry(reason),
                Err(Failure::KeptIdRefused(reason)) => {
                    // A destination whose partition has another tag than its region's (its
                    // metadata replicas configured for another region), or a race: copy again
                    // with the destination's own id.
                    tracing::warn!(
                        bucket = entry.bucket,
                        key = entry.key,
                        destination = destination_bucket,
                        %reason,
                        "the destination refused the source's version id; copying with its own"
                    );
                    if self.own_ids.len() >= MAX_OWN_ID_COPIES {
                        self.own_ids.clear();
                    }
                    self.own_ids.insert(own_id_key(entry, &target));
                    return Attempt::Retry(reason);
                }
            }
        }
        match &record {
            Some(_) if entry.kind == ReplicationEventKind::MetadataChange => {
                self.stats
                    .metadata_changes_replicated
                    .fetch_add(1, Ordering::Relaxed);
            }
            Some(record) => {
                self.stats
                    .objects_replicated
                    .fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_replicated
                    .fetch_add(record.size_bytes, Ordering::Relaxed);
            }
            None => {
                self.stats
                    .delete_markers_replicated
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        Attempt::Done(ReplicationOutcome::Completed)
    }

    /// The id the entry's version keeps in `target` ([`kept_id`]), unless `target` refused it
    /// before.
    fn kept_id(
        &self,
        entry: &ReplicationEntry,
        null_version: bool,
        target: &Target,
    ) -> Option<VersionId> {
        kept_id(entry, null_version, &target.region)
            .filter(|_| !self.own_ids.contains(&own_id_key(entry, target)))
    }

    fn endpoint_of(&self, region: &str) -> Option<String> {
        if region == self.config.region {
            return Some(self.config.local_endpoint.clone());
        }
        self.config.region_endpoints.get(region).cloned()
    }

    /// An active access key of `owner`, opened; cached for [`CREDENTIAL_TTL`].
    fn owner_credentials(&mut self, owner: &str) -> Result<Credentials, String> {
        if let Some(credentials) = self.credentials.get(owner)
            && credentials.read_at.elapsed() < CREDENTIAL_TTL
        {
            return Ok(credentials.clone());
        }
        let keys = match self.meta.read(Query::ListAccessKeys {
            owner: Some(owner.to_owned()),
        }) {
            Ok(Ok(Response::AccessKeys(keys))) => keys,
            Ok(Ok(_)) => return Err("unexpected answer to ListAccessKeys".to_owned()),
            Ok(Err(error)) => return Err(format!("ListAccessKeys refused: {error}")),
            Err(error) => return Err(format!("metadata: {error}")),
        };
        let key = keys
            .into_iter()
            .find(|key| key.status == AccessKeyStatus::Active)
            .ok_or_else(|| format!("bucket owner {owner:?} has no active access key"))?;
        // The key file as it is now (it follows `cairn master-key rotate`).
        let keys = self.master_key.as_ref().map(|file| file.current());
        let secret = cairn_sse::open_secret(
            keys.as_deref(),
            &key.access_key_id,
            &key.secret_access_key,
        )
        .map_err(|error| {
            format!(
                "cannot open the secret of access key {} (is the master key the cluster's?): {error}",
                key.access_key_id
            )
        })?;
        let credentials = Credentials {
            access_key_id: key.access_key_id,
            secret_access_key: secret.to_string(),
            read_at: Instant::now(),
        };
        self.credentials
            .insert(owner.to_owned(), credentials.clone());
        Ok(credentials)
    }

    fn copy_version(
        &self,
        entry: &ReplicationEntry,
        record: &ObjectRecord,
        credentials: &Credentials,
        target: &Target,
    ) -> Result<(), Failure> {
        let key_path = object_path(&target.bucket, &entry.key);
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".to_owned(), record.content_type.clone()),
            (REPLICA_HEADER.to_owned(), "true".to_owned()),
        ];
        for (name, value) in &record.user_metadata {
            headers.push((format!("x-amz-meta-{name}"), value.clone()));
        }
        // The stored form of a tag set is the `x-amz-tagging` header's form.
        if let Some(stored) = record.attributes.get(TAGGING_ATTRIBUTE)
            && let Ok(tags) = decode_stored_tags(stored)
            && !tags.is_empty()
            && let Ok(tagging) = String::from_utf8(encode_stored_tags(&tags))
        {
            headers.push(("x-amz-tagging".to_owned(), tagging));
        }
        headers.extend(object_lock_headers(record, now_unix_millis()));
        headers.extend(acl_headers(&record.attributes));
        headers.push((REPLICA_SOURCE_HEADER.to_owned(), replica_source(entry)));
        // Whether the copy keeps the source's id (an earlier attempt that did is found here).
        let mut keeps_id = false;
        if let Some(version_id) = self.kept_id(entry, record.null_version, target) {
            match self.version_at_destination(target, &key_path, version_id, entry, credentials)? {
                AtDestination::Replica(_) | AtDestination::ReplicaMarker => return Ok(()),
                AtDestination::Missing => {
                    headers.push((REPLICA_VERSION_HEADER.to_owned(), version_id.to_string()));
                    keeps_id = true;
                }
                AtDestination::Taken => {}
            }
        }
        // The version as S3 names it (16 hex digits, or `null`).
        let source_version = if record.null_version {
            "null".to_owned()
        } else {
            entry.version_id.to_string()
        };
        let source_query = format!("versionId={source_version}");
        let parts = &record.erasure.parts;
        if parts.len() <= 1 {
            // One PUT, made idempotent by a token derived from the source version.
            let token = format!(
                "replica:{}:{}:{}:{}",
                self.config.region, entry.bucket, entry.key, entry.version_id.0
            );
            headers.push(("x-cairn-idempotency-token".to_owned(), token));
            let source = self.send(
                "GET",
                &self.config.local_endpoint,
                &self.config.region,
                &object_path(&entry.bucket, &entry.key),
                &source_query,
                credentials,
                &[],
                None,
            )?;
            let length = record.size_bytes;
            self.send(
                "PUT",
                &target.endpoint,
                &target.region,
                &key_path,
                "",
                credentials,
                &headers,
                Some((length, Box::new(source.into_reader()))),
            )
            .map_err(|failure| kept_id_refusal(failure, keeps_id))?;
            return Ok(());
        }
        // A multipart object: an earlier attempt may have finished already (found above when
        // the id is kept; otherwise by the current version).
        if !keeps_id
            && self.destination_has_replica(
                target,
                &key_path,
                &record.checksums.etag,
                credentials,
            )?
        {
            return Ok(());
        }
        let created = self
            .send(
                "POST",
                &target.endpoint,
                &target.region,
                &key_path,
                "uploads=",
                credentials,
                &headers,
                Some((0, Box::new(std::io::empty()))),
            )
            .map_err(|failure| kept_id_refusal(failure, keeps_id))?;
        let body = created.into_string().map_err(|error| {
            Failure::Transient(format!("reading CreateMultipartUpload: {error}"))
        })?;
        let upload_id = xml_text(&body, "UploadId")
            .ok_or_else(|| Failure::Transient("no UploadId in CreateMultipartUpload".into()))?;
        let upload_query = |part_number: u32| {
            format!(
                "partNumber={part_number}&uploadId={}",
                uri_encode(&upload_id, false)
            )
        };
        let mut completed = String::from("<CompleteMultipartUpload>");
        for part in parts {
            let source = self.send(
                "GET",
                &self.config.local_endpoint,
                &self.config.region,
                &object_path(&entry.bucket, &entry.key),
                &format!("partNumber={}&{source_query}", part.part_number),
                credentials,
                &[],
                None,
            )?;
            let length: u64 = source
                .header("content-length")
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| Failure::Transient("part GET without a length".into()))?;
            let uploaded = self.send(
                "PUT",
                &target.endpoint,
                &target.region,
                &key_path,
                &upload_query(part.part_number),
                credentials,
                &[],
                Some((length, Box::new(source.into_reader()))),
            )?;
            let etag = uploaded
                .header("etag")
                .ok_or_else(|| Failure::Transient("UploadPart without an ETag".into()))?
                .to_owned();
            completed += &format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                part.part_number,
                xml_escape(&etag)
            );
        }
        completed += "</CompleteMultipartUpload>";
        let bytes = completed.into_bytes();
        self.send(
            "POST",
            &target.endpoint,
            &target.region,
            &key_path,
            &format!("uploadId={}", uri_encode(&upload_id, false)),
            credentials,
            &[(REPLICA_HEADER.to_owned(), "true".to_owned())],
            Some((bytes.len() as u64, Box::new(std::io::Cursor::new(bytes)))),
        )?;
        Ok(())
    }

    /// Whether the destination's current version of the key is a replica with `etag`.
    fn destination_has_replica(
        &self,
        target: &Target,
        key_path: &str,
        etag: &str,
        credentials: &Credentials,
    ) -> Result<bool, Failure> {
        match self.send(
            "HEAD",
            &target.endpoint,
            &target.region,
            key_path,
            "",
            credentials,
            &[],
            None,
        ) {
            Ok(response) => Ok(
                response.header("x-amz-replication-status") == Some("REPLICA")
                    && response.header("etag").map(|value| value.trim_matches('"')) == Some(etag),
            ),
            Err(Failure::NotFound { .. }) => Ok(false),
            Err(failure) => Err(failure),
        }
    }

    /// A metadata change: the replica of the entry's version in `target` gets the source
    /// version's current tags, ACL, retention and legal hold (see the module header, step 4).
    /// `owner` is the source bucket's owner, the replica's owner (it wrote it).
    fn sync_metadata(
        &self,
        entry: &ReplicationEntry,
        record: &ObjectRecord,
        credentials: &Credentials,
        target: &Target,
        owner: &str,
    ) -> Result<(), Failure> {
        use cairn_meta_state::object_lock::{
            LEGAL_HOLD_ATTRIBUTE, RETENTION_ATTRIBUTE, Retention, decode_legal_hold,
        };
        let key_path = object_path(&target.bucket, &entry.key);
        let Some(replica) = self.find_replica(entry, record, credentials, target)? else {
            return Err(Failure::Permanent(format!(
                "no replica of {} in bucket {}",
                replica_source(entry),
                target.bucket
            )));
        };
        let version_query = |subresource: &str| {
            format!(
                "{subresource}=&versionId={}",
                uri_encode(&replica.version_id, false)
            )
        };
        let put_document = |subresource: &str, mut headers: Vec<(String, String)>, body: String| {
            let body = body.into_bytes();
            headers.push((
                "content-md5".to_owned(),
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    cairn_s3_proto::checksum::md5_digest(&body),
                ),
            ));
            self.send(
                "PUT",
                &target.endpoint,
                &target.region,
                &key_path,
                &version_query(subresource),
                credentials,
                &headers,
                Some((body.len() as u64, Box::new(std::io::Cursor::new(body)))),
            )
            .map(drop)
        };

        // Tags: the whole set, or none.
        let tags = match record.attributes.get(TAGGING_ATTRIBUTE) {
            Some(stored) => decode_stored_tags(stored).map_err(|_| {
                Failure::Permanent("the source version's tag set does not decode".into())
            })?,
            None => Vec::new(),
        };
        if !tags.is_empty() {
            put_document(
                "tagging",
                Vec::new(),
                cairn_s3_proto::tagging::tagging_xml(&tags),
            )?;
        } else if replica.has_tags {
            self.send(
                "DELETE",
                &target.endpoint,
                &target.region,
                &key_path,
                &version_query("tagging"),
                credentials,
                &[],
                None,
            )?;
        }

        // The ACL: a canned one by name (`private` too, to undo an earlier one), grants as a
        // document owned by the replica's owner.
        match source_acl(&record.attributes) {
            Acl::Canned(canned) => put_document(
                "acl",
                vec![("x-amz-acl".to_owned(), canned.name().to_owned())],
                String::new(),
            )?,
            Acl::Grants(grants) => put_document(
                "acl",
                Vec::new(),
                cairn_s3_proto::acl::access_control_policy_xml(owner, &grants),
            )?,
        }

        // The legal hold: ON or not.
        let hold_wanted = record
            .attributes
            .get(LEGAL_HOLD_ATTRIBUTE)
            .and_then(|bytes| decode_legal_hold(bytes))
            == Some(true);
        if hold_wanted != replica.legal_hold_on {
            put_document(
                "legal-hold",
                Vec::new(),
                cairn_s3_proto::object_lock::legal_hold_xml(hold_wanted),
            )?;
        }

        // The retention in force (one that ran out protects nothing and cannot be set again).
        let now_ms = now_unix_millis();
        let retention_wanted = record
            .attributes
            .get(RETENTION_ATTRIBUTE)
            .and_then(|bytes| Retention::decode(bytes))
            .filter(|retention| retention.retain_until_ms > now_ms)
            .map(|retention| {
                (
                    retention.mode.as_str().to_owned(),
                    cairn_s3_proto::time::format_iso8601_millis(
                        i64::try_from(retention.retain_until_ms).unwrap_or(i64::MAX),
                    ),
                )
            });
        let retention_in_force = replica.retention.clone().filter(|(_, until)| {
            cairn_s3_proto::time::parse_iso8601_millis(until)
                .is_some_and(|until_ms| until_ms > now_ms as i64)
        });
        if retention_wanted != retention_in_force {
            // A weaker retention than the replica's (shorter, or none) needs the bypass, which
            // the bucket owner holds unless a policy denies it; COMPLIANCE refuses it anyway.
            // (The destination counts a retention that ran out as one to weaken, too.)
            let headers = if replica.retention.is_some() {
                vec![(BYPASS_GOVERNANCE_HEADER.to_owned(), "true".to_owned())]
            } else {
                Vec::new()
            };
            let document = match &retention_wanted {
                Some((mode, until)) => format!(
                    "<Retention><Mode>{mode}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
                ),
                None => "<Retention></Retention>".to_owned(),
            };
            put_document("retention", headers, document)?;
        }
        Ok(())
    }

    /// The replica of the entry's version in `target`: the version under the id it keeps
    /// ([`kept_id`]), when that is a `REPLICA` naming the source version; otherwise the
    /// destination key's versions are listed (every page, newest first) and the candidates
    /// HEADed, those with the source's ETag first, until one is. `None` when none is.
    fn find_replica(
        &self,
        entry: &ReplicationEntry,
        record: &ObjectRecord,
        credentials: &Credentials,
        target: &Target,
    ) -> Result<Option<Replica>, Failure> {
        let bucket_path = format!("/{}", target.bucket);
        let key_path = object_path(&target.bucket, &entry.key);
        if let Some(version_id) = self.kept_id(entry, record.null_version, target)
            && let AtDestination::Replica(replica) =
                self.version_at_destination(target, &key_path, version_id, entry, credentials)?
        {
            return Ok(Some(replica));
        }
        let wanted = replica_source(entry);
        let mut candidates: Vec<(String, String)> = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query = String::new();
            if let Some((key_marker, version_marker)) = &marker {
                query += &format!("key-marker={}&", uri_encode(key_marker, false));
                query += &format!("prefix={}&", uri_encode(&entry.key, false));
                query += &format!("version-id-marker={}&", uri_encode(version_marker, false));
            } else {
                query += &format!("prefix={}&", uri_encode(&entry.key, false));
            }
            query += "versions=";
            let answer = self
                .send(
                    "GET",
                    &target.endpoint,
                    &target.region,
                    &bucket_path,
                    &query,
                    credentials,
                    &[],
                    None,
                )?
                .into_string()
                .map_err(|error| {
                    Failure::Transient(format!("reading ListObjectVersions: {error}"))
                })?;
            let mut past_key = false;
            for version in xml_elements(&answer, "Version") {
                let key = xml_text(version, "Key").unwrap_or_default();
                if key != entry.key {
                    // Listed in key order: every later key only shares the prefix.
                    past_key = past_key || key > entry.key;
                    continue;
                }
                if let Some(version_id) = xml_text(version, "VersionId") {
                    let etag = xml_text(version, "ETag").unwrap_or_default();
                    candidates.push((version_id, etag.trim_matches('"').to_owned()));
                }
            }
            let truncated = xml_text(&answer, "IsTruncated").as_deref() == Some("true");
            let next =
                xml_text(&answer, "NextKeyMarker").zip(xml_text(&answer, "NextVersionIdMarker"));
            match next {
                Some(next) if truncated && !past_key && marker.as_ref() != Some(&next) => {
                    marker = Some(next);
                }
                _ => break,
            }
        }
        // Those with the source's ETag first (a replica has it), the others after.
        candidates.sort_by_key(|(_, etag)| *etag != record.checksums.etag);
        for (version_id, _) in candidates {
            let response = match self.send(
                "HEAD",
                &target.endpoint,
                &target.region,
                &key_path,
                &format!("versionId={}", uri_encode(&version_id, false)),
                credentials,
                &[],
                None,
            ) {
                Ok(response) => response,
                // Removed since it was listed.
                Err(Failure::NotFound { .. }) => continue,
                Err(failure) => return Err(failure),
            };
            if response.header("x-amz-replication-status") != Some("REPLICA")
                || response.header(REPLICA_SOURCE_HEADER) != Some(wanted.as_str())
            {
                continue;
            }
            return Ok(Some(replica_of(version_id, &response)));
        }
        Ok(None)
    }

    /// What `target` holds under `version_id` for `key_path`: the entry's replica (a `REPLICA`
    /// naming the entry's source version, or a delete marker: only replica writes create ids
    /// tagged by another region), nothing, or another version (taken).
    fn version_at_destination(
        &self,
        target: &Target,
        key_path: &str,
        version_id: VersionId,
        entry: &ReplicationEntry,
        credentials: &Credentials,
    ) -> Result<AtDestination, Failure> {
        match self.send(
            "HEAD",
            &target.endpoint,
            &target.region,
            key_path,
            &format!("versionId={version_id}"),
            credentials,
            &[],
            None,
        ) {
            Ok(response) => Ok(
                if response.header("x-amz-replication-status") == Some("REPLICA")
                    && response.header(REPLICA_SOURCE_HEADER)
                        == Some(replica_source(entry).as_str())
                {
                    AtDestination::Replica(replica_of(version_id.to_string(), &response))
                } else {
                    AtDestination::Taken
                },
            ),
            Err(Failure::NotFound { .. }) => Ok(AtDestination::Missing),
            Err(Failure::DeleteMarkerVersion)
                if entry.kind == ReplicationEventKind::DeleteMarker =>
            {
                Ok(AtDestination::ReplicaMarker)
            }
            Err(Failure::DeleteMarkerVersion) => Ok(AtDestination::Taken),
            Err(failure) => Err(failure),
        }
    }

    fn copy_delete_marker(
        &self,
        entry: &ReplicationEntry,
        credentials: &Credentials,
        target: &Target,
    ) -> Result<(), Failure> {
        let key_path = object_path(&target.bucket, &entry.key);
        let mut headers = vec![
            (REPLICA_HEADER.to_owned(), "true".to_owned()),
            (REPLICA_SOURCE_HEADER.to_owned(), replica_source(entry)),
        ];
        let delete = |headers: &[(String, String)]| {
            self.send(
                "DELETE",
                &target.endpoint,
                &target.region,
                &key_path,
                "",
                credentials,
                headers,
                None,
            )
            .map(drop)
        };
        if let Some(version_id) = self.kept_id(entry, false, target) {
            // The marker keeps the source's id: a marker under it is an earlier attempt's.
            match self.version_at_destination(target, &key_path, version_id, entry, credentials)? {
                AtDestination::ReplicaMarker | AtDestination::Replica(_) => return Ok(()),
                AtDestination::Missing => {
                    headers.push((REPLICA_VERSION_HEADER.to_owned(), version_id.to_string()));
                    return delete(&headers).map_err(|failure| kept_id_refusal(failure, true));
                }
                AtDestination::Taken => {}
            }
        }
        // A DELETE has no idempotency token: a current delete marker means an earlier attempt
        // (or the destination's own client) hid the key already, and a second one would add
        // nothing but a version.
        match self.send(
            "HEAD",
            &target.endpoint,
            &target.region,
            &key_path,
            "",
            credentials,
            &[],
            None,
        ) {
            Err(Failure::NotFound {
                delete_marker: true,
            }) => return Ok(()),
            Ok(_) | Err(Failure::NotFound { .. }) => {}
            Err(failure) => return Err(failure),
        }
        delete(&headers)
    }

    /// One signed request. `path` and `query` are canonical (strictly encoded, sorted).
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        method: &str,
        endpoint: &str,
        region: &str,
        path: &str,
        query: &str,
        credentials: &Credentials,
        headers: &[(String, String)],
        body: Option<(u64, Box<dyn Read + Send>)>,
    ) -> Result<ureq::Response, Failure> {
        let (scheme, host) = split_endpoint(endpoint).ok_or_else(|| {
            Failure::Permanent(format!("endpoint {endpoint} is not http:// or https://"))
        })?;
        let url = if query.is_empty() {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}{path}?{query}")
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        let signed = sign_request_headers_with_payload_hash(
            method,
            path,
            query,
            host,
            UNSIGNED_PAYLOAD.to_owned(),
            headers,
            &credentials.access_key_id,
            &credentials.secret_access_key,
            region,
            now,
        );
        let mut request = self.agent.request(method, &url);
        for (name, value) in signed.iter().chain(headers) {
            request = request.set(name, value);
        }
        let result = match body {
            Some((length, reader)) => request
                .set("content-length", &length.to_string())
                .send(reader),
            None => request.call(),
        };
        match result {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(404, response)) => Err(Failure::NotFound {
                delete_marker: response.header("x-amz-delete-marker") == Some("true"),
            }),
            Err(ureq::Error::Status(405, response))
                if response.header("x-amz-delete-marker") == Some("true") =>
            {
                Err(Failure::DeleteMarkerVersion)
            }
            Err(ureq::Error::Status(status, response)) => {
                let answer = response.into_string().unwrap_or_default();
                let code = xml_text(&answer, "Code").unwrap_or_default();
                let message = xml_text(&answer, "Message").unwrap_or_default();
                let reason = format!("{method} {path}: {status} {code} ({message})");
                // Throttling, timeouts, a body cut short and server errors pass; so does a
                // redirect (an endpoint configured for the wrong region: an operator's fix
                // away). Other refusals do not.
                let transient_code = matches!(
                    code.as_str(),
                    "RequestTimeout" | "IncompleteBody" | "SlowDown" | "ServiceUnavailable"
                );
                if status >= 500
                    || status == 408
                    || status == 429
                    || status == 301
                    || status == 307
                    || transient_code
                {
                    Err(Failure::Transient(reason))
                } else {
                    Err(Failure::Permanent(reason))
                }
            }
            Err(error) => {
                // An endpoint whose certificate does not verify stays a transient failure (the
                // entry waits for the operator's fix), with the likely fix in the message.
                let hint = if error.to_string().contains("invalid peer certificate") {
                    " (the endpoint's TLS certificate is not trusted: --replication-ca-bundle \
                     must hold the CA that issued it)"
                } else {
                    ""
                };
                Err(Failure::Transient(format!("{method} {url}: {error}{hint}")))
            }
        }
    }
}

/// `("http" | "https", "HOST:PORT")` of an endpoint URL (a trailing `/` ignored).
pub fn split_endpoint(endpoint: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = if let Some(rest) = endpoint.strip_prefix("https://") {
        ("https", rest)
    } else {
        ("http", endpoint.strip_prefix("http://")?)
    };
    let host = rest.trim_end_matches('/');
    (!host.is_empty() && !host.contains('/')).then_some((scheme, host))
}

/// A replica found in a destination, with what its HEAD tells of its metadata.
struct Replica {
    version_id: String,
    has_tags: bool,
    legal_hold_on: bool,
    /// `x-amz-object-lock-mode` and `x-amz-object-lock-retain-until-date`, as sent.
    retention: Option<(String, String)>,
}

/// Where one destination's writes go.
struct Target {
    endpoint: String,
    region: String,
    bucket: String,
}

#[derive(Debug)]
enum Failure {
    Transient(String),
    Permanent(String),
    /// 404, with `x-amz-delete-marker`.
    NotFound {
        delete_marker: bool,
    },
    /// 405 with `x-amz-delete-marker: true`: the version id asked for names a delete marker.
    DeleteMarkerVersion,
    /// A write that asked to keep the source's version id was refused with InvalidArgument.
    KeptIdRefused(String),
}

/// Most remembered [`Replicator::own_ids`] entries (a bound on memory; forgetting one costs a
/// refused attempt).
const MAX_OWN_ID_COPIES: usize = 10_000;

fn own_id_key(entry: &ReplicationEntry, target: &Target) -> (String, String, VersionId, String) {
    (
        entry.bucket.clone(),
        entry.key.clone(),
        entry.version_id,
        target.bucket.clone(),
    )
}

/// `failure` of a write, as [`Failure::KeptIdRefused`] when the write asked to keep the
/// source's id (`keeps_id`) and the destination refused it as an invalid argument.
fn kept_id_refusal(failure: Failure, keeps_id: bool) -> Failure {
    match failure {
        Failure::Permanent(reason) if keeps_id && reason.contains(" InvalidArgument ") => {
            Failure::KeptIdRefused(reason)
        }
        other => other,
    }
}

/// What a destination holds under a kept version id ([`Replicator::version_at_destination`]).
enum AtDestination {
    Missing,
    /// The entry's replica, as its HEAD answer describes it.
    Replica(Replica),
    /// A delete marker, for a delete-marker entry: the entry's replica.
    ReplicaMarker,
    /// Another version has the id (another source bucket replicating into the same key).
    Taken,
}

/// The id the entry's version keeps in a destination bucket of region `target_region`: its
/// own, when the source's region tagged it and the destination is another region; `None`
/// otherwise (the replica then has the destination's own id). A null version has no id to keep.
fn kept_id(entry: &ReplicationEntry, null_version: bool, target_region: &str) -> Option<VersionId> {
    let tag = entry.version_id.region_tag();
    (!null_version && tag != 0 && tag != cairn_meta_state::region_version_tag(target_region))
        .then_some(entry.version_id)
}

/// A replica as a HEAD of it under `version_id` describes it.
fn replica_of(version_id: String, response: &ureq::Response) -> Replica {
    let retention = response
        .header("x-amz-object-lock-mode")
        .zip(response.header("x-amz-object-lock-retain-until-date"))
        .map(|(mode, until)| (mode.to_owned(), until.to_owned()));
    Replica {
        version_id,
        has_tags: response.header("x-amz-tagging-count").is_some(),
        legal_hold_on: response.header("x-amz-object-lock-legal-hold") == Some("ON"),
        retention,
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(reason) | Failure::Permanent(reason) => formatter.write_str(reason),
            Failure::NotFound { delete_marker } => {
                write!(formatter, "404 (delete marker: {delete_marker})")
            }
            Failure::DeleteMarkerVersion => {
                formatter.write_str("405 (the version id names a delete marker)")
            }
            Failure::KeptIdRefused(reason) => formatter.write_str(reason),
        }
    }
}

/// The destination buckets `entry` goes to under `configuration`.
fn destinations(configuration: &ReplicationConfiguration, entry: &ReplicationEntry) -> Vec<String> {
    configuration
        .rules_for_key(&entry.key)
        .into_iter()
        .filter(|rule| {
            entry.kind != ReplicationEventKind::DeleteMarker || rule.replicates_delete_markers()
        })
        .map(|rule| rule.destination_bucket.clone())
        .collect()
}

fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", uri_encode(key, true))
}

/// What a replica names as its source (`x-cairn-replica-source`): the source bucket and the
/// version's id (16 hex digits, also for a null version, so the value is unique).
fn replica_source(entry: &ReplicationEntry) -> String {
    format!("{}/{}", entry.bucket, entry.version_id)
}

/// The stored ACL of a version (`private` when none, or when it does not decode: failing
/// closed, as the gateway reads it).
fn source_acl(attributes: &cairn_meta_state::Attributes) -> Acl {
    attributes
        .get(ACL_ATTRIBUTE)
        .and_then(|stored| Acl::decode(stored))
        .unwrap_or(Acl::Canned(CannedAcl::Private))
}

/// The ACL of a version's copy as request headers: `x-amz-acl` for a canned one other than
/// `private` (the default), else one `x-amz-grant-*` header per permission.
fn acl_headers(attributes: &cairn_meta_state::Attributes) -> Vec<(String, String)> {
    use cairn_s3_proto::acl::{GRANT_HEADERS, Grantee};
    match source_acl(attributes) {
        Acl::Canned(CannedAcl::Private) => Vec::new(),
        Acl::Canned(canned) => vec![("x-amz-acl".to_owned(), canned.name().to_owned())],
        Acl::Grants(grants) => {
            let mut by_header: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for grant in &grants {
                let Some((header, _)) = GRANT_HEADERS
                    .iter()
                    .find(|(_, permission)| *permission == grant.permission)
                else {
                    continue;
                };
                let grantee = match &grant.grantee {
                    Grantee::CanonicalUser(id) => format!("id=\"{id}\""),
                    Grantee::Group(uri) => format!("uri=\"{uri}\""),
                };
                by_header.entry(header).or_default().push(grantee);
            }
            by_header
                .into_iter()
                .map(|(header, grantees)| (header.to_owned(), grantees.join(", ")))
                .collect()
        }
    }
}

/// The inner text of every `<name>` element of an S3 answer (not unescaped), in order.
fn xml_elements<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut elements = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        elements.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    elements
}

/// The text of the first `<name>` element of a small S3 answer.
fn xml_text(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The object-lock settings of a source version as request headers for its replica, as S3
/// replicates them: a retention still in force (mode and retain-until date; one that has run out
/// protects nothing and the destination would refuse a date in the past) and a legal hold that is
/// ON. A write with object-lock parameters must carry an integrity header, so a single-part
/// object's ETag (the plaintext's MD5 in Cairn, also when encrypted) goes along as `Content-MD5`;
/// the destination then checks the streamed body against it. The destination bucket must have
/// object lock enabled, or it refuses the write for good (the entry becomes FAILED), as in S3.
fn object_lock_headers(record: &ObjectRecord, now_ms: u64) -> Vec<(String, String)> {
    use cairn_meta_state::object_lock::{
        LEGAL_HOLD_ATTRIBUTE, RETENTION_ATTRIBUTE, Retention, decode_legal_hold,
    };
    let mut headers = Vec::new();
    if let Some(retention) = record
        .attributes
        .get(RETENTION_ATTRIBUTE)
        .and_then(|bytes| Retention::decode(bytes))
        .filter(|retention| retention.retain_until_ms > now_ms)
    {
        headers.push((
            "x-amz-object-lock-mode".to_owned(),
            retention.mode.as_str().to_owned(),
        ));
        headers.push((
            "x-amz-object-lock-retain-until-date".to_owned(),
            cairn_s3_proto::time::format_iso8601_millis(
                i64::try_from(retention.retain_until_ms).unwrap_or(i64::MAX),
            ),
        ));
    }
    if record
        .attributes
        .get(LEGAL_HOLD_ATTRIBUTE)
        .and_then(|bytes| decode_legal_hold(bytes))
        == Some(true)
    {
        headers.push(("x-amz-object-lock-legal-hold".to_owned(), "ON".to_owned()));
    }
    if !headers.is_empty()
        && record.erasure.parts.len() <= 1
        && let Some(md5) =
            cairn_common::decode_hex(&record.checksums.etag).filter(|md5| md5.len() == 16)
    {
        headers.push((
            "content-md5".to_owned(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5),
        ));
    }
    headers
}

fn now_unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Starts the replicator on a thread of its own.
pub fn spawn_replicator(
    meta: cairn_raft::MetaClientConfig,
    config: ReplicatorConfig,
    master_key: Option<Arc<cairn_sse::MasterKeyFile>>,
) -> std::io::Result<Arc<ReplicatorStats>> {
    let worker = Replicator::new(RaftMeta::new(meta)?, config, master_key);
    let stats = worker.stats();
    std::thread::Builder::new()
        .name("replicator".into())
        .spawn(move || worker.run_forever())?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_entry_warns_at_powers_of_two_only() {
        let loud: Vec<u32> = (1..=300).filter(|&n| retry_is_logged_loudly(n)).collect();
        assert_eq!(loud, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        // A day of retries every 30 s.
        let day = 24 * 60 * 2;
        assert_eq!((1..=day).filter(|&n| retry_is_logged_loudly(n)).count(), 12);
    }

    #[test]
    fn keys_are_encoded_strictly_in_paths() {
        assert_eq!(object_path("b", "a b/c+d"), "/b/a%20b/c%2Bd");
    }

    #[test]
    fn answers_are_read_and_etags_escaped() {
        assert_eq!(
            xml_text("<R><UploadId>a&amp;b</UploadId></R>", "UploadId").as_deref(),
            Some("a&b")
        );
        assert_eq!(xml_text("<R/>", "UploadId"), None);
        assert_eq!(xml_escape("\"e\""), "&quot;e&quot;");
    }

    #[test]
    fn version_listings_are_split_into_elements() {
        let listing = "<ListVersionsResult><Version><Key>k</Key><VersionId>1</VersionId>\
                       </Version><DeleteMarker><Key>k</Key></DeleteMarker><Version><Key>k2\
                       </Key></Version></ListVersionsResult>";
        let versions = xml_elements(listing, "Version");
        assert_eq!(versions.len(), 2);
        assert_eq!(xml_text(versions[0], "VersionId").as_deref(), Some("1"));
        assert_eq!(
            xml_elements("<Version>unclosed", "Version"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_copy_carries_the_source_acl_as_headers() {
        use cairn_s3_proto::acl::{AclPermission, Grant, Grantee};
        let mut attributes = cairn_meta_state::Attributes::new();
        assert!(acl_headers(&attributes).is_empty());
        attributes.insert(
            ACL_ATTRIBUTE.to_owned(),
            Acl::Canned(CannedAcl::PublicRead).encode().unwrap(),
        );
        assert_eq!(
            acl_headers(&attributes),
            vec![("x-amz-acl".to_owned(), "public-read".to_owned())]
        );
        let grants = vec![
            Grant {
                grantee: Grantee::CanonicalUser("alice".to_owned()),
                permission: AclPermission::FullControl,
            },
            Grant {
                grantee: Grantee::CanonicalUser("bob".to_owned()),
                permission: AclPermission::Read,
            },
            Grant {
                grantee: Grantee::Group("http://acs.amazonaws.com/groups/global/AllUsers".into()),
                permission: AclPermission::Read,
            },
        ];
        attributes.insert(
            ACL_ATTRIBUTE.to_owned(),
            Acl::Grants(grants.clone()).encode().unwrap(),
        );
        let headers = acl_headers(&attributes);
        assert_eq!(
            headers,
            vec![
                (
                    "x-amz-grant-full-control".to_owned(),
                    "id=\"alice\"".to_owned()
                ),
                (
                    "x-amz-grant-read".to_owned(),
                    "id=\"bob\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""
                        .to_owned()
                ),
            ]
        );
        // The headers parse back to the same grants (in header order).
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let mut parsed = cairn_s3_proto::acl::parse_grant_headers(&borrowed)
            .unwrap()
            .unwrap();
        let mut wanted = grants;
        let order = |grant: &Grant| format!("{:?}", grant);
        parsed.sort_by_key(order);
        wanted.sort_by_key(order);
        assert_eq!(parsed, wanted);
    }

    #[test]
    fn a_version_keeps_its_id_only_in_another_region_and_a_refusal_is_told_apart() {
        let entry = |version_id: VersionId| ReplicationEntry {
            seq: 1,
            bucket: "src".to_owned(),
            key: "k".to_owned(),
            version_id,
            kind: ReplicationEventKind::Put,
            enqueued_at_ms: 0,
        };
        let east = VersionId::tagged(cairn_meta_state::region_version_tag("us-east-1"), 9);
        assert_eq!(kept_id(&entry(east), false, "us-west-2"), Some(east));
        // The source's own region (same-region replication), a null version, an untagged id.
        assert_eq!(kept_id(&entry(east), false, "us-east-1"), None);
        assert_eq!(kept_id(&entry(east), true, "us-west-2"), None);
        assert_eq!(kept_id(&entry(VersionId(9)), false, "us-west-2"), None);

        let refused = "PUT /dst/k: 400 InvalidArgument (a replica keeps only a version id tagged by another region)";
        assert!(matches!(
            kept_id_refusal(Failure::Permanent(refused.to_owned()), true),
            Failure::KeptIdRefused(_)
        ));
        // Without the header, or another refusal, it stays what it was.
        assert!(matches!(
            kept_id_refusal(Failure::Permanent(refused.to_owned()), false),
            Failure::Permanent(_)
        ));
        let denied = "PUT /dst/k: 403 AccessDenied (Access Denied)";
        assert!(matches!(
            kept_id_refusal(Failure::Permanent(denied.to_owned()), true),
            Failure::Permanent(_)
        ));
        assert!(matches!(
            kept_id_refusal(Failure::Transient("503".to_owned()), true),
            Failure::Transient(_)
        ));
    }

    #[test]
    fn endpoints_are_http_or_https() {
        assert_eq!(
            split_endpoint("https://127.0.0.1:9000/"),
            Some(("https", "127.0.0.1:9000"))
        );
        assert_eq!(
            split_endpoint("http://s3.example:80"),
            Some(("http", "s3.example:80"))
        );
        assert_eq!(split_endpoint("ftp://x"), None);
        assert_eq!(split_endpoint("https://"), None);
        assert_eq!(split_endpoint("https://h/path"), None);
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = tls_client_config(&empty).unwrap_err().to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
        let missing = dir.path().join("missing.pem");
        assert!(tls_client_config(&missing).is_err());
    }
}
