//! Object operations: the PUT transaction, GET/HEAD with ranges, DeleteObject.
//!
//! PUT model (ARCHITECTURE.md, "The PUT transaction"): PrepareWrite through Raft (the token from
//! `x-cairn-idempotency-token`, else derived from the request id so the metadata client's own
//! retries are safe) → the body streams through the aws-chunked decoder, the body verifier and
//! the stripe encoder → each completed stripe's k + m pieces go to k + m distinct nodes in
//! parallel while the next stripe fills (at most one stripe being written, one being filled) →
//! CommitWrite with the shard map and CRC32Cs. A piece whose node fails is rewritten on an
//! alternate from placement; a stripe commits with all k + m pieces or, when alternates run out,
//! with at least k + 1, never fewer. Any failure before the commit deletes the pieces already
//! stored and aborts the PREPARING record, both best effort: the janitor covers a gateway that
//! dies and a piece whose delete failed.
//!
//! Shard naming: one stored shard per piece, `ShardId(object id, part 1, block = stripe index,
//! shard index)`, so every piece has its own CRC32C in the record and a range GET fetches only the
//! pieces of the covering stripes.
//!
//! GET model: metadata read through the leader → the stripe decoder asks for the data pieces of
//! each stripe in the range; a missing, failed or corrupt piece makes it ask for more and decode.
//! Stripes are sent through a bounded channel as they are produced.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use cairn_common::ShardId;
use cairn_ec::{
    DecoderStep, EncodedStripe, PieceVerdict, Scheme, StripeDecoder, StripeEncoder, StripeLayout,
    new_codec,
};
use cairn_meta_state::{
    AdditionalChecksum, BlockShards, BucketRecord, Checksums, Command, CommitWrite, MetaError,
    ObjectRecord, PartShards, PrepareWrite, Query, Response, ShardIndex, ShardPlacement,
    StorageClass, TransactionState, VersionId, VersionSelector, VersioningState, WriteCondition,
};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::body::{BodyExpectations, BodyVerifier};
use cairn_s3_proto::checksum::{ChecksumAlgorithm, parse_content_md5};
use cairn_s3_proto::conditions::evaluate_conditions;
use cairn_s3_proto::endpoint::ResponseOverrides;
use cairn_s3_proto::headers::{
    check_upload_length, checksum_request, conditional_headers, parse_length, user_metadata,
};
use cairn_s3_proto::range::resolve_range_header;
use cairn_s3_proto::sigv4::PayloadMode;
use cairn_s3_proto::time::format_http_date;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::body::{PayloadSource, RequestBody};
use crate::bucket::owned_bucket;
use crate::errors::{ec_error_to_s3, meta_error_to_s3};
use crate::metrics::ShardReadError;
use crate::placement::{choose_nodes, choose_nodes_weighted, placeable_shards};
use crate::server::{Executor, HttpResponse, RequestContext, empty_body, now_unix_millis};
use crate::storage::PieceBuf;
use crate::suspects::read_error_is_reportable;
use crate::upload_md5::UploadMd5;

/// Objects written by a single PUT are part 1 of themselves.
const SINGLE_PART_NUMBER: u32 = 1;
/// Stripes encoded but not yet durable while the body keeps streaming in.
const STRIPES_IN_FLIGHT: usize = 1;
/// Stripes buffered between the decoder and a slow GET client.
pub(crate) const GET_CHANNEL_STRIPES: usize = 2;

/// The S3 version id of a record: `null` for the null version (written while versioning was
/// off or suspended), else the log-index id, or for a replica that keeps it its source's id.
pub(crate) fn s3_version_id(record: &ObjectRecord) -> String {
    if record.null_version {
        "null".to_owned()
    } else {
        record.s3_version_id().to_string()
    }
}

/// The `x-amz-version-id` a response about `record` carries: none in a bucket whose versioning
/// was never set (S3 sends none there), the record's S3 version id otherwise.
pub(crate) fn version_id_header(
    versioning: VersioningState,
    record: &ObjectRecord,
) -> Option<String> {
    (versioning != VersioningState::Unversioned).then(|| s3_version_id(record))
}

/// Adds `x-amz-version-id` (see [`version_id_header`]) to a response.
pub(crate) fn insert_version_id(
    response: &mut HttpResponse,
    versioning: VersioningState,
    record: &ObjectRecord,
) {
    if let Some(version_id) = version_id_header(versioning, record)
        && let Ok(value) = http::HeaderValue::from_str(&version_id)
    {
        response.headers_mut().insert("x-amz-version-id", value);
    }
}

/// Sets (`Some`) or removes (`None`) one attribute (tags, ACL) of the version `version_id` names
/// (the current one when absent) and answers `status` with an empty body and the version's
/// `x-amz-version-id`. The caller has checked access and validated the value.
pub(crate) async fn write_object_attribute(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    key: &str,
    version_id: Option<&str>,
    name: &str,
    value: Option<Vec<u8>>,
    status: http::StatusCode,
) -> Result<HttpResponse, S3Error> {
    let command = Command::PutObjectAttribute {
        bucket: bucket_record.name.clone(),
        key: key.to_owned(),
        version: version_selector(version_id)?,
        name: name.to_owned(),
        value,
    };
    let command = crate::replication::queue_attribute_change(bucket_record, key, name, command);
    let Response::Object(record) = context.executor.meta_write(command).await? else {
        return Err(S3Error::InternalError);
    };
    let mut response = http::Response::builder()
        .status(status)
        .body(empty_body())
        .expect("static headers are valid");
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}

/// A conditional write's condition and the current version id seen when it was first checked.
pub(crate) type CheckedCondition = (WriteCondition, Option<VersionId>);

/// S3's conditional writes: `If-None-Match: *` (only `*` is supported, as in S3) or
/// `If-Match: <etag>` on PUT, CompleteMultipartUpload and (`If-Match` only) DeleteObject. The
/// condition is checked here first, so a write that cannot succeed stores nothing, and again
/// atomically when the commit applies ([`Command::Conditional`]); the version id seen here lets
/// the state machine tell a lost race (409) from a plain failure (412).
pub(crate) async fn check_write_condition(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    allow_if_none_match: bool,
) -> Result<Option<CheckedCondition>, S3Error> {
    let condition = match (context.header("if-none-match"), context.header("if-match")) {
        (Some(_), _) if !allow_if_none_match => return Err(S3Error::NotImplemented),
        (Some(value), _) if value.trim() == "*" => WriteCondition::Absent,
        (Some(_), _) => return Err(S3Error::NotImplemented),
        (None, Some(value)) => {
            WriteCondition::EtagMatches(value.trim().trim_matches('"').to_owned())
        }
        (None, None) => return Ok(None),
    };
    let answer = context
        .executor
        .meta_read(Query::GetObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: VersionSelector::Current,
        })
        .await?;
    let (observed, current_etag) = match answer {
        Ok(Response::Object(record)) => (Some(record.s3_version_id()), Some(record.checksums.etag)),
        Ok(_) => return Err(S3Error::InternalError),
        Err(MetaError::NoSuchKey { delete_marker, .. }) => (delete_marker, None),
        Err(error) => return Err(meta_error_to_s3(&error)),
    };
    match (&condition, current_etag) {
        (WriteCondition::Absent, Some(_)) => return Err(S3Error::PreconditionFailed),
        (WriteCondition::EtagMatches(_), None) => return Err(S3Error::NoSuchKey),
        (WriteCondition::EtagMatches(wanted), Some(etag)) if *wanted != etag => {
            return Err(S3Error::PreconditionFailed);
        }
        _ => {}
    }
    Ok(Some((condition, observed)))
}

