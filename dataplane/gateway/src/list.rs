//! ListObjectsV2 and ListObjects (v1): the metadata client fans the request out to every
//! partition and merges the ordered pages; this file maps S3 parameters in and XML out.
//!
//! The continuation token is the metadata service's own opaque position token, passed through
//! unchanged; V1's marker is a plain key and becomes `start_after`.

use cairn_meta_state::{ListObjectsPage, ListObjectsRequest};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::endpoint::{ListObjectsV1Params, ListObjectsV2Params, ListVersionsParams};
use cairn_s3_proto::xml::{
    ListingPage, ObjectSummary, Owner, VersionEntry, list_object_versions_xml, list_objects_v1_xml,
    list_objects_v2_xml,
};

use crate::bucket::owned_bucket;
use crate::errors::{client_error_to_s3, meta_error_to_s3};
use crate::server::{HttpResponse, RequestContext, xml_response};

async fn list_page(
    context: &RequestContext<'_>,
    request: ListObjectsRequest,
) -> Result<ListObjectsPage, S3Error> {
    context
        .executor
        .meta
        .list_objects(request)
        .await
        .map_err(|error| client_error_to_s3(&error))?
        .map_err(|error| meta_error_to_s3(&error))
}

pub(crate) fn storage_class_name(storage_class: cairn_meta_state::StorageClass) -> &'static str {
    use cairn_meta_state::StorageClass;
    match storage_class {
        StorageClass::Standard => "STANDARD",
        StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
        StorageClass::StandardInfrequentAccess => "STANDARD_IA",
        StorageClass::OneZoneInfrequentAccess => "ONEZONE_IA",
        StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
        StorageClass::Glacier => "GLACIER",
        StorageClass::GlacierInstantRetrieval => "GLACIER_IR",
        StorageClass::DeepArchive => "DEEP_ARCHIVE",
    }
}

fn to_listing(
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: u32,
    encoding: cairn_s3_proto::xml::ListEncoding,
    page: &ListObjectsPage,
    with_owner: bool,
) -> ListingPage {
    ListingPage {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        max_keys,
        encoding,
        is_truncated: page.is_truncated,
        objects: page
            .contents
            .iter()
            .map(|summary| ObjectSummary {
                key: summary.key.clone(),
                last_modified_unix_millis: summary.last_modified_ms as i64,
                etag: format!("\"{}\"", summary.etag),
                size_bytes: summary.size_bytes,
                storage_class: storage_class_name(summary.storage_class).to_owned(),
                owner: with_owner.then(|| Owner {
                    id: summary.owner.clone(),
                    display_name: summary.owner.clone(),
                }),
                checksum_algorithms: Vec::new(),
            })
            .collect(),
        common_prefixes: page.common_prefixes.clone(),
    }
}

pub async fn list_objects_v2(
    context: &RequestContext<'_>,
    bucket: &str,
    params: ListObjectsV2Params,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let request = ListObjectsRequest {
        bucket: bucket.to_owned(),
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone().unwrap_or_default(),
        start_after: params.start_after.clone(),
        continuation_token: params.continuation_token.clone(),
        max_keys: params.max_keys,
    };
    let page = list_page(context, request).await?;
    let listing = to_listing(
        bucket,
        &params.prefix,
        params.delimiter.as_deref(),
        params.max_keys,
        params.encoding,
        &page,
        params.fetch_owner,
    );
    Ok(xml_response(list_objects_v2_xml(
        &listing,
        params.continuation_token.as_deref(),
        page.next_continuation_token.as_deref(),
        params.start_after.as_deref(),
    )))
}

pub async fn list_objects_v1(
    context: &RequestContext<'_>,
    bucket: &str,
    params: ListObjectsV1Params,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let request = ListObjectsRequest {
        bucket: bucket.to_owned(),
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone().unwrap_or_default(),
        start_after: (!params.marker.is_empty()).then(|| params.marker.clone()),
        continuation_token: None,
        max_keys: params.max_keys,
    };
    let page = list_page(context, request).await?;
    // NextMarker only with a delimiter (see list_objects_v1_xml): the greatest key or prefix
    // of the page.
    let next_marker = if page.is_truncated && params.delimiter.is_some() {
        let last_key = page.contents.last().map(|summary| summary.key.as_str());
        let last_prefix = page.common_prefixes.last().map(String::as_str);
        last_key.max(last_prefix).map(str::to_owned)
    } else {
        None
    };
    let listing = to_listing(
        bucket,
        &params.prefix,
        params.delimiter.as_deref(),
        params.max_keys,
        params.encoding,
        &page,
        true,
    );
    Ok(xml_response(list_objects_v1_xml(
        &listing,
        &params.marker,
        next_marker.as_deref(),
    )))
}

