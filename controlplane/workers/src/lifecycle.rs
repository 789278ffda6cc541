//! The lifecycle worker: applies each bucket's lifecycle configuration (the bucket attribute
//! `lifecycle`, stored by PutBucketLifecycleConfiguration) to the objects that exist.
//!
//! # Model
//!
//! Nothing is stamped on objects when they are written: every pass reads the configurations
//! anew and evaluates the enabled rules against what exists then, so a rule added or changed
//! later applies to existing objects. One pass, per bucket with a configuration:
//!
//! 1. **Versions** (when a rule has `Expiration` or `NoncurrentVersionExpiration`):
//!    ListObjectVersions over the whole bucket, one key's versions (newest first) at a time.
//!    - A current version that is an object and matches a rule whose `Days` (counted from its
//!      creation) or `Date` has passed is expired with the normal `DeleteObject` of the bucket's
//!      versioning state: removed in an unversioned bucket, hidden by a delete marker in a
//!      versioned one (a null marker when suspended), as S3 does. The delete is conditional on
//!      the version still being current with the same ETag, so a write racing the pass is never
//!      hidden.
//!    - A current delete marker that is the key's only version is removed when a matching rule
//!      has `ExpiredObjectDeleteMarker`.
//!    - A noncurrent version (or delete marker) is removed by version id once `NoncurrentDays`
//!      have passed since the next newer version was created, unless it is one of the
//!      `NewerNoncurrentVersions` newest noncurrent versions.
//! 2. **Uploads** (when a rule has `AbortIncompleteMultipartUpload`): every partition's uploads
//!    of the bucket; one initiated `DaysAfterInitiation` ago under a matching prefix is aborted.
//!
//! Deletions go through the metadata state machine's ordinary commands, so object lock is
//! enforced there: a version under retention or legal hold is refused (`ObjectLocked`) and the
//! worker skips it (counted), to retry on later passes. Every step is idempotent: a version or
//! upload already gone is skipped, so workers may run concurrently, crash and rerun.
//!
//! Time: a lifecycle day is [`LifecycleConfig::day_length`] (86,400 s in production; tests
//! shorten it). Days count from the creation instant rather than from the next midnight UTC as
//! on S3, so that scaled days behave like real ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_meta_state::{
    AbortMultipartUpload, Command, DeleteObject, ListUploadsRequest, ListVersionsRequest,
    MetaError, Query, Response, VersionSelector, VersionSummary, VersioningState, WriteCondition,
};
use cairn_s3_proto::lifecycle::{
    Expiration, LifecycleRule, days_elapsed, decode_stored_configuration,
};
use cairn_s3_proto::tagging::{Tag, decode_stored_tags};

use crate::shared::{MetaAccess, RaftMeta, render_counters};

/// The bucket attribute holding the configuration.
pub const LIFECYCLE_ATTRIBUTE: &str = "lifecycle";
/// The object attribute holding its tags.
const TAGGING_ATTRIBUTE: &str = "tagging";

#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// The length of one lifecycle day (rules count in days).
    pub day_length: Duration,
    /// Pause between passes.
    pub pass_interval: Duration,
    /// Versions or uploads asked for per metadata read.
    pub page_limit: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            day_length: Duration::from_secs(86_400),
            pass_interval: Duration::from_secs(3_600),
            page_limit: 1_000,
        }
    }
}

/// How a pass fails (the workers share the shape: [`crate::shared::MetaCallError`]).
pub type LifecycleError = crate::shared::MetaCallError;

/// Counters since start, and the time of the last finished pass.
#[derive(Debug, Default)]
pub struct LifecycleStats {
    pub passes: AtomicU64,
    pub objects_examined: AtomicU64,
    pub objects_expired: AtomicU64,
    pub noncurrent_versions_expired: AtomicU64,
    pub delete_markers_removed: AtomicU64,
    pub uploads_aborted: AtomicU64,
    pub locked_versions_skipped: AtomicU64,
    pub errors: AtomicU64,
    pub last_pass_unix_seconds: AtomicU64,
}