/// Wraps a commit or delete in its condition, if it has one.
pub(crate) fn with_condition(command: Command, condition: &Option<CheckedCondition>) -> Command {
    match condition {
        None => command,
        Some((condition, observed)) => Command::Conditional {
            condition: condition.clone(),
            observed: *observed,
            command: Box::new(command),
        },
    }
}

pub(crate) fn quoted_etag(etag: &str) -> String {
    quoted(etag)
}

pub(crate) fn to_meta_algorithm(
    algorithm: ChecksumAlgorithm,
) -> cairn_meta_state::ChecksumAlgorithm {
    match algorithm {
        ChecksumAlgorithm::Crc32 => cairn_meta_state::ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c => cairn_meta_state::ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme => cairn_meta_state::ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1 => cairn_meta_state::ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256 => cairn_meta_state::ChecksumAlgorithm::Sha256,
    }
}

fn checksum_header_name(algorithm: cairn_meta_state::ChecksumAlgorithm) -> &'static str {
    match algorithm {
        cairn_meta_state::ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
        cairn_meta_state::ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        cairn_meta_state::ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        cairn_meta_state::ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
        cairn_meta_state::ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
    }
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

pub(crate) fn parse_scheme(text: &str) -> Result<Scheme, S3Error> {
    text.parse().map_err(|_| S3Error::InternalError)
}

/// The object id shard names use: the partition that owns the key and the version's log-index id,
/// so shard names never collide across partitions or versions.
fn shard_object_id(executor: &Executor, record: &ObjectRecord) -> u128 {
    let group = executor
        .shared
        .meta
        .client()
        .partition_of(&record.bucket, &record.key);
    // Partition groups are numbered 1..=P (group 0 is the bucket service).
    let partition_index = (group.0 - 1) as u32;
    cairn_meta_state::shard_object_id(partition_index, record.shard_name_id())
}

/// Spreads stripes of one object, and objects, over the nodes.
fn stripe_rotation(object_id: u128, stripe_index: u64) -> u64 {
    let mixed = (object_id as u64) ^ ((object_id >> 64) as u64).rotate_left(17);
    mixed.wrapping_add(stripe_index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

pub async fn put_object(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    put_object_from(context, bucket, key, PayloadSource::Request(body)).await
}

/// PutObject's transaction for a payload from any source: the request body, or the file of a
/// browser-based upload ([`crate::post_object`], whose form fields stand in for the headers).
pub(crate) async fn put_object_from(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    body: PayloadSource,
) -> Result<HttpResponse, S3Error> {
    let executor = context.executor;
    let config = &executor.shared.config;
    let bucket_record = owned_bucket(context, bucket).await?;
    let scheme = parse_scheme(&bucket_record.ec_scheme)?;
    let configured_layout = StripeLayout::new(scheme, config.piece_size_bytes as usize)
        .map_err(|error| ec_error_to_s3(&error))?;
    let condition = check_write_condition(context, bucket, key, true).await?;

    let chunked = context.payload.is_aws_chunked();
    let declared_length = if chunked {
        context.header("x-amz-decoded-content-length")
    } else {
        context.header("content-length")
    };
    let size_bytes = check_upload_length(parse_length(declared_length)?)?;
    let expectations = BodyExpectations {
        length_bytes: Some(size_bytes),
        content_md5: context
            .header("content-md5")
            .map(parse_content_md5)
            .transpose()?,
        payload_sha256: match &context.payload {
            PayloadMode::Sha256 { expected_sha256 } => Some(*expected_sha256),
            _ => None,
        },
        // An aws-chunked body carries its checksum in the trailer, which the decoder verifies.
        checksum: if chunked {
            None
        } else {
            Some(checksum_request(context.headers)?)
        },
    };
    let token = context
        .header("x-cairn-idempotency-token")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("gw-{}", context.request_id));
    let new_key = crate::encryption::new_object_key(context, &bucket_record, key).await?;
    // Checked before anything is written; the PREPARING record counts from the prepare on.
    let quota = crate::quota::admit(
        executor,
        &bucket_record,
        crate::quota::Demand::object(size_bytes),
    )
    .await?;
    let prepare = Command::PrepareWrite(PrepareWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        idempotency_token: token.clone(),
        size_bytes,
        content_type: context
            .header("content-type")
            .unwrap_or("binary/octet-stream")
            .to_owned(),
        owner: context.caller.owner.clone(),
        user_metadata: user_metadata(context.headers)?.into_iter().collect(),
        storage_class: StorageClass::Standard,
        acl: Default::default(),
        ec_scheme: bucket_record.ec_scheme.clone(),
        piece_size_bytes: object_piece_size_bytes(
            configured_layout,
            size_bytes,
            new_key.key.is_some(),
        ),
        versioning: bucket_record.versioning,
        now_ms: now_unix_millis(),
        attributes: {
            let mut attributes = crate::tagging::request_attributes(context)?;
            attributes.extend(crate::object_lock::new_version_attributes(
                context,
                &bucket_record,
                now_unix_millis(),
                true,
            )?);
            attributes.extend(new_key.attributes.clone());
            if crate::replication::is_replica_write(context, &bucket_record, key)? {
                attributes.extend(crate::replication::replica_attributes(context)?);
            }
            attributes
        },
    });
    let Response::Prepared { record, retried } = executor.meta_write(prepare).await? else {
        return Err(S3Error::InternalError);
    };
    drop(quota);
    if retried && record.state == TransactionState::Committed {
        // A retry of a PUT that already committed: answer as the first attempt did, once its
        // body is read (left unread, it would stay on the keep-alive connection and the next
        // request would be parsed from it).
        let mut body = body;
        while body.next_chunk().await?.is_some() {}
        let mut response = put_response(&record.checksums);
        insert_version_id(&mut response, bucket_record.versioning, &record);
        for (name, value) in crate::encryption::stored_mode_headers(context, &record.attributes) {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        return Ok(response);
    }
    // A client's retry (same idempotency token) of a PUT still PREPARING writes under the
    // recorded attempt's data key, which is the one the record will name.
    // Other attributes (tags, ACL) may differ between attempts; the data key is what matters.
    let fresh_attempt = record.attributes.get(cairn_sse::envelope::ATTRIBUTE_NAME)
        == new_key.attributes.get(cairn_sse::envelope::ATTRIBUTE_NAME);
    let recorded_key = if fresh_attempt {
        None
    } else {
        crate::encryption::open_object_key(
            context,
            &record.attributes,
            bucket,
            key,
            crate::encryption::HeaderFamily::Request,
        )
        .await?
    };
    let object_key = if fresh_attempt {
        new_key.key.as_ref()
    } else {
        recorded_key.as_ref()
    };
    let data_key = object_key.map(|object_key| &object_key.data_key);
    let object_id = shard_object_id(executor, &record);

    // The recorded size: a retry of an attempt still PREPARING writes what that attempt chose.
    let stored = stream_and_store(
        executor,
        scheme,
        record.erasure.piece_size_bytes as usize,
        object_id,
        SINGLE_PART_NUMBER,
        body,
        expectations,
        data_key,
    )
    .await;
    let (checksums, blocks) = match stored {
        Ok(stored) => stored,
        Err(error) => {
            abort_write(executor, bucket, key, record.version_id).await;
            return Err(error);
        }
    };
    let written: Vec<(u64, BlockShards)> = if condition.is_some() {
        (0u64..).zip(blocks.iter().cloned()).collect()
    } else {
        Vec::new()
    };
    let commit = Command::CommitWrite(CommitWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: record.version_id,
        idempotency_token: token,
        checksums: checksums.clone(),
        parts: vec![PartShards {
            part_number: SINGLE_PART_NUMBER,
            length_bytes: crate::encryption::stored_length_bytes(size_bytes, data_key.is_some()),
            blocks,
        }],
        now_ms: now_unix_millis(),
    });
    if let Err(error) = executor
        .meta_write(crate::replication::queue_write(
            &bucket_record,
            key,
            &record.attributes,
            with_condition(commit, &condition),
        ))
        .await
    {
        if matches!(
            error,
            S3Error::PreconditionFailed | S3Error::ConditionalRequestConflict | S3Error::NoSuchKey
        ) {
            // The state machine refused the commit for certain: nothing references the pieces.
            delete_pieces(executor, object_id, SINGLE_PART_NUMBER, &written).await;
        }
        abort_write(executor, bucket, key, record.version_id).await;
        return Err(error);
    }
    let mut response = put_response(&checksums);
    insert_version_id(&mut response, bucket_record.versioning, &record);
    crate::encryption::insert_response_headers(&mut response, object_key);
    Ok(response)
}

