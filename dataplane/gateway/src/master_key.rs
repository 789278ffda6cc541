//! The cluster master keyring in the gateway, and master-key re-wrapping.
//!
//! Model: the gateway holds a [`cairn_sse::MasterKeyFile`]: the key file re-read when it changes
//! (checked at most once a second), so `cairn master-key rotate` takes effect without a restart.
//! Everything new is wrapped by the active key; opening picks the key by the id the item records.
//!
//! Re-wrapping (admin API, root only: `POST /_cairn/admin/v1/master-key/rewrap`, client
//! `cairn admin master-key rewrap`) moves what retired keys wrapped to the active key, so a
//! retired key can then be removed from the file:
//! - every access key's sealed secret (a secret stored before sealing existed is sealed now);
//! - every version of every KMS key's material;
//! - the SSE-S3 envelope of every object version and of every multipart upload in progress, in
//!   every bucket of this gateway's region (only the wrapped data key changes; the object's bytes
//!   are not rewritten).
//!
//! Each change is written only at the record version it was computed from (the state machine
//! refuses it otherwise and the item is counted as `changed_meanwhile`), so a rewrap racing a
//! client write never puts an old envelope on a new object, and a rerun or an interrupted run is
//! safe: what is already under the active key is counted as `already_active` and left alone.
//! Not covered: buckets of other regions (rewrap there with their gateways). An upload completed
//! while a run walks may leave an object under a retired key: a rerun finds it.

use std::sync::Arc;

use cairn_meta_state::{
    Command, KmsCommand, ListUploadsRequest, ListVersionsRequest, MetaError, Query,
    ResealAccessKey, Response, VersionSelector,
};
use cairn_s3_proto::{RequestHead, S3Error};
use cairn_sse::{Envelope, MasterKeyFile, MasterKeyRing, Mode, Reload};

use crate::server::Executor;

/// The process's current master keyring (re-read if the file changed), logging what a re-read
/// did. `None` when the process has no master key.
pub fn current_ring(file: Option<&Arc<MasterKeyFile>>) -> Option<Arc<MasterKeyRing>> {
    let file = file?;
    let (ring, event) = file.current_checked();
    match event {
        Some(Reload::Reloaded) => tracing::info!(
            path = ?file.path(),
            active_key_id = %ring.active().key_id(),
            retired_keys = ring.retired().len(),
            "master key file re-read"
        ),
        Some(Reload::Failed(error)) => tracing::warn!(
            %error,
            "master key file changed but cannot be read; keeping the keys loaded before"
        ),
        None => {}
    }
    Some(ring)
}

/// Counts of one kind of item a rewrap walked.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    rewrapped: u64,
    already_active: u64,
    changed_meanwhile: u64,
    failed: u64,
}

impl Counts {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "rewrapped": self.rewrapped,
            "already_active": self.already_active,
            "changed_meanwhile": self.changed_meanwhile,
            "failed": self.failed,
        })
    }

    fn count_write(&mut self, result: Result<Result<Response, MetaError>, S3Error>) {
        match result {
            Ok(Ok(_)) => self.rewrapped += 1,
            Ok(Err(
                MetaError::RecordVersionMismatch { .. }
                | MetaError::NoSuchVersion { .. }
                | MetaError::NoSuchUpload { .. }
                | MetaError::NoSuchAccessKey { .. },
            )) => self.changed_meanwhile += 1,
            Ok(Err(error)) => {
                tracing::warn!(%error, "master key rewrap: a change was refused");
                self.failed += 1;
            }
            Err(error) => {
                tracing::warn!(?error, "master key rewrap: a change was not written");
                self.failed += 1;
            }
        }
    }
}

async fn write(
    executor: &Executor,
    command: Command,
) -> Result<Result<Response, MetaError>, S3Error> {
    let output = executor
        .meta
        .write(command)
        .await
        .map_err(|error| crate::errors::client_error_to_s3(&error))?;
    Ok(output.result)
}

async fn rewrap_access_keys(executor: &Executor, ring: &MasterKeyRing) -> Result<Counts, S3Error> {
    let mut counts = Counts::default();
    let Response::AccessKeys(keys) = executor
        .meta_query(Query::ListAccessKeys { owner: None })
        .await?
    else {
        return Err(S3Error::InternalError);
    };
    for record in keys {
        let access_key_id = &record.access_key_id;
        if let Some(key_id) = cairn_sse::sealed_secret_master_key_id(&record.secret_access_key)
            && ring.is_active(key_id)
        {
            counts.already_active += 1;
            continue;
        }
        let resealed = cairn_sse::open_secret(Some(ring), access_key_id, &record.secret_access_key)
            .and_then(|secret| cairn_sse::seal_secret(ring.active(), access_key_id, &secret));
        let sealed = match resealed {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::warn!(%access_key_id, %error, "master key rewrap: cannot open an access key's secret");
                counts.failed += 1;
                continue;
            }
        };
        let command = Command::ResealAccessKey(ResealAccessKey {
            access_key_id: access_key_id.clone(),
            record_version: record.record_version,
            secret_access_key: sealed,
        });
        counts.count_write(write(executor, command).await);
    }
    Ok(counts)
}