/// ListObjectVersions: every partition's page merged by the metadata client; versions and delete
/// markers stay interleaved in S3 order. `version-id-marker=null` names the marker key's null
/// version, whose log-index id is looked up first.
pub async fn list_object_versions(
    context: &RequestContext<'_>,
    bucket: &str,
    params: ListVersionsParams,
) -> Result<HttpResponse, S3Error> {
    use cairn_meta_state::{
        ListVersionsPage, ListVersionsRequest, MetaError, Query, Response, VersionId,
        VersionSelector,
    };
    owned_bucket(context, bucket).await?;
    let version_id_marker = match params.version_id_marker.as_str() {
        "" => None,
        _ if params.key_marker.is_empty() => {
            return Err(S3Error::InvalidArgument(
                "A version-id marker cannot be specified without a key marker.".to_owned(),
            ));
        }
        "null" => {
            let answer = context
                .executor
                .meta_read(Query::GetObject {
                    bucket: bucket.to_owned(),
                    key: params.key_marker.clone(),
                    version: VersionSelector::Null,
                })
                .await?;
            match answer {
                Ok(Response::Object(record)) => Some(record.s3_version_id()),
                Err(MetaError::MethodNotAllowedOnDeleteMarker { version_id }) => Some(version_id),
                // No null version any more: resume after the whole key.
                _ => None,
            }
        }
        text => {
            Some(VersionId::parse(text).ok_or_else(|| {
                S3Error::InvalidArgument("Invalid version id specified".to_owned())
            })?)
        }
    };
    let request = ListVersionsRequest {
        bucket: bucket.to_owned(),
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone().unwrap_or_default(),
        key_marker: (!params.key_marker.is_empty()).then(|| params.key_marker.clone()),
        version_id_marker,
        max_keys: params.max_keys,
    };
    let page: ListVersionsPage = context
        .executor
        .shared
        .meta
        .run(move |client| async move { client.list_versions(request).await })
        .await
        .map_err(|error| client_error_to_s3(&error))?
        .map_err(|error| client_error_to_s3(&error))?
        .map_err(|error| meta_error_to_s3(&error))?;
    let s3_id = |version_id: cairn_meta_state::VersionId, null_version: bool| {
        if null_version {
            "null".to_owned()
        } else {
            version_id.to_string()
        }
    };
    let next_version_id_marker = page.next_version_id_marker.map(|marker| {
        let null_version = page
            .versions
            .iter()
            .rev()
            .find(|summary| summary.version_id == marker)
            .is_some_and(|summary| summary.null_version);
        s3_id(marker, null_version)
    });
    let listing = cairn_s3_proto::xml::ListVersionsPage {
        bucket: bucket.to_owned(),
        prefix: params.prefix,
        delimiter: params.delimiter,
        key_marker: params.key_marker,
        version_id_marker: params.version_id_marker,
        next_key_marker: page.next_key_marker.clone(),
        next_version_id_marker,
        max_keys: params.max_keys,
        encoding: params.encoding,
        is_truncated: page.is_truncated,
        entries: page
            .versions
            .iter()
            .map(|summary| VersionEntry {
                key: summary.key.clone(),
                version_id: s3_id(summary.version_id, summary.null_version),
                is_latest: summary.is_latest,
                last_modified_unix_millis: summary.last_modified_ms as i64,
                etag: (!summary.delete_marker).then(|| format!("\"{}\"", summary.etag)),
                size_bytes: summary.size_bytes,
                storage_class: storage_class_name(summary.storage_class).to_owned(),
                owner: Owner {
                    id: summary.owner.clone(),
                    display_name: summary.owner.clone(),
                },
            })
            .collect(),
        common_prefixes: page.common_prefixes.clone(),
    };
    Ok(xml_response(list_object_versions_xml(&listing)))
}