pub(crate) fn put_response(checksums: &Checksums) -> HttpResponse {
    let mut builder = http::Response::builder()
        .status(http::StatusCode::OK)
        .header("etag", quoted(&checksums.etag));
    if let Some(additional) = &checksums.additional {
        builder = builder.header(
            checksum_header_name(additional.algorithm),
            &additional.value_base64,
        );
    }
    builder.body(empty_body()).expect("valid headers")
}

pub(crate) async fn abort_write(
    executor: &Executor,
    bucket: &str,
    key: &str,
    version_id: VersionId,
) {
    let command = Command::AbortWrite(cairn_meta_state::AbortWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id,
        now_ms: now_unix_millis(),
    });
    match executor.meta_write(command).await {
        Ok(_) => executor.metrics.write_aborted(),
        // The janitor rolls the PREPARING record back later.
        Err(error) => {
            tracing::warn!(bucket, key, %version_id, code = error.code(), "AbortWrite failed")
        }
    }
}

/// Reads the body through the encoder and writes every stripe; returns the verified checksums
/// and the shard map.
///
/// On any failure (a truncated or refused body, a source that cannot be read, too few nodes) the
/// stripes already written are awaited and their pieces deleted, best effort, before the error is
/// returned: nothing references them, and a shard the gateway knows about should not wait for the
/// janitor's scan. This runs only before a commit was attempted; after one, a shard may belong to
/// a committed object even when the commit's answer was lost, so it is left alone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stream_and_store(
    executor: &Rc<Executor>,
    scheme: Scheme,
    piece_size_bytes: usize,
    object_id: u128,
    part_number: u32,
    body: PayloadSource,
    expectations: BodyExpectations,
    data_key: Option<&cairn_sse::DataKey>,
) -> Result<(Checksums, Vec<BlockShards>), S3Error> {
    let mut blocks = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let outcome = encode_and_write(
        executor,
        scheme,
        piece_size_bytes,
        object_id,
        part_number,
        body,
        expectations,
        data_key,
        &mut blocks,
        &mut in_flight,
    )
    .await;
    match outcome {
        Ok(checksums) => Ok((checksums, blocks)),
        Err(error) => {
            // `blocks` holds stripes 0.. in order; a stripe still in flight carries its index
            // (one that failed in between leaves a gap).
            let mut written: Vec<(u64, BlockShards)> = blocks
                .into_iter()
                .enumerate()
                .map(|(stripe_index, block)| (stripe_index as u64, block))
                .collect();
            while let Some((stripe_index, pending)) = in_flight.pop_front() {
                if let Ok(block) = pending.await {
                    written.push((stripe_index, block));
                }
            }
            delete_pieces(executor, object_id, part_number, &written).await;
            Err(error)
        }
    }
}

/// The piece size a new single-part object is stored with: the configured one, or for an object
/// that fits in one stripe of smaller pieces the smallest that holds it
/// ([`StripeLayout::for_object_len`]; the record carries it to readers and the healer).
fn object_piece_size_bytes(
    configured_layout: StripeLayout,
    plaintext_length_bytes: u64,
    encrypted: bool,
) -> u32 {
    let stored_length_bytes =
        crate::encryption::stored_length_bytes(plaintext_length_bytes, encrypted);
    let piece_size_bytes = configured_layout
        .for_object_len(stored_length_bytes)
        .piece_size_bytes();
    // Never above the configured size, which is a u32.
    u32::try_from(piece_size_bytes).expect("at most the configured piece size")
}

/// A stripe being written: its index and the task writing it.
type StripeWrite = (u64, monoio::task::JoinHandle<Result<BlockShards, S3Error>>);

#[allow(clippy::too_many_arguments)]
async fn encode_and_write(
    executor: &Rc<Executor>,
    scheme: Scheme,
    piece_size_bytes: usize,
    object_id: u128,
    part_number: u32,
    mut body: PayloadSource,
    expectations: BodyExpectations,
    data_key: Option<&cairn_sse::DataKey>,
    blocks: &mut Vec<BlockShards>,
    in_flight: &mut std::collections::VecDeque<StripeWrite>,
) -> Result<Checksums, S3Error> {
    let pool = executor.piece_pool(piece_size_bytes, scheme.total_shards());
    let mut encoder = StripeEncoder::new(new_codec(scheme), piece_size_bytes, pool)
        .map_err(|error| ec_error_to_s3(&error))?;
    // Encryption sits between the verifier (checksums and ETag cover the plaintext) and the
    // encoder (storage nodes see ciphertext only).
    let mut encryptor = match data_key {
        Some(data_key) => Some(
            cairn_sse::ChunkEncryptor::new(
                data_key,
                part_number,
                expectations
                    .length_bytes
                    .ok_or(S3Error::MissingContentLength)?,
            )
            .map_err(|error| crate::errors::sse_error_to_s3(&error))?,
        ),
        None => None,
    };
    let mut ciphertext = Vec::new();
    let mut verifier = BodyVerifier::with_external_md5(expectations);
    let mut md5 = UploadMd5::open(&executor.md5_lanes);
    while let Some(chunk) = body.next_chunk().await? {
        verifier.update(&chunk)?;
        md5.push(&chunk, &executor.metrics).await;
        let stored: &[u8] = match encryptor.as_mut() {
            Some(encryptor) => {
                ciphertext.clear();
                // The verifier refused more bytes than declared already; nothing else fails.
                encryptor
                    .push(&chunk, &mut ciphertext)
                    .map_err(|_| S3Error::IncompleteBody)?;
                &ciphertext
            }
            None => &chunk,
        };
        let mut rest = stored;
        while !rest.is_empty() {
            let outcome = encoder.push(rest).map_err(|error| ec_error_to_s3(&error))?;
            rest = &rest[outcome.consumed_bytes..];
            if let Some(stripe) = outcome.stripe {
                if in_flight.len() >= STRIPES_IN_FLIGHT {
                    let (_, written) = in_flight.pop_front().expect("non-empty");
                    blocks.push(written.await?);
                }
                let stripe_index = stripe.stripe_index;
                in_flight.push_back((
                    stripe_index,
                    monoio::spawn(write_stripe(
                        Rc::clone(executor),
                        object_id,
                        part_number,
                        scheme,
                        stripe,
                    )),
                ));
            }
        }
    }
    // Framing, chunk signatures, trailer, length and digests: all before anything commits.
    let trailer = body.finish()?;
    let digest = verifier.finish_with_md5(md5.finish(&executor.metrics))?;
    if let Some(encryptor) = encryptor {
        encryptor
            .finish()
            .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
    }
    let finished = encoder.finish().map_err(|error| ec_error_to_s3(&error))?;
    while let Some((_, written)) = in_flight.pop_front() {
        blocks.push(written.await?);
    }
    if let Some(stripe) = finished.last_stripe {
        blocks
            .push(write_stripe(Rc::clone(executor), object_id, part_number, scheme, stripe).await?);
    }
    let additional = trailer
        .and_then(|summary| summary.trailing_checksum)
        .or(digest.checksum)
        .map(|(algorithm, value_base64)| AdditionalChecksum {
            algorithm: to_meta_algorithm(algorithm),
            value_base64,
        });
    Ok(Checksums {
        etag: digest.etag.trim_matches('"').to_owned(),
        additional,
    })
}

