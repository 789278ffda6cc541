//! Multipart upload: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads, UploadPartCopy.
//!
//! Model: an upload is a metadata record (scheme and piece size fixed at creation). Each part is
//! streamed and erasure-coded exactly like a single PUT, under shard names
//! `ShardId(object id of the upload, part number, stripe, shard)`, and recorded with
//! `UploadPart` once its shards are durable; re-uploading a part number replaces it (the old
//! shards become garbage in the metadata service). Completion checks the listed parts against
//! the stored ones (`plan_completion`: ETags, 5 MiB minimum but for the last) and commits the
//! object whose parts are those parts' shard maps, each part striped on its own.
//!
//! UploadPartCopy is UploadPart whose bytes come from a committed object (all of it, or
//! `x-amz-copy-source-range`) instead of the request: the source is decoded stripe by stripe into
//! a bounded channel and re-encoded as the part, so the part is never whole in memory.
//!
//! Invariant: the object id of an upload's shards is derived from the upload id, which is also
//! what the committed record's `shard_name_id` returns, so reads find the parts' shards.

use cairn_meta_state::{
    Checksums, Command, MultipartUpload, Query, Response, StorageClass, UploadId,
};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::body::BodyExpectations;
use cairn_s3_proto::checksum::{parse_content_md5, part_md5_from_etag};
use cairn_s3_proto::headers::{check_upload_length, checksum_request, parse_length, user_metadata};
use cairn_s3_proto::multipart::{StoredPart, plan_completion};
use cairn_s3_proto::sigv4::PayloadMode;
use cairn_s3_proto::xml::{
    complete_multipart_upload_xml, initiate_multipart_upload_xml, parse_complete_multipart_upload,
};

use crate::body::RequestBody;
use crate::bucket::owned_bucket;
use crate::errors::{ec_error_to_s3, meta_error_to_s3};
use crate::object::{
    GET_CHANNEL_STRIPES, parse_scheme, put_response, quoted_etag, stream_and_store, stream_object,
};
use crate::server::{HttpResponse, RequestContext, empty_body, now_unix_millis, xml_response};

fn parse_upload_id(text: &str) -> Result<UploadId, S3Error> {
    UploadId::parse(text).ok_or(S3Error::NoSuchUpload)
}

async fn read_upload(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: UploadId,
) -> Result<MultipartUpload, S3Error> {
    let answer = context
        .executor
        .meta_query(Query::GetUpload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
        })
        .await?;
    match answer {
        Response::Upload(upload) => Ok(upload),
        _ => Err(S3Error::InternalError),
    }
}

pub async fn create_multipart_upload(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    // The upload's data key encrypts every part (each part number is bound into its chunks).
    let new_key = crate::encryption::new_object_key(context, &bucket_record, key).await?;
    let command = Command::CreateMultipartUpload(cairn_meta_state::CreateMultipartUpload {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        owner: context.caller.owner.clone(),
        content_type: context
            .header("content-type")
            .unwrap_or("binary/octet-stream")
            .to_owned(),
        user_metadata: user_metadata(context.headers)?.into_iter().collect(),
        storage_class: StorageClass::Standard,
        acl: Default::default(),
        ec_scheme: bucket_record.ec_scheme.clone(),
        piece_size_bytes: context.executor.shared.config.piece_size_bytes,
        now_ms: now_unix_millis(),
        attributes: {
            let mut attributes = crate::tagging::request_attributes(context)?;
            attributes.extend(crate::object_lock::new_version_attributes(
                context,
                &bucket_record,
                now_unix_millis(),
                false,
            )?);
            attributes.extend(new_key.attributes.clone());
            if crate::replication::is_replica_write(context, &bucket_record, key)? {
                attributes.extend(crate::replication::replica_attributes(context)?);
            }
            attributes
        },
    });
    let Response::Upload(upload) = context.executor.meta_write(command).await? else {
        return Err(S3Error::InternalError);
    };
    let mut response = xml_response(initiate_multipart_upload_xml(
        bucket,
        key,
        &upload.upload_id.to_string(),
    ));
    crate::encryption::insert_response_headers(&mut response, new_key.key.as_ref());
    Ok(response)
}