impl LifecycleStats {
    pub fn render_metrics(&self) -> String {
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (
                "cairn_lifecycle_passes_total",
                "Lifecycle passes finished.",
                &self.passes,
            ),
            (
                "cairn_lifecycle_objects_examined_total",
                "Object versions and delete markers evaluated against lifecycle rules.",
                &self.objects_examined,
            ),
            (
                "cairn_lifecycle_objects_expired_total",
                "Current versions expired (removed, or hidden by a delete marker when versioned).",
                &self.objects_expired,
            ),
            (
                "cairn_lifecycle_noncurrent_versions_expired_total",
                "Noncurrent versions permanently removed.",
                &self.noncurrent_versions_expired,
            ),
            (
                "cairn_lifecycle_delete_markers_removed_total",
                "Expired object delete markers removed.",
                &self.delete_markers_removed,
            ),
            (
                "cairn_lifecycle_uploads_aborted_total",
                "Incomplete multipart uploads aborted.",
                &self.uploads_aborted,
            ),
            (
                "cairn_lifecycle_locked_versions_skipped_total",
                "Removals refused by object lock (retention or legal hold); retried next pass.",
                &self.locked_versions_skipped,
            ),
            (
                "cairn_lifecycle_errors_total",
                "Errors met (the work is retried on the next pass).",
                &self.errors,
            ),
        ];
        let mut text = render_counters(&counters);
        text += &format!(
            "# HELP cairn_lifecycle_last_pass_timestamp_seconds Unix time the last lifecycle pass finished (0: none yet).\n# TYPE cairn_lifecycle_last_pass_timestamp_seconds gauge\ncairn_lifecycle_last_pass_timestamp_seconds {}\n",
            self.last_pass_unix_seconds.load(Ordering::Relaxed)
        );
        text
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecyclePassReport {
    pub buckets_with_rules: u64,
    pub objects_examined: u64,
    pub objects_expired: u64,
    pub noncurrent_versions_expired: u64,
    pub delete_markers_removed: u64,
    pub uploads_aborted: u64,
    pub locked_versions_skipped: u64,
    pub errors: u64,
}

/// One bucket's enabled rules and what the pass needs to know of the bucket.
struct BucketRules {
    bucket: String,
    owner: String,
    versioning: VersioningState,
    rules: Vec<LifecycleRule>,
}

/// How one removal attempt ended.
enum Removal {
    Done,
    /// Gone or changed since the listing: nothing to do.
    Raced,
    Locked,
}

pub struct LifecycleWorker<M: MetaAccess> {
    meta: M,
    config: LifecycleConfig,
    stats: Arc<LifecycleStats>,
}

impl<M: MetaAccess> LifecycleWorker<M> {
    pub fn new(meta: M, config: LifecycleConfig) -> Self {
        LifecycleWorker {
            meta,
            config,
            stats: Arc::new(LifecycleStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<LifecycleStats> {
        self.stats.clone()
    }

    /// Passes forever, `pass_interval` apart; errors are logged and counted, never fatal.
    pub fn run_forever(mut self) -> ! {
        loop {
            let now_ms = now_unix_millis();
            match self.run_pass(now_ms) {
                Ok(report) => {
                    if report.objects_expired
                        + report.noncurrent_versions_expired
                        + report.delete_markers_removed
                        + report.uploads_aborted
                        > 0
                    {
                        tracing::info!(?report, "lifecycle pass");
                    }
                }
                Err(error) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "lifecycle pass failed; retrying next pass");
                }
            }
            std::thread::sleep(self.config.pass_interval);
        }
    }

    /// One pass over every bucket with a lifecycle configuration, at wall-clock time `now_ms`.
    pub fn run_pass(&mut self, now_ms: u64) -> Result<LifecyclePassReport, LifecycleError> {
        let mut report = LifecyclePassReport::default();
        let buckets = match self.meta.read(Query::ListBuckets { owner: None })? {
            Ok(Response::Buckets(buckets)) => buckets,
            Ok(_) => return Err(LifecycleError::UnexpectedAnswer("ListBuckets")),
            Err(error) => {
                return Err(LifecycleError::Refused {
                    command: "ListBuckets",
                    error,
                });
            }
        };
        for record in buckets {
            let Some(stored) = record.attributes.get(LIFECYCLE_ATTRIBUTE) else {
                continue;
            };
            let rules = match decode_stored_configuration(stored) {
                Ok(rules) => rules.into_iter().filter(|rule| rule.enabled).collect(),
                Err(_) => {
                    report.errors += 1;
                    tracing::error!(
                        bucket = record.name,
                        "stored lifecycle configuration does not parse"
                    );
                    continue;
                }
            };
            report.buckets_with_rules += 1;
            let bucket = BucketRules {
                bucket: record.name.clone(),
                owner: record.owner.clone(),
                versioning: record.versioning,
                rules,
            };
            let result = self
                .apply_to_versions(&bucket, now_ms, &mut report)
                .and_then(|()| self.apply_to_uploads(&bucket, now_ms, &mut report));
            match result {
                Ok(()) => {}
                // The bucket went away during the pass.
                Err(LifecycleError::Refused {
                    error: MetaError::NoSuchBucket { .. },
                    ..
                }) => {}
                Err(error) => return Err(error),
            }
        }
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .last_pass_unix_seconds
            .store(now_ms / 1000, Ordering::Relaxed);
        Ok(report)
    }

    fn apply_to_versions(
        &mut self,
        bucket: &BucketRules,
        now_ms: u64,
        report: &mut LifecyclePassReport,
    ) -> Result<(), LifecycleError> {
        if !bucket
            .rules
            .iter()
            .any(|rule| rule.expiration.is_some() || rule.noncurrent_version_expiration.is_some())
        {
            return Ok(());
        }
        let mut request = ListVersionsRequest {
            bucket: bucket.bucket.clone(),
            max_keys: self.config.page_limit,
            ..ListVersionsRequest::default()
        };
        // One key's versions, newest first; a key may span pages.
        let mut versions: Vec<VersionSummary> = Vec::new();
        loop {
            let page = match self.meta.list_versions(request.clone())? {
                Ok(page) => page,
                Err(error) => {
                    return Err(LifecycleError::Refused {
                        command: "ListVersions",
                        error,
                    });
                }
            };
            for version in page.versions {
                if versions
                    .first()
                    .is_some_and(|first| first.key != version.key)
                {
                    self.apply_to_key(bucket, &versions, now_ms, report)?;
                    versions.clear();
                }
                versions.push(version);
            }
            if !page.is_truncated {
                break;
            }
            request.key_marker = page.next_key_marker;
            request.version_id_marker = page.next_version_id_marker;
        }
        if !versions.is_empty() {
            self.apply_to_key(bucket, &versions, now_ms, report)?;
        }
        Ok(())
    }

    /// Evaluates the rules against one key's versions (newest first).
    fn apply_to_key(
        &mut self,
        bucket: &BucketRules,
        versions: &[VersionSummary],
        now_ms: u64,
        report: &mut LifecyclePassReport,
    ) -> Result<(), LifecycleError> {
        report.objects_examined += versions.len() as u64;
        self.stats
            .objects_examined
            .fetch_add(versions.len() as u64, Ordering::Relaxed);
        let day_ms = self.config.day_length.as_millis() as u64;
        let key = versions[0].key.as_str();
        let current = versions.first().filter(|version| version.is_latest);
        if let Some(current) = current {
            if !current.delete_marker {
                let mut tags = None;
                let mut expire = false;
                for rule in &bucket.rules {
                    let due = match rule.expiration {
                        Some(Expiration::Days(days)) => {
                            days_elapsed(current.last_modified_ms, days, day_ms, now_ms)
                        }
                        Some(Expiration::Date(date_ms)) => now_ms as i64 >= date_ms,
                        _ => false,
                    };
                    if due && self.rule_matches(rule, bucket, current, &mut tags)? {
                        expire = true;
                        break;
                    }
                }
                if expire {
                    self.expire_current(bucket, current, now_ms, report)?;
                }
            } else if versions.len() == 1 {
                let remove = bucket.rules.iter().any(|rule| {
                    rule.expiration == Some(Expiration::ExpiredObjectDeleteMarker(true))
                        && rule.filter.matches_key(key)
                });
                if remove {
                    match self.remove_version(bucket, current, now_ms)? {
                        Removal::Done => {
                            report.delete_markers_removed += 1;
                            self.stats
                                .delete_markers_removed
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Removal::Raced => {}
                        Removal::Locked => self.count_locked(report),
                    }
                }
            }
        }
        // Noncurrent versions: the first version after the current one is the newest
        // noncurrent (rank 0); each became noncurrent when the next newer one was written.
        let first_noncurrent = usize::from(current.is_some());
        for index in first_noncurrent..versions.len() {
            let version = &versions[index];
            let Some(successor) = index.checked_sub(1).map(|newer| &versions[newer]) else {
                continue;
            };
            let rank = (index - first_noncurrent) as u32;
            let mut tags = None;
            let mut remove = false;
            for rule in &bucket.rules {
                let Some(noncurrent) = rule.noncurrent_version_expiration else {
                    continue;
                };
                let due = days_elapsed(
                    successor.last_modified_ms,
                    noncurrent.noncurrent_days,
                    day_ms,
                    now_ms,
                ) && rank >= noncurrent.newer_noncurrent_versions.unwrap_or(0);
                if due && self.rule_matches(rule, bucket, version, &mut tags)? {
                    remove = true;
                    break;
                }
            }
            if remove {
                match self.remove_version(bucket, version, now_ms)? {
                    Removal::Done => {
                        report.noncurrent_versions_expired += 1;
                        self.stats
                            .noncurrent_versions_expired
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Removal::Raced => {}
                    Removal::Locked => self.count_locked(report),
                }
            }
        }
        Ok(())
    }

    fn count_locked(&self, report: &mut LifecyclePassReport) {
        report.locked_versions_skipped += 1;
        self.stats
            .locked_versions_skipped
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `rule`'s filter selects `version`; its tags are read (once) only when a filter
    /// names tags. A delete marker has no size and no tags.
    fn rule_matches(
        &mut self,
        rule: &LifecycleRule,
        bucket: &BucketRules,
        version: &VersionSummary,
        tags: &mut Option<Vec<Tag>>,
    ) -> Result<bool, LifecycleError> {
        if !rule.filter.matches_key(&version.key) {
            return Ok(false);
        }
        if rule.filter.has_tags() && tags.is_none() {
            *tags = Some(if version.delete_marker {
                Vec::new()
            } else {
                self.version_tags(bucket, version)?
            });
        }
        Ok(rule.filter.matches(
            &version.key,
            version.size_bytes,
            tags.as_deref().unwrap_or(&[]),
        ))
    }

    fn version_tags(
        &mut self,
        bucket: &BucketRules,
        version: &VersionSummary,
    ) -> Result<Vec<Tag>, LifecycleError> {
        let query = Query::GetObject {
            bucket: bucket.bucket.clone(),
            key: version.key.clone(),
            version: VersionSelector::Id(version.version_id),
        };
        match self.meta.read(query)? {
            Ok(Response::Object(record)) => Ok(record
                .attributes
                .get(TAGGING_ATTRIBUTE)
                .and_then(|stored| decode_stored_tags(stored).ok())
                .unwrap_or_default()),
            // Gone since the listing: no tags, and the removal will find nothing either.
            Ok(_) | Err(_) => Ok(Vec::new()),
        }
    }

    fn expire_current(
        &mut self,
        bucket: &BucketRules,
        current: &VersionSummary,
        now_ms: u64,
        report: &mut LifecyclePassReport,
    ) -> Result<(), LifecycleError> {
        let delete = Command::DeleteObject(DeleteObject {
            bucket: bucket.bucket.clone(),
            key: current.key.clone(),
            version: VersionSelector::Current,
            versioning: bucket.versioning,
            owner: bucket.owner.clone(),
            now_ms,
        });
        // Only if the version listed is still the current one, unchanged.
        let command = Command::Conditional {
            condition: WriteCondition::EtagMatches(current.etag.clone()),
            observed: Some(current.version_id),
            command: Box::new(delete),
        };
        let result = self.meta.write(command)?.result;
        match classify(result, "DeleteObject")? {
            Removal::Done => {
                report.objects_expired += 1;
                self.stats.objects_expired.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    bucket = bucket.bucket,
                    key = current.key,
                    "lifecycle expired"
                );
            }
            Removal::Raced => {}
            Removal::Locked => self.count_locked(report),
        }
        Ok(())
    }

    fn remove_version(
        &mut self,
        bucket: &BucketRules,
        version: &VersionSummary,
        now_ms: u64,
    ) -> Result<Removal, LifecycleError> {
        let command = Command::DeleteObject(DeleteObject {
            bucket: bucket.bucket.clone(),
            key: version.key.clone(),
            version: if version.null_version {
                VersionSelector::Null
            } else {
                VersionSelector::Id(version.version_id)
            },
            versioning: bucket.versioning,
            owner: bucket.owner.clone(),
            now_ms,
        });
        let result = self.meta.write(command)?.result;
        classify(result, "DeleteObject")
    }

    fn apply_to_uploads(
        &mut self,
        bucket: &BucketRules,
        now_ms: u64,
        report: &mut LifecyclePassReport,
    ) -> Result<(), LifecycleError> {
        let abort_rules: Vec<&LifecycleRule> = bucket
            .rules
            .iter()
            .filter(|rule| rule.abort_incomplete_upload_days.is_some())
            .collect();
        if abort_rules.is_empty() {
            return Ok(());
        }
        let day_ms = self.config.day_length.as_millis() as u64;
        for group in self.meta.partitions() {
            let mut request = ListUploadsRequest {
                bucket: bucket.bucket.clone(),
                max_uploads: self.config.page_limit,
                ..ListUploadsRequest::default()
            };
            loop {
                let page = match self
                    .meta
                    .read_from(group, Query::ListUploads(request.clone()))?
                {
                    Ok(Response::UploadList(page)) => page,
                    Ok(_) => return Err(LifecycleError::UnexpectedAnswer("ListUploads")),
                    Err(error) => {
                        return Err(LifecycleError::Refused {
                            command: "ListUploads",
                            error,
                        });
                    }
                };
                for upload in &page.uploads {
                    let due = abort_rules.iter().any(|rule| {
                        rule.filter.matches_key(&upload.key)
                            && rule.abort_incomplete_upload_days.is_some_and(|days| {
                                days_elapsed(upload.initiated_at_ms, days, day_ms, now_ms)
                            })
                    });
                    if !due {
                        continue;
                    }
                    let command = Command::AbortMultipartUpload(AbortMultipartUpload {
                        bucket: bucket.bucket.clone(),
                        key: upload.key.clone(),
                        upload_id: upload.upload_id,
                        now_ms,
                    });
                    let result = self.meta.write(command)?.result;
                    if let Removal::Done = classify(result, "AbortMultipartUpload")? {
                        report.uploads_aborted += 1;
                        self.stats.uploads_aborted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !page.is_truncated {
                    break;
                }
                request.key_marker = page.next_key_marker;
                request.upload_id_marker = page.next_upload_id_marker;
            }
        }
        Ok(())
    }
}

/// How a removal command ended: done, raced (already gone or changed), or refused by object lock.
fn classify(
    result: Result<Response, MetaError>,
    command: &'static str,
) -> Result<Removal, LifecycleError> {
    match result {
        Ok(_) => Ok(Removal::Done),
        Err(
            MetaError::NoSuchKey { .. }
            | MetaError::NoSuchVersion { .. }
            | MetaError::NoSuchUpload { .. }
            | MetaError::PreconditionFailed { .. }
            | MetaError::ConditionalRequestConflict { .. },
        ) => Ok(Removal::Raced),
        Err(MetaError::ObjectLocked { .. }) => Ok(Removal::Locked),
        Err(error) => Err(LifecycleError::Refused { command, error }),
    }
}

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts the lifecycle worker on a thread of its own.
pub fn spawn_lifecycle(
    meta: cairn_raft::MetaClientConfig,
    config: LifecycleConfig,
) -> std::io::Result<Arc<LifecycleStats>> {
    let worker = LifecycleWorker::new(RaftMeta::new(meta)?, config);
    let stats = worker.stats();
    std::thread::Builder::new()
        .name("lifecycle".into())
        .spawn(move || worker.run_forever())?;
    Ok(stats)
}