/// Deletes the pieces of `blocks` (a write that will never commit), all at once; a piece that
/// cannot be deleted now is left to the janitor's scan for unreferenced shards.
async fn delete_pieces(
    executor: &Rc<Executor>,
    object_id: u128,
    part_number: u32,
    blocks: &[(u64, BlockShards)],
) {
    let deletes = blocks.iter().flat_map(|(stripe_index, block)| {
        block.shards.iter().map(move |(shard, placement)| {
            let executor = Rc::clone(executor);
            async move {
                let node = executor
                    .shared
                    .node_positions
                    .get(&placement.node_id.0)
                    .copied()?;
                let shard_id = ShardId::new(
                    object_id,
                    part_number,
                    *stripe_index as u32,
                    cairn_common::ShardIndex(shard.0),
                );
                Some(executor.storage.delete(node, shard_id).await)
            }
        })
    });
    let mut deleted = 0u64;
    let mut failed = 0u64;
    for outcome in futures::future::join_all(deletes).await {
        match outcome {
            Some(Ok(())) => deleted += 1,
            Some(Err(error)) => {
                failed += 1;
                tracing::warn!(%error, "could not delete a piece of an abandoned write");
            }
            None => failed += 1,
        }
    }
    executor.metrics.orphan_pieces_deleted(deleted, failed);
    if deleted + failed > 0 {
        tracing::info!(
            object_id = format_args!("{object_id:032x}"),
            part_number,
            deleted,
            failed,
            "deleted the pieces of an abandoned write"
        );
    }
}

/// Writes one stripe's pieces to distinct nodes in parallel, replacing failed nodes with
/// alternates; returns the block's shard map. A short stripe's padding data pieces
/// (`cairn_common::padding`) are neither written nor placed: they count towards the k + 1 a
/// commit needs, as the metadata service counts them.
async fn write_stripe(
    executor: Rc<Executor>,
    object_id: u128,
    part_number: u32,
    scheme: Scheme,
    mut stripe: EncodedStripe,
) -> Result<BlockShards, S3Error> {
    let shared = &executor.shared;
    let zones: Vec<&str> = shared.zones.iter().map(String::as_str).collect();
    let max_per_zone = scheme.parity_shards();
    let rotation = stripe_rotation(object_id, stripe.stripe_index);
    let block_index = u32::try_from(stripe.stripe_index).map_err(|_| S3Error::EntityTooLarge)?;
    let data_len_bytes = stripe.data_len_bytes as u64;
    let piece_size_bytes = stripe.pieces.first().map_or(0, |piece| piece.bytes.len());
    let padding = cairn_common::padding_data_pieces(
        scheme.data_shards(),
        piece_size_bytes as u64,
        data_len_bytes,
    );
    stripe
        .pieces
        .retain(|piece| !padding.contains(&piece.shard.get()));
    let minimum_shards = if scheme.parity_shards() == 0 {
        scheme.data_shards()
    } else {
        scheme.data_shards() + 1
    }
    .saturating_sub(padding.len());
    // Nodes the registry reports DOWN or full are never tried; the others are drawn in
    // proportion to the free space their heartbeats report (when all have reported).
    let availability = shared.node_availability();
    let mut unavailable = availability.not_writable();
    let weights = availability.placement_weights(zones.len());
    let choose = |count: usize, unavailable: &BTreeSet<usize>, assigned: &[usize]| match &weights {
        Some(weights) => choose_nodes_weighted(
            &zones,
            weights,
            count,
            max_per_zone,
            rotation,
            unavailable,
            assigned,
        ),
        None => choose_nodes(&zones, count, max_per_zone, rotation, unavailable, assigned),
    };
    // With fewer writable nodes than pieces (an AZ or nodes DOWN), place as many as the AZ rule
    // allows; the stripe commits degraded if that is at least k + 1 and the healer completes it.
    let mut wanted = stripe.pieces.len();
    let nodes = loop {
        match choose(wanted, &unavailable, &[]) {
            Ok(nodes) => break nodes,
            Err(_) if wanted > minimum_shards => wanted -= 1,
            Err(_) => {
                let placeable = placeable_shards(&zones, max_per_zone, &unavailable);
                return Err(placement_refused(scheme, placeable, minimum_shards));
            }
        }
    };
    if nodes.len() < stripe.pieces.len() {
        tracing::debug!(
            placed = nodes.len(),
            pieces = stripe.pieces.len(),
            "degraded write: too few writable nodes for every piece"
        );
    }
    // Pieces without a node (the last parity ones) are dropped: the shard map records which
    // indexes exist.
    let mut pending: Vec<(u16, u32, PieceBuf, usize)> = stripe
        .pieces
        .into_iter()
        .zip(nodes)
        .map(|(piece, node)| {
            (
                u16::from(piece.shard.0),
                piece.crc32c,
                PieceBuf::new(piece.bytes, piece.crc32c),
                node,
            )
        })
        .collect();
    let mut stored: BTreeMap<ShardIndex, ShardPlacement> = BTreeMap::new();
    let mut stored_nodes: Vec<usize> = Vec::new();
    while !pending.is_empty() {
        let puts = pending.drain(..).map(|(shard, crc32c, piece, node)| {
            let executor = Rc::clone(&executor);
            async move {
                let shard_id = ShardId::new(
                    object_id,
                    part_number,
                    block_index,
                    cairn_common::ShardIndex(shard),
                );
                let (result, piece) = executor.storage.put(node, shard_id, piece).await;
                (shard, crc32c, node, result, piece)
            }
        });
        let mut retry = Vec::new();
        for (shard, crc32c, node, result, piece) in futures::future::join_all(puts).await {
            match result {
                Ok(()) => {
                    stored_nodes.push(node);
                    stored.insert(
                        ShardIndex(shard),
                        ShardPlacement {
                            node_id: cairn_meta_state::NodeId(
                                shared.config.storage_nodes[node].node_id,
                            ),
                            availability_zone: zones[node].to_owned(),
                            crc32c,
                        },
                    );
                }
                Err(error) => {
                    executor.metrics.shard_write_failed();
                    tracing::warn!(%error, node = shared.config.storage_nodes[node].node_id, "shard put failed; trying an alternate");
                    unavailable.insert(node);
                    if let Some(piece) = piece {
                        retry.push((shard, crc32c, piece));
                    }
                }
            }
        }
        let mut assigned = stored_nodes.clone();
        for (shard, crc32c, piece) in retry {
            // Nodes that still hold other pieces of this stripe count against their zone.
            match choose(1, &unavailable, &assigned) {
                Ok(alternate) => {
                    assigned.push(alternate[0]);
                    pending.push((shard, crc32c, piece, alternate[0]));
                }
                Err(_) => tracing::warn!(shard, "no alternate node left for a shard"),
            }
        }
    }
    let block = BlockShards {
        length_bytes: data_len_bytes,
        shards: stored,
    };
    if block.shards.len() < minimum_shards {
        let stored_count = block.shards.len();
        // Too few pieces to ever read the stripe back: the ones stored are deleted here, since
        // no shard map will ever name them.
        delete_pieces(
            &executor,
            object_id,
            part_number,
            &[(stripe.stripe_index, block)],
        )
        .await;
        return Err(placement_refused(scheme, stored_count, minimum_shards));
    }
    Ok(block)
}