pub async fn upload_part(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let executor = context.executor;
    let bucket_record = owned_bucket(context, bucket).await?;
    let upload = read_upload(context, bucket, key, parse_upload_id(upload_id)?).await?;
    let scheme = parse_scheme(&upload.ec_scheme)?;
    let piece_size_bytes = upload.piece_size_bytes as usize;
    cairn_ec::StripeLayout::new(scheme, piece_size_bytes)
        .map_err(|error| ec_error_to_s3(&error))?;
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
        checksum: if chunked {
            None
        } else {
            Some(checksum_request(context.headers)?)
        },
    };
    let object_key = crate::encryption::open_object_key(
        context,
        &upload.attributes,
        bucket,
        key,
        crate::encryption::HeaderFamily::Request,
    )
    .await?;
    // A part counts from the moment its record is applied; an upload that cannot fit is refused
    // here, before its data is written, rather than at completion.
    let _quota = crate::quota::admit(
        executor,
        &bucket_record,
        crate::quota::Demand::bytes(size_bytes),
    )
    .await?;
    let object_id = upload_object_id(context, bucket, key, upload.upload_id);
    let (checksums, blocks) = stream_and_store(
        executor,
        scheme,
        piece_size_bytes,
        object_id,
        part_number,
        crate::body::PayloadSource::Request(body),
        expectations,
        object_key.as_ref().map(|object_key| &object_key.data_key),
    )
    .await?;
    let command = Command::UploadPart(cairn_meta_state::UploadPart {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload.upload_id,
        part_number,
        size_bytes,
        etag: checksums.etag.clone(),
        checksum: checksums.additional.clone(),
        blocks,
        now_ms: now_unix_millis(),
    });
    // A refused part leaves orphan shards; the janitor's scan for unknown shards reclaims them.
    executor.meta_write(command).await?;
    let mut response = put_response(&checksums);
    crate::encryption::insert_response_headers(&mut response, object_key.as_ref());
    Ok(response)
}

/// The object id an upload's part shards are named with.
fn upload_object_id(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: cairn_meta_state::UploadId,
) -> u128 {
    let group = context
        .executor
        .shared
        .meta
        .client()
        .partition_of(bucket, key);
    // Partition groups are numbered 1..=P (group 0 is the bucket service).
    cairn_meta_state::shard_object_id((group.0 - 1) as u32, upload_id.0)
}