async fn rewrap_kms_keys(executor: &Executor, ring: &MasterKeyRing) -> Result<Counts, S3Error> {
    let mut counts = Counts::default();
    let Response::KmsKeys(keys) = executor
        .meta_query(Query::Kms(cairn_meta_state::KmsQuery::List))
        .await?
    else {
        return Err(S3Error::InternalError);
    };
    for mut record in keys {
        let versions: Vec<(u32, Vec<u8>)> = record
            .versions
            .iter()
            .map(|entry| (entry.version, entry.wrapped_material.clone()))
            .collect();
        for (version, wrapped) in versions {
            let rewrapped = match cairn_sse::rewrap_kms_material(
                ring,
                &record.key_id,
                version,
                &wrapped,
            ) {
                Ok(Some(rewrapped)) => rewrapped,
                Ok(None) => {
                    counts.already_active += 1;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(key_id = %record.key_id, version, %error, "master key rewrap: cannot open KMS key material");
                    counts.failed += 1;
                    continue;
                }
            };
            let command = Command::Kms(KmsCommand::RewrapMaterial {
                key_id: record.key_id.clone(),
                version,
                record_version: record.record_version,
                wrapped_material: rewrapped,
            });
            // Each rewrap bumps the key's record version: carry on from the answer.
            match write(executor, command).await {
                Ok(Ok(Response::KmsKey(updated))) => {
                    counts.rewrapped += 1;
                    record = updated;
                }
                other => counts.count_write(other),
            }
        }
    }
    Ok(counts)
}

/// The SSE-S3 envelope in `attributes` re-wrapped by the active key: `Ok(None)` when there is
/// nothing to do (no envelope, another mode, or the active key already), counted in `counts`.
fn rewrapped_envelope(
    ring: &MasterKeyRing,
    attributes: &cairn_meta_state::Attributes,
    bucket: &str,
    key: &str,
    counts: &mut Counts,
) -> Option<Envelope> {
    let bytes = attributes.get(cairn_sse::envelope::ATTRIBUTE_NAME)?;
    let envelope = match Envelope::decode(bytes) {
        Ok(envelope) if envelope.mode() == Mode::SseS3 => envelope,
        // SSE-C and SSE-KMS data keys are not wrapped by the master key.
        Ok(_) => return None,
        Err(error) => {
            tracing::warn!(bucket, key, %error, "master key rewrap: unreadable envelope");
            counts.failed += 1;
            return None;
        }
    };
    match envelope.rewrap_sse_s3(ring, bucket, key) {
        Ok(Some(rewrapped)) => Some(rewrapped),
        Ok(None) => {
            counts.already_active += 1;
            None
        }
        Err(error) => {
            tracing::warn!(bucket, key, %error, "master key rewrap: cannot open an SSE-S3 data key");
            counts.failed += 1;
            None
        }
    }
}

async fn rewrap_uploads(
    executor: &Executor,
    ring: &MasterKeyRing,
    bucket: &str,
    counts: &mut Counts,
) -> Result<(), S3Error> {
    let mut key_marker = None;
    let mut upload_id_marker = None;
    loop {
        let request = ListUploadsRequest {
            bucket: bucket.to_owned(),
            prefix: String::new(),
            key_marker: key_marker.clone(),
            upload_id_marker,
            max_uploads: VERSIONS_PER_PAGE,
        };
        let page = executor
            .shared
            .meta
            .run(move |client| async move { client.list_uploads(request).await })
            .await
            .map_err(|error| crate::errors::client_error_to_s3(&error))?
            .map_err(|error| crate::errors::client_error_to_s3(&error))?
            .map_err(|error| crate::errors::meta_error_to_s3(&error))?;
        for summary in &page.uploads {
            let answer = executor
                .meta_read(Query::GetUpload {
                    bucket: bucket.to_owned(),
                    key: summary.key.clone(),
                    upload_id: summary.upload_id,
                })
                .await?;
            // Completed or aborted since the listing: nothing left to re-wrap here.
            let Ok(Response::Upload(upload)) = answer else {
                continue;
            };
            let Some(rewrapped) =
                rewrapped_envelope(ring, &upload.attributes, bucket, &summary.key, counts)
            else {
                continue;
            };
            let command = Command::RewrapUploadEncryption {
                bucket: bucket.to_owned(),
                key: summary.key.clone(),
                upload_id: upload.upload_id,
                record_version: upload.record_version,
                envelope: rewrapped.encode(),
            };
            counts.count_write(write(executor, command).await);
        }
        if !page.is_truncated {
            return Ok(());
        }
        let (Some(next_key), next_upload) = (page.next_key_marker, page.next_upload_id_marker)
        else {
            return Ok(());
        };
        key_marker = Some(next_key);
        upload_id_marker = next_upload;
    }
}