/// The 503 of a stripe that cannot be placed: the AZ rule (at most m pieces per AZ) with the
/// writable nodes left holds fewer than the k + 1 pieces a commit needs. Clients see why.
fn placement_refused(scheme: Scheme, placeable: usize, minimum_shards: usize) -> S3Error {
    S3Error::PlacementUnavailable(format!(
        "Cannot place erasure-coded {}+{}: with at most {} pieces per availability zone, the \
         writable storage nodes hold only {placeable} of the {minimum_shards} pieces a write \
         needs (too many nodes or zones are down or full); retry when they return.",
        scheme.data_shards(),
        scheme.parity_shards(),
        scheme.parity_shards()
    ))
}

pub(crate) fn version_selector(version_id: Option<&str>) -> Result<VersionSelector, S3Error> {
    match version_id {
        None => Ok(VersionSelector::Current),
        Some("null") => Ok(VersionSelector::Null),
        Some(text) => VersionId::parse(text)
            .map(VersionSelector::Id)
            .ok_or_else(|| S3Error::InvalidArgument("Invalid version id specified".to_owned())),
    }
}

/// When the delete marker `marker_id` of `key` was created, from the key's versions (listed
/// with the key as prefix, so they come first, newest first); `None` when it is not among the
/// first page (a key with more than 1,000 newer versions) or the listing fails: the header is
/// then left out rather than the answer failing.
async fn delete_marker_last_modified_ms(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    marker_id: cairn_meta_state::VersionId,
) -> Option<u64> {
    let request = cairn_meta_state::ListVersionsRequest {
        bucket: bucket.to_owned(),
        prefix: key.to_owned(),
        max_keys: 1000,
        ..Default::default()
    };
    let page = context
        .executor
        .shared
        .meta
        .run(move |client| async move { client.list_versions(request).await })
        .await
        .ok()?
        .ok()?
        .ok()?;
    page.versions
        .iter()
        .find(|version| version.key == key && version.version_id == marker_id)
        .map(|version| version.last_modified_ms)
}

/// The answer to a GET or HEAD the state machine refused. A delete marker is reported as S3 does:
/// the current version being a marker is `404 NoSuchKey`, a marker named by `versionId` is
/// `405 MethodNotAllowed`, both with `x-amz-delete-marker: true` and the marker's version id.
async fn delete_marker_error(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    selector: &VersionSelector,
    error: MetaError,
) -> Result<HttpResponse, S3Error> {
    let (s3_error, marker_id) = match &error {
        MetaError::NoSuchKey {
            delete_marker: Some(version_id),
            ..
        } => (S3Error::NoSuchKey, *version_id),
        MetaError::MethodNotAllowedOnDeleteMarker { version_id } => {
            (S3Error::MethodNotAllowed, *version_id)
        }
        _ => return Err(meta_error_to_s3(&error)),
    };
    let shown_id = match selector {
        VersionSelector::Null => "null".to_owned(),
        VersionSelector::Id(version_id) => version_id.to_string(),
        // The current marker may be the null marker (a delete while versioning was suspended):
        // the null version, if it is a marker with this id, tells.
        VersionSelector::Current => {
            let null_answer = context
                .executor
                .meta_read(Query::GetObject {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version: VersionSelector::Null,
                })
                .await?;
            match null_answer {
                Err(MetaError::MethodNotAllowedOnDeleteMarker { version_id })
                    if version_id == marker_id =>
                {
                    "null".to_owned()
                }
                _ => marker_id.to_string(),
            }
        }
    };
    let mut headers = vec![
        ("x-amz-delete-marker", "true".to_owned()),
        ("x-amz-version-id", shown_id),
    ];
    // S3 dates the marker on the 405 for a GET/HEAD of its version id.
    if s3_error == S3Error::MethodNotAllowed
        && let Some(last_modified_ms) =
            delete_marker_last_modified_ms(context, bucket, key, marker_id).await
    {
        headers.push((
            "last-modified",
            format_http_date((last_modified_ms / 1000) as i64),
        ));
    }
    Ok(crate::errors::error_response_with_headers(
        context, &s3_error, &headers,
    ))
}

/// Reads an object record (the caller checked the bucket, so NoSuchKey means the key).
pub(crate) async fn read_record(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version: VersionSelector,
) -> Result<ObjectRecord, S3Error> {
    let answer = context
        .executor
        .meta_query(Query::GetObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version,
        })
        .await?;
    match answer {
        Response::Object(record) => Ok(record),
        _ => Err(S3Error::InternalError),
    }
}