/// UploadPartCopy: `x-amz-copy-source` (with `?versionId=`, read like CopyObject's), the
/// optional `x-amz-copy-source-range: bytes=first-last` (malformed: `InvalidArgument` when
/// routed; past the source's end: `InvalidRange`) and the `x-amz-copy-source-if-*` conditions
/// (any failure is 412). Answers `CopyPartResult` with the part's ETag.
pub async fn upload_part_copy(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    source: &cairn_s3_proto::endpoint::CopySource,
    source_range: Option<cairn_s3_proto::range::ByteRange>,
) -> Result<HttpResponse, S3Error> {
    use cairn_s3_proto::range::check_copy_source_range;
    let executor = context.executor;
    let bucket_record = owned_bucket(context, bucket).await?;
    crate::bucket::readable_copy_source_bucket(context, source).await?;
    let upload = read_upload(context, bucket, key, parse_upload_id(upload_id)?).await?;
    let scheme = parse_scheme(&upload.ec_scheme)?;
    let piece_size_bytes = upload.piece_size_bytes as usize;
    cairn_ec::StripeLayout::new(scheme, piece_size_bytes)
        .map_err(|error| ec_error_to_s3(&error))?;
    let source_record = crate::object::read_copy_source(context, source).await?;
    let source_key = crate::encryption::open_object_key(
        context,
        &source_record.attributes,
        &source.bucket,
        &source.key,
        crate::encryption::HeaderFamily::CopySource,
    )
    .await?;
    let object_key = crate::encryption::open_object_key(
        context,
        &upload.attributes,
        bucket,
        key,
        crate::encryption::HeaderFamily::Request,
    )
    .await?;
    let range = match source_range {
        Some(range) => {
            check_copy_source_range(range, source_record.size_bytes)?;
            range.first_byte..range.last_byte_inclusive + 1
        }
        None => 0..source_record.size_bytes,
    };
    let size_bytes = check_upload_length(Some(range.end - range.start))?;
    let _quota = crate::quota::admit(
        executor,
        &bucket_record,
        crate::quota::Demand::bytes(size_bytes),
    )
    .await?;
    let source_version_id = crate::object::s3_version_id(&source_record);
    let (sender, receiver) = futures::channel::mpsc::channel(GET_CHANNEL_STRIPES);
    if size_bytes > 0 {
        monoio::spawn(stream_object(
            std::rc::Rc::clone(executor),
            source_record,
            range,
            source_key.map(|source_key| source_key.data_key),
            sender,
        ));
    } else {
        drop(sender);
    }
    let object_id = upload_object_id(context, bucket, key, upload.upload_id);
    let (checksums, blocks) = stream_and_store(
        executor,
        scheme,
        piece_size_bytes,
        object_id,
        part_number,
        crate::body::PayloadSource::Copy(receiver),
        BodyExpectations {
            length_bytes: Some(size_bytes),
            ..Default::default()
        },
        object_key.as_ref().map(|object_key| &object_key.data_key),
    )
    .await?;
    let uploaded_at_ms = now_unix_millis();
    let command = Command::UploadPart(cairn_meta_state::UploadPart {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload.upload_id,
        part_number,
        size_bytes,
        etag: checksums.etag.clone(),
        checksum: checksums.additional.clone(),
        blocks,
        now_ms: uploaded_at_ms,
    });
    executor.meta_write(command).await?;
    let mut response = xml_response(cairn_s3_proto::xml::copy_result_xml(
        cairn_s3_proto::xml::CopyResultKind::Part,
        &quoted_etag(&checksums.etag),
        uploaded_at_ms as i64,
        &Vec::new(),
    ));
    crate::encryption::insert_response_headers(&mut response, object_key.as_ref());
    if source.version_id.is_some()
        && let Ok(value) = http::HeaderValue::from_str(&source_version_id)
    {
        response
            .headers_mut()
            .insert("x-amz-copy-source-version-id", value);
    }
    Ok(response)
}