/// One page of versions per request to the partitions.
const VERSIONS_PER_PAGE: u32 = 1000;

/// Object versions and multipart uploads of this region's buckets: (versions, uploads).
async fn rewrap_objects(
    executor: &Executor,
    ring: &MasterKeyRing,
    other_region_buckets: &mut u64,
) -> Result<(Counts, Counts), S3Error> {
    let mut counts = Counts::default();
    let mut upload_counts = Counts::default();
    let Response::Buckets(buckets) = executor
        .meta_query(Query::ListBuckets { owner: None })
        .await?
    else {
        return Err(S3Error::InternalError);
    };
    let region = executor.shared.config.region.clone();
    for bucket in buckets {
        if crate::region::bucket_region(&region, &bucket) != region {
            *other_region_buckets += 1;
            continue;
        }
        let mut key_marker = None;
        let mut version_id_marker = None;
        loop {
            let request = ListVersionsRequest {
                bucket: bucket.name.clone(),
                key_marker: key_marker.clone(),
                version_id_marker,
                max_keys: VERSIONS_PER_PAGE,
                ..Default::default()
            };
            let page = executor
                .shared
                .meta
                .run(move |client| async move { client.list_versions(request).await })
                .await
                .map_err(|error| crate::errors::client_error_to_s3(&error))?
                .map_err(|error| crate::errors::client_error_to_s3(&error))?
                .map_err(|error| crate::errors::meta_error_to_s3(&error))?;
            for summary in page
                .versions
                .iter()
                .filter(|summary| !summary.delete_marker)
            {
                let answer = executor
                    .meta_read(Query::GetObject {
                        bucket: bucket.name.clone(),
                        key: summary.key.clone(),
                        version: VersionSelector::Id(summary.version_id),
                    })
                    .await?;
                let record = match answer {
                    Ok(Response::Object(record)) => record,
                    // Deleted since the listing: nothing left to re-wrap.
                    Ok(_) | Err(_) => continue,
                };
                let Some(rewrapped) = rewrapped_envelope(
                    ring,
                    &record.attributes,
                    &bucket.name,
                    &summary.key,
                    &mut counts,
                ) else {
                    continue;
                };
                let command = Command::RewrapObjectEncryption {
                    bucket: bucket.name.clone(),
                    key: summary.key.clone(),
                    version_id: record.version_id,
                    record_version: record.record_version,
                    envelope: rewrapped.encode(),
                };
                counts.count_write(write(executor, command).await);
            }
            if !page.is_truncated {
                break;
            }
            let (Some(next_key), next_version) =
                (page.next_key_marker, page.next_version_id_marker)
            else {
                break;
            };
            key_marker = Some(next_key);
            version_id_marker = next_version;
        }
        rewrap_uploads(executor, ring, &bucket.name, &mut upload_counts).await?;
    }
    Ok((counts, upload_counts))
}

/// Answers `master-key...` admin requests (`path` is the part after the admin prefix); the
/// caller has checked that the request is root's.
pub(crate) async fn handle_admin(
    executor: &Executor,
    head: &RequestHead<'_>,
    path: &str,
) -> Result<crate::server::HttpResponse, S3Error> {
    let Some(ring) = current_ring(executor.shared.config.master_key.as_ref()) else {
        return Err(S3Error::NotImplemented);
    };
    match (head.method, path) {
        ("GET", "master-key") => Ok(crate::users::json_response(
            http::StatusCode::OK,
            &serde_json::json!({
                "active_key_id": ring.active().key_id(),
                "key_ids": ring.key_ids(),
            }),
        )),
        ("POST", "master-key/rewrap") => {
            tracing::info!(active_key_id = %ring.active().key_id(), "master key rewrap started");
            let access_keys = rewrap_access_keys(executor, &ring).await?;
            let kms = rewrap_kms_keys(executor, &ring).await?;
            let mut other_region_buckets = 0;
            let (objects, uploads) =
                rewrap_objects(executor, &ring, &mut other_region_buckets).await?;
            tracing::info!(
                active_key_id = %ring.active().key_id(),
                access_keys = ?access_keys,
                kms_key_versions = ?kms,
                object_versions = ?objects,
                multipart_uploads = ?uploads,
                "master key rewrap finished"
            );
            Ok(crate::users::json_response(
                http::StatusCode::OK,
                &serde_json::json!({
                    "active_key_id": ring.active().key_id(),
                    "key_ids": ring.key_ids(),
                    "access_keys": access_keys.json(),
                    "kms_key_versions": kms.json(),
                    "object_versions": objects.json(),
                    "multipart_uploads": uploads.json(),
                    "buckets_of_other_regions_skipped": other_region_buckets,
                }),
            ))
        }
        _ => Err(S3Error::MethodNotAllowed),
    }
}