/// GetObject and (with `overrides == None`) HeadObject.
pub async fn get_object(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    part_number: Option<u32>,
    overrides: Option<&ResponseOverrides>,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let selector = version_selector(version_id)?;
    let answer = context
        .executor
        .meta_read(Query::GetObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: selector.clone(),
        })
        .await?;
    let record = match answer {
        Ok(Response::Object(record)) => record,
        Ok(_) => return Err(S3Error::InternalError),
        Err(error) => return delete_marker_error(context, bucket, key, &selector, error).await,
    };
    let object_key = crate::encryption::open_object_key(
        context,
        &record.attributes,
        bucket,
        key,
        crate::encryption::HeaderFamily::Request,
    )
    .await?;
    let etag = quoted(&record.checksums.etag);
    let last_modified_unix_seconds =
        (record.committed_at_ms.unwrap_or(record.created_at_ms) / 1000) as i64;
    evaluate_conditions(
        &conditional_headers(context.headers),
        &etag,
        last_modified_unix_seconds,
        true,
    )
    .into_result()?;
    let parts = &record.erasure.parts;
    let range = match part_number {
        None => resolve_range_header(context.header("range"), record.size_bytes)?,
        Some(_) if context.header("range").is_some() => {
            return Err(S3Error::InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter".to_owned(),
            ));
        }
        // A single-PUT object is its own part 1.
        Some(SINGLE_PART_NUMBER) if parts.len() <= 1 => None,
        Some(wanted) => {
            let lengths = crate::encryption::plaintext_part_lengths(parts, object_key.is_some())?;
            let mut part_start = 0u64;
            let mut found = None;
            for (part, length_bytes) in parts.iter().zip(lengths) {
                if part.part_number == wanted && length_bytes > 0 {
                    found = Some(cairn_s3_proto::range::ByteRange {
                        first_byte: part_start,
                        last_byte_inclusive: part_start + length_bytes - 1,
                    });
                }
                part_start += length_bytes;
            }
            Some(found.ok_or(S3Error::InvalidRange)?)
        }
    };
    let (status, first_byte, length_bytes) = match range {
        Some(range) => (
            http::StatusCode::PARTIAL_CONTENT,
            range.first_byte,
            range.length_bytes(),
        ),
        None => (http::StatusCode::OK, 0, record.size_bytes),
    };
    let mut builder = http::Response::builder()
        .status(status)
        .header("etag", &etag)
        .header(
            "last-modified",
            format_http_date(last_modified_unix_seconds),
        )
        .header("accept-ranges", "bytes")
        .header("content-length", length_bytes);
    if let Some(range) = range {
        builder = builder.header("content-range", range.content_range(record.size_bytes));
    }
    if let Some(version_id) = version_id_header(bucket_record.versioning, &record) {
        builder = builder.header("x-amz-version-id", version_id);
    }
    if part_number.is_some() && parts.len() > 1 {
        builder = builder.header("x-amz-mp-parts-count", parts.len());
    }
    if let Some(count) = crate::tagging::tagging_count(&record) {
        builder = builder.header("x-amz-tagging-count", count);
    }
    if let Some(status) = crate::replication::status_of(&record.attributes) {
        builder = builder.header("x-amz-replication-status", status.as_str());
    }
    if let Some(source) =
        crate::replication::replica_source_header(context, &bucket_record, &record)
    {
        builder = builder.header(crate::replication::REPLICA_SOURCE_HEADER, source);
    }
    let overrides = overrides.cloned().unwrap_or_default();
    builder = builder.header(
        "content-type",
        overrides
            .content_type
            .as_deref()
            .unwrap_or(&record.content_type),
    );
    for (name, value) in [
        ("cache-control", &overrides.cache_control),
        ("content-disposition", &overrides.content_disposition),
        ("content-encoding", &overrides.content_encoding),
        ("content-language", &overrides.content_language),
        ("expires", &overrides.expires),
    ] {
        if let Some(value) = value {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in &record.user_metadata {
        builder = builder.header(format!("x-amz-meta-{name}"), value);
    }
    for (name, value) in crate::encryption::response_headers(object_key.as_ref()) {
        builder = builder.header(name, value);
    }
    for (name, value) in crate::object_lock::response_headers(&record) {
        builder = builder.header(name, value);
    }
    // The stored checksum covers the whole object: S3 returns it only for whole-object reads.
    if range.is_none()
        && context
            .header("x-amz-checksum-mode")
            .is_some_and(|mode| mode.eq_ignore_ascii_case("enabled"))
        && let Some(additional) = &record.checksums.additional
    {
        builder = builder.header(
            checksum_header_name(additional.algorithm),
            &additional.value_base64,
        );
    }
    if context.is_head || length_bytes == 0 {
        return builder
            .body(empty_body())
            .map_err(|_| S3Error::InternalError);
    }
    let (sender, receiver) = futures::channel::mpsc::channel(GET_CHANNEL_STRIPES);
    monoio::spawn(stream_object(
        Rc::clone(context.executor),
        record,
        first_byte..first_byte + length_bytes,
        object_key.map(|object_key| object_key.data_key),
        sender,
    ));
    let body = StreamBody::new(receiver).boxed_unsync();
    // A response header the metadata allowed but HTTP forbids is a server-side bug, not the
    // client's.
    builder.body(body).map_err(|_| S3Error::InternalError)
}

pub(crate) type FrameSender = futures::channel::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// Produces `range` of the object into `sender`, stripe by stripe. An error after the headers
/// went out can only abort the response (the client sees a short body).
pub(crate) async fn stream_object(
    executor: Rc<Executor>,
    record: ObjectRecord,
    range: std::ops::Range<u64>,
    data_key: Option<cairn_sse::DataKey>,
    mut sender: FrameSender,
) {
    use futures::SinkExt;
    if let Err(error) = decode_into(&executor, &record, range, data_key, &mut sender).await {
        tracing::warn!(
            bucket = record.bucket,
            key = record.key,
            code = error.code(),
            "GET aborted"
        );
        let _ = sender
            .send(Err(std::io::Error::other(error.to_string())))
            .await;
    }
}

async fn decode_into(
    executor: &Rc<Executor>,
    record: &ObjectRecord,
    range: std::ops::Range<u64>,
    data_key: Option<cairn_sse::DataKey>,
    sender: &mut FrameSender,
) -> Result<(), S3Error> {
    let scheme = parse_scheme(&record.erasure.scheme)?;
    let piece_size_bytes = record.erasure.piece_size_bytes as usize;
    let object_id = shard_object_id(executor, record);
    let plaintext_lengths =
        crate::encryption::plaintext_part_lengths(&record.erasure.parts, data_key.is_some())?;
    // Each part is striped on its own (a multipart object's parts were encoded separately), so
    // the range is cut at part boundaries and each piece decoded with its part's layout. The
    // range is in plaintext bytes; an encrypted part is read over the chunks covering it.
    let mut part_start = 0u64;
    for (part, plaintext_length) in record.erasure.parts.iter().zip(plaintext_lengths) {
        let part_end = part_start + plaintext_length;
        let first = range.start.max(part_start);
        let last = range.end.min(part_end);
        if first < last {
            let layout = StripeLayout::new(scheme, piece_size_bytes)
                .map_err(|error| ec_error_to_s3(&error))?
                .object(part.length_bytes);
            let local = first - part_start..last - part_start;
            let (mut sink, stored) = match &data_key {
                None => (PartSink::Plain(sender), local),
                Some(data_key) => {
                    let (decryptor, stored) = cairn_sse::ChunkDecryptor::new(
                        data_key,
                        part.part_number,
                        plaintext_length,
                        local,
                    );
                    (
                        PartSink::Decrypt {
                            sender,
                            decryptor: Box::new(decryptor),
                        },
                        stored,
                    )
                }
            };
            if !decode_part(executor, record, object_id, part, layout, stored, &mut sink).await? {
                return Ok(());
            }
            sink.finish()?;
        }
        part_start = part_end;
    }
    Ok(())
}

/// Where a part's decoded stored bytes go: straight to the client, or through the decryptor.
enum PartSink<'a> {
    Plain(&'a mut FrameSender),
    Decrypt {
        sender: &'a mut FrameSender,
        decryptor: Box<cairn_sse::ChunkDecryptor>,
    },
}

impl PartSink<'_> {
    /// Sends decoded bytes, `buffer[range]`, on; `Ok(false)` when the client went away.
    async fn send(
        &mut self,
        mut buffer: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> Result<bool, S3Error> {
        use futures::SinkExt;
        let (sender, frames) = match self {
            PartSink::Plain(sender) => (sender, [None, Some(Bytes::from(buffer).slice(range))]),
            PartSink::Decrypt { sender, decryptor } => {
                // Opened where the decoder put them: no second buffer, no copy. A chunk begun in
                // the previous piece comes back apart and goes first.
                let (head, plaintext) =
                    decryptor
                        .open_in_place(&mut buffer, range)
                        .map_err(|error| {
                            // A chunk that does not open is corrupt data that passed the pieces'
                            // CRCs, or pieces from elsewhere: never plaintext for the client.
                            tracing::warn!(%error, "encrypted chunk did not open");
                            S3Error::InternalError
                        })?;
                (
                    sender,
                    [
                        head.map(Bytes::from),
                        Some(Bytes::from(buffer).slice(plaintext)),
                    ],
                )
            }
        };
        for frame in frames
            .into_iter()
            .flatten()
            .filter(|frame| !frame.is_empty())
        {
            if sender.send(Ok(Frame::data(frame))).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn finish(&self) -> Result<(), S3Error> {
        match self {
            PartSink::Plain(_) => Ok(()),
            PartSink::Decrypt { decryptor, .. } => decryptor.finish().map_err(|error| {
                tracing::warn!(%error, "encrypted part ended early");
                S3Error::InternalError
            }),
        }
    }
}

/// Streams `range` (part-relative) of one part; `Ok(false)` when the client went away.
async fn decode_part(
    executor: &Rc<Executor>,
    record: &ObjectRecord,
    object_id: u128,
    part: &PartShards,
    layout: cairn_ec::ObjectLayout,
    range: std::ops::Range<u64>,
    sink: &mut PartSink<'_>,
) -> Result<bool, S3Error> {
    let scheme = layout.scheme();
    let piece_size_bytes = layout.piece_size_bytes();
    let pool = executor.piece_pool(piece_size_bytes, scheme.total_shards());
    let mut decoder = StripeDecoder::new(new_codec(scheme), layout, range, pool)
        .map_err(|error| ec_error_to_s3(&error))?;
    // Whether the stripe being assembled lost a piece (it is then decoded from parity).
    let mut stripe_degraded = false;
    loop {
        match decoder
            .next_step()
            .map_err(|error| ec_error_to_s3(&error))?
        {
            DecoderStep::Fetch {
                stripe_index,
                shards,
            } => {
                let block = part
                    .blocks
                    .get(stripe_index as usize)
                    .ok_or(S3Error::InternalError)?;
                let block_index = stripe_index as u32;
                // Pieces on nodes the registry reports DOWN are decoded around at once instead
                // of waiting for a connection to a dead node to fail.
                let down = executor.shared.node_availability().down;
                let fetches = shards.iter().map(|shard| {
                    let placement = block.shards.get(&ShardIndex(shard as u16));
                    let node = placement
                        .and_then(|placement| {
                            executor.shared.node_positions.get(&placement.node_id.0).copied()
                        })
                        .filter(|node| !down.contains(node));
                    let crc32c = placement.map(|placement| placement.crc32c);
                    let executor = Rc::clone(executor);
                    async move {
                        let (Some(node), Some(crc32c)) = (node, crc32c) else {
                            return (shard, None, false);
                        };
                        let shard_id = ShardId::new(
                            object_id,
                            part.part_number,
                            block_index,
                            cairn_common::ShardIndex(shard as u16),
                        );
                        match executor.storage.get(node, shard_id, piece_size_bytes).await {
                            Ok((bytes, actual)) => (shard, Some((bytes, actual, crc32c)), false),
                            Err(error) => {
                                tracing::warn!(%error, shard, "shard read failed; decoding around it");
                                (shard, None, read_error_is_reportable(&error))
                            }
                        }
                    }
                });
                let mut bad_piece = false;
                for (shard, fetched, reportable) in futures::future::join_all(fetches).await {
                    let index = cairn_ec::ShardIndex(shard as u8);
                    bad_piece |= reportable;
                    match fetched {
                        Some((bytes, actual, crc32c)) => {
                            let verdict = decoder
                                .push_piece_vec_hashed(index, bytes, actual, crc32c)
                                .map_err(|error| ec_error_to_s3(&error))?;
                            if verdict == PieceVerdict::Corrupt {
                                stripe_degraded = true;
                                bad_piece = true;
                                executor.metrics.shard_read_failed(ShardReadError::Corrupt);
                                tracing::warn!(
                                    shard,
                                    stripe_index,
                                    "corrupt shard piece; decoding around it"
                                );
                            }
                        }
                        None => {
                            stripe_degraded = true;
                            executor
                                .metrics
                                .shard_read_failed(ShardReadError::Unavailable);
                            decoder
                                .mark_unavailable(index)
                                .map_err(|error| ec_error_to_s3(&error))?
                        }
                    }
                }
                if bad_piece {
                    // The healer repairs the version soon (see `crate::suspects`).
                    executor
                        .shared
                        .suspects
                        .report(&executor.shared.meta, record);
                }
            }
            // Every fetch above completes before the next step, so nothing is ever outstanding.
            DecoderStep::Wait => return Err(S3Error::InternalError),
            DecoderStep::Ready => {
                if std::mem::take(&mut stripe_degraded) {
                    executor.metrics.degraded_stripe_read();
                }
                // Each piece goes on as it is (decrypted in place), without first being copied
                // into one stripe buffer.
                let segments = decoder
                    .take_output()
                    .map_err(|error| ec_error_to_s3(&error))?;
                for segment in segments {
                    if !sink.send(segment.buffer, segment.range).await? {
                        // The client went away; stop reading shards for it.
                        return Ok(false);
                    }
                }
            }
            DecoderStep::Done => return Ok(true),
        }
    }
}

/// CopyObject: the source is decoded from its shards and re-encoded as a new single-part object
/// through the same PUT transaction (prepare, stream, commit); nothing is buffered whole.
/// The record a copy reads (`x-amz-copy-source`, with its `versionId`), once the
/// `x-amz-copy-source-if-*` conditions held (any failure is 412). Shared by CopyObject and
/// UploadPartCopy.
pub(crate) async fn read_copy_source(
    context: &RequestContext<'_>,
    source: &cairn_s3_proto::endpoint::CopySource,
) -> Result<ObjectRecord, S3Error> {
    use cairn_s3_proto::conditions::evaluate_copy_source_conditions;
    use cairn_s3_proto::headers::copy_source_conditional_headers;
    let source_record = read_record(
        context,
        &source.bucket,
        &source.key,
        version_selector(source.version_id.as_deref())?,
    )
    .await?;
    let source_last_modified_unix_seconds = (source_record
        .committed_at_ms
        .unwrap_or(source_record.created_at_ms)
        / 1000) as i64;
    evaluate_copy_source_conditions(
        &copy_source_conditional_headers(context.headers),
        &quoted(&source_record.checksums.etag),
        source_last_modified_unix_seconds,
    )?;
    Ok(source_record)
}

pub async fn copy_object(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    source: &cairn_s3_proto::endpoint::CopySource,
) -> Result<HttpResponse, S3Error> {
    use cairn_s3_proto::headers::{MetadataDirective, check_copy_onto_itself, metadata_directive};
    let executor = context.executor;
    let config = &executor.shared.config;
    let bucket_record = owned_bucket(context, bucket).await?;
    let directive = metadata_directive(context.headers)?;
    // A copy onto itself that names an encryption re-encrypts the object (S3's way to encrypt
    // existing objects, or to move them to another KMS key), so it changes something.
    let names_encryption = context.header("x-amz-server-side-encryption").is_some()
        || context
            .header("x-amz-server-side-encryption-customer-algorithm")
            .is_some();
    if !names_encryption {
        check_copy_onto_itself(
            &source.bucket,
            &source.key,
            source.version_id.as_deref(),
            bucket,
            key,
            directive,
        )?;
    }
    let source_bucket_record = crate::bucket::readable_copy_source_bucket(context, source).await?;
    let source_record = read_copy_source(context, source).await?;
    let source_key = crate::encryption::open_object_key(
        context,
        &source_record.attributes,
        &source.bucket,
        &source.key,
        crate::encryption::HeaderFamily::CopySource,
    )
    .await?;
    let new_key = crate::encryption::new_object_key(context, &bucket_record, key).await?;
    let data_key = new_key.key.as_ref().map(|object_key| &object_key.data_key);
    let source_version_id = version_id_header(source_bucket_record.versioning, &source_record);
    let size_bytes = check_upload_length(Some(source_record.size_bytes))?;
    let (content_type, metadata) = match directive {
        MetadataDirective::Copy => (
            source_record.content_type.clone(),
            source_record.user_metadata.clone(),
        ),
        MetadataDirective::Replace => (
            context
                .header("content-type")
                .unwrap_or("binary/octet-stream")
                .to_owned(),
            user_metadata(context.headers)?.into_iter().collect(),
        ),
    };
    let scheme = parse_scheme(&bucket_record.ec_scheme)?;
    let configured_layout = StripeLayout::new(scheme, config.piece_size_bytes as usize)
        .map_err(|error| ec_error_to_s3(&error))?;
    let token = format!("gw-{}", context.request_id);
    let quota = crate::quota::admit(
        executor,
        &bucket_record,
        crate::quota::Demand::object(size_bytes),
    )
    .await?;
    let prepare = Command::PrepareWrite(PrepareWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        idempotency_token: token.clone(),
        size_bytes,
        content_type,
        owner: context.caller.owner.clone(),
        user_metadata: metadata,
        storage_class: StorageClass::Standard,
        acl: Default::default(),
        ec_scheme: bucket_record.ec_scheme.clone(),
        piece_size_bytes: object_piece_size_bytes(
            configured_layout,
            size_bytes,
            data_key.is_some(),
        ),
        versioning: bucket_record.versioning,
        now_ms: now_unix_millis(),
        attributes: {
            let mut attributes = crate::tagging::copy_attributes(context, &source_record)?;
            // Lock settings are not copied: the request's headers or the bucket's default apply.
            attributes.extend(crate::object_lock::new_version_attributes(
                context,
                &bucket_record,
                now_unix_millis(),
                false,
            )?);
            attributes.extend(new_key.attributes.clone());
            attributes
        },
    });
    let Response::Prepared { record, .. } = executor.meta_write(prepare).await? else {
        return Err(S3Error::InternalError);
    };
    drop(quota);
    let object_id = shard_object_id(executor, &record);
    let (sender, receiver) = futures::channel::mpsc::channel(GET_CHANNEL_STRIPES);
    if size_bytes > 0 {
        monoio::spawn(stream_object(
            Rc::clone(executor),
            source_record,
            0..size_bytes,
            source_key.map(|object_key| object_key.data_key),
            sender,
        ));
    } else {
        drop(sender);
    }
    let expectations = BodyExpectations {
        length_bytes: Some(size_bytes),
        ..Default::default()
    };
    let stored = stream_and_store(
        executor,
        scheme,
        record.erasure.piece_size_bytes as usize,
        object_id,
        SINGLE_PART_NUMBER,
        PayloadSource::Copy(receiver),
        expectations,
        data_key,
    )
    .await;
    let (checksums, blocks) = match stored {
        Ok(stored) => stored,
        Err(error) => {
            abort_write(executor, bucket, key, record.version_id).await;
            return Err(error);
        }
    };
    let committed_at_ms = now_unix_millis();
    let commit = Command::CommitWrite(CommitWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: record.version_id,
        idempotency_token: token,
        checksums: checksums.clone(),
        parts: vec![PartShards {
            part_number: SINGLE_PART_NUMBER,
            length_bytes: crate::encryption::stored_length_bytes(size_bytes, data_key.is_some()),
            blocks,
        }],
        now_ms: committed_at_ms,
    });
    let commit = crate::replication::queue_write(&bucket_record, key, &record.attributes, commit);
    if let Err(error) = executor.meta_write(commit).await {
        abort_write(executor, bucket, key, record.version_id).await;
        return Err(error);
    }
    let mut response = crate::server::xml_response(cairn_s3_proto::xml::copy_result_xml(
        cairn_s3_proto::xml::CopyResultKind::Object,
        &quoted(&checksums.etag),
        committed_at_ms as i64,
        &Vec::new(),
    ));
    insert_version_id(&mut response, bucket_record.versioning, &record);
    crate::encryption::insert_response_headers(&mut response, new_key.key.as_ref());
    if let Some(version_id) = source_version_id
        && let Ok(value) = http::HeaderValue::from_str(&version_id)
    {
        response
            .headers_mut()
            .insert("x-amz-copy-source-version-id", value);
    }
    Ok(response)
}

/// What one delete did, in S3's terms.
struct DeleteOutcome {
    /// `x-amz-delete-marker: true`: a marker was created, or the version removed was one.
    delete_marker: bool,
    /// `x-amz-version-id`: the version removed or the marker created (S3 id, `null` included).
    version_id: Option<String>,
}

/// Deletes one key (or version). Deleting what is not there succeeds, as in S3.
async fn delete_one(
    context: &RequestContext<'_>,
    bucket_record: &cairn_meta_state::BucketRecord,
    key: &str,
    version_id: Option<&str>,
    condition: &Option<CheckedCondition>,
    bypass_governance: bool,
) -> Result<DeleteOutcome, S3Error> {
    let delete = cairn_meta_state::DeleteObject {
        bucket: bucket_record.name.clone(),
        key: key.to_owned(),
        version: version_selector(version_id)?,
        versioning: bucket_record.versioning,
        owner: context.caller.owner.clone(),
        now_ms: now_unix_millis(),
    };
    let replica_attributes =
        crate::replication::replica_marker_attributes(context, bucket_record, key, version_id)?;
    let replica = replica_attributes.is_some();
    let command = match replica_attributes {
        Some(attributes) => Command::ReplicaDeleteMarker { delete, attributes },
        None => Command::DeleteObject(delete),
    };
    let output = context
        .executor
        .meta
        .write(crate::replication::queue_delete(
            bucket_record,
            key,
            version_id,
            replica,
            crate::object_lock::with_bypass(with_condition(command, condition), bypass_governance),
        ))
        .await
        .map_err(|error| crate::errors::client_error_to_s3(&error))?;
    // Deleting a version by id answers that id; S3 echoes it even when nothing was there.
    let requested = version_id.map(str::to_owned);
    match output.result {
        Ok(Response::Deleted {
            removed,
            delete_marker,
        }) => Ok(match (requested, delete_marker) {
            (Some(requested), _) => DeleteOutcome {
                delete_marker: removed.is_some_and(|record| record.delete_marker),
                version_id: Some(requested),
            },
            (None, Some(marker)) => DeleteOutcome {
                delete_marker: true,
                version_id: Some(s3_version_id(&marker)),
            },
            (None, None) => DeleteOutcome {
                delete_marker: false,
                version_id: None,
            },
        }),
        Ok(_) => Err(S3Error::InternalError),
        Err(MetaError::NoSuchKey { .. } | MetaError::NoSuchVersion { .. })
            if condition.is_none() =>
        {
            Ok(DeleteOutcome {
                delete_marker: false,
                version_id: requested,
            })
        }
        Err(error) => Err(meta_error_to_s3(&error)),
    }
}

pub async fn delete_object(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let mut builder = http::Response::builder().status(http::StatusCode::NO_CONTENT);
    // A conditional delete (`If-Match`) of a missing key is NoSuchKey, as in S3.
    let condition = check_write_condition(context, bucket, key, false).await?;
    let bypass = crate::object_lock::bypass_governance(context, &bucket_record, key);
    let outcome = delete_one(context, &bucket_record, key, version_id, &condition, bypass).await?;
    if outcome.delete_marker {
        builder = builder.header("x-amz-delete-marker", "true");
    }
    if let Some(version_id) = outcome.version_id {
        builder = builder.header("x-amz-version-id", version_id);
    }
    builder
        .body(empty_body())
        .map_err(|_| S3Error::InternalError)
}

/// Deletes running at once for one DeleteObjects request.
const DELETE_OBJECTS_CONCURRENCY: usize = 16;

/// DeleteObjects: up to 1,000 keys; each succeeds or fails on its own.
pub async fn delete_objects(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    use cairn_s3_proto::xml::{
        DeleteFailure, DeletedObject, delete_result_xml, parse_delete_objects,
    };
    use futures::StreamExt;
    // Authorised per key, as S3 does: a key the caller may not delete is an `AccessDenied`
    // entry of the result, the others are deleted.
    let bucket_record = crate::bucket::read_bucket(context, bucket).await?;
    let document = crate::bucket::read_verified_document(context, body).await?;
    let request = parse_delete_objects(&document)?;
    let bucket_record = &bucket_record;
    let outcomes: Vec<_> = futures::stream::iter(request.objects)
        .map(|object| async move {
            let action = if object.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            let outcome =
                match crate::policy::authorize(context, bucket_record, action, Some(&object.key)) {
                    Ok(true) => {
                        delete_one(
                            context,
                            bucket_record,
                            &object.key,
                            object.version_id.as_deref(),
                            &None,
                            crate::object_lock::bypass_governance(
                                context,
                                bucket_record,
                                &object.key,
                            ),
                        )
                        .await
                    }
                    Ok(false) => Err(S3Error::AccessDenied),
                    Err(error) => Err(error),
                };
            (object, outcome)
        })
        .buffered(DELETE_OBJECTS_CONCURRENCY)
        .collect()
        .await;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for (object, outcome) in outcomes {
        match outcome {
            Ok(outcome) => {
                if !request.quiet {
                    // A marker created (no version named) is reported by its own id.
                    let created_marker = object.version_id.is_none() && outcome.delete_marker;
                    deleted.push(DeletedObject {
                        key: object.key,
                        version_id: object.version_id,
                        delete_marker: outcome.delete_marker.then_some(true),
                        delete_marker_version_id: if created_marker {
                            outcome.version_id
                        } else {
                            None
                        },
                    });
                }
            }
            Err(error) => failures.push(DeleteFailure {
                key: object.key,
                version_id: object.version_id,
                error,
            }),
        }
    }
    Ok(crate::server::xml_response(delete_result_xml(
        &deleted, &failures,
    )))
}