pub async fn complete_multipart_upload(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    mut body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let upload = read_upload(context, bucket, key, parse_upload_id(upload_id)?).await?;
    let document = body
        .read_to_end(context.executor.shared.config.max_xml_body_bytes)
        .await?;
    body.finish()?;
    let requested = parse_complete_multipart_upload(&document)?;
    let condition = crate::object::check_write_condition(context, bucket, key, true).await?;
    let plan = plan_completion(&requested, |part_number| {
        let part = upload.parts.get(&part_number)?;
        Some(StoredPart {
            md5: part_md5_from_etag(&part.etag)?,
            size_bytes: part.size_bytes,
        })
    })?;
    let command = Command::CompleteMultipartUpload(cairn_meta_state::CompleteMultipartUpload {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload.upload_id,
        parts: requested
            .iter()
            .map(|part| cairn_meta_state::CompletedPart {
                part_number: part.part_number,
                etag: part.etag.trim_matches('"').to_owned(),
            })
            .collect(),
        checksums: Checksums {
            etag: plan.etag.trim_matches('"').to_owned(),
            additional: None,
        },
        versioning: bucket_record.versioning,
        now_ms: now_unix_millis(),
    });
    let command = crate::replication::queue_write(
        &bucket_record,
        key,
        &upload.attributes,
        crate::object::with_condition(command, &condition),
    );
    // The parts' bytes are counted already: a completion adds one object.
    let _quota = crate::quota::admit(
        context.executor,
        &bucket_record,
        crate::quota::Demand::object(0),
    )
    .await?;
    let Response::Committed { record, .. } = context.executor.meta_write(command).await? else {
        return Err(S3Error::InternalError);
    };
    let mut response = xml_response(complete_multipart_upload_xml(
        &format!("/{bucket}/{key}"),
        bucket,
        key,
        &quoted_etag(&record.checksums.etag),
        &Vec::new(),
    ));
    crate::object::insert_version_id(&mut response, bucket_record.versioning, &record);
    for (name, value) in crate::encryption::stored_mode_headers(context, &upload.attributes) {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

pub async fn abort_multipart_upload(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let command = Command::AbortMultipartUpload(cairn_meta_state::AbortMultipartUpload {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: parse_upload_id(upload_id)?,
        now_ms: now_unix_millis(),
    });
    context.executor.meta_write(command).await?;
    Ok(http::Response::builder()
        .status(http::StatusCode::NO_CONTENT)
        .body(empty_body())
        .expect("valid headers"))
}

fn owner_of(name: &str) -> cairn_s3_proto::xml::Owner {
    cairn_s3_proto::xml::Owner {
        id: name.to_owned(),
        display_name: name.to_owned(),
    }
}

pub async fn list_parts(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    max_parts: u32,
    part_number_marker: u32,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let upload = read_upload(context, bucket, key, parse_upload_id(upload_id)?).await?;
    let answer = context
        .executor
        .meta_read(Query::ListParts(cairn_meta_state::ListPartsRequest {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload.upload_id,
            part_number_marker,
            max_parts,
        }))
        .await?
        .map_err(|error| meta_error_to_s3(&error))?;
    let Response::PartList(page) = answer else {
        return Err(S3Error::InternalError);
    };
    let document = cairn_s3_proto::xml::list_parts_xml(&cairn_s3_proto::xml::ListPartsPage {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload.upload_id.to_string(),
        initiator: owner_of(&upload.owner),
        owner: owner_of(&upload.owner),
        storage_class: "STANDARD".to_owned(),
        part_number_marker,
        next_part_number_marker: page.next_part_number_marker,
        max_parts,
        is_truncated: page.is_truncated,
        parts: page
            .parts
            .iter()
            .map(|part| cairn_s3_proto::xml::PartSummary {
                part_number: part.part_number,
                last_modified_unix_millis: part.uploaded_at_ms as i64,
                etag: quoted_etag(&part.etag),
                size_bytes: part.size_bytes,
                checksums: Vec::new(),
            })
            .collect(),
    });
    Ok(xml_response(document))
}

/// ListMultipartUploads. The metadata service lists uploads by key; a delimiter is not applied
/// (no common prefixes are reported).
pub async fn list_multipart_uploads(
    context: &RequestContext<'_>,
    bucket: &str,
    params: cairn_s3_proto::endpoint::ListUploadsParams,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let request = cairn_meta_state::ListUploadsRequest {
        bucket: bucket.to_owned(),
        prefix: params.prefix.clone(),
        key_marker: (!params.key_marker.is_empty()).then(|| params.key_marker.clone()),
        upload_id_marker: UploadId::parse(&params.upload_id_marker),
        max_uploads: params.max_uploads,
    };
    let page = context
        .executor
        .shared
        .meta
        .run(move |client| async move { client.list_uploads(request).await })
        .await
        .and_then(|answer| answer)
        .map_err(|error| crate::errors::client_error_to_s3(&error))?
        .map_err(|error| meta_error_to_s3(&error))?;
    let document =
        cairn_s3_proto::xml::list_multipart_uploads_xml(&cairn_s3_proto::xml::ListUploadsPage {
            bucket: bucket.to_owned(),
            key_marker: params.key_marker.clone(),
            upload_id_marker: params.upload_id_marker.clone(),
            next_key_marker: page.next_key_marker.clone(),
            next_upload_id_marker: page.next_upload_id_marker.map(|id| id.to_string()),
            prefix: params.prefix.clone(),
            delimiter: params.delimiter.clone(),
            max_uploads: params.max_uploads,
            encoding: params.encoding,
            is_truncated: page.is_truncated,
            uploads: page
                .uploads
                .iter()
                .map(|upload| cairn_s3_proto::xml::UploadSummary {
                    key: upload.key.clone(),
                    upload_id: upload.upload_id.to_string(),
                    initiator: owner_of(&upload.owner),
                    owner: owner_of(&upload.owner),
                    storage_class: "STANDARD".to_owned(),
                    initiated_unix_millis: upload.initiated_at_ms as i64,
                })
                .collect(),
            common_prefixes: Vec::new(),
        });
    Ok(xml_response(document))
}
