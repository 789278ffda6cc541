//! Every failure the gateway can meet, mapped to the S3 error the client sees, and the one place
//! where an [`S3Error`] becomes an HTTP response.
//!
//! Invariants: lower layers' errors ([`MetaError`], [`ClientError`], [`EcError`], storage-client
//! errors) reach S3 only through the `*_to_s3` functions here; every error response carries the
//! request id and the standard `<Error>` document (none for HEAD and 304).

use bytes::Bytes;
use cairn_ec::EcError;
use cairn_meta_state::MetaError;
use cairn_raft::ClientError;
use cairn_s3_proto::S3Error;
use http_body_util::{BodyExt, Full};

use crate::server::ResponseBody;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata service: {0}")]
    Meta(String),
    #[error("root access key {access_key_id:?} is registered with a different secret")]
    RootKeyConflict { access_key_id: String },
    #[error("executor thread panicked")]
    ExecutorPanicked,
}

/// The S3 answer to an encryption failure met on a request's behalf (SSE-C: a wrong key is
/// `403 AccessDenied`, malformed key headers `400 InvalidArgument`). Failures of the server's own
/// keys or data are internal: the client cannot fix them.
pub fn sse_error_to_s3(error: &cairn_sse::SseError) -> S3Error {
    use cairn_sse::SseError;
    match error {
        SseError::WrongCustomerKey => S3Error::AccessDenied,
        SseError::WrongMode => S3Error::InvalidRequest(
            "The encryption parameters are not applicable to this object.".to_owned(),
        ),
        SseError::Malformed { .. } => S3Error::InvalidArgument(
            "The secret key was invalid for the specified algorithm.".to_owned(),
        ),
        SseError::LengthMismatch { .. } => S3Error::IncompleteBody,
        SseError::Authentication
        | SseError::WrongMasterKey { .. }
        | SseError::Randomness
        | SseError::KeyFile { .. } => S3Error::InternalError,
    }
}

/// The S3 answer to a refusal of the metadata state machine.
pub fn meta_error_to_s3(error: &MetaError) -> S3Error {
    match error {
        MetaError::NoSuchBucket { .. } => S3Error::NoSuchBucket,
        MetaError::NoSuchKey { .. } => S3Error::NoSuchKey,
        MetaError::NoSuchVersion { .. } => S3Error::NoSuchVersion,
        MetaError::MethodNotAllowedOnDeleteMarker { .. } => S3Error::MethodNotAllowed,
        MetaError::NoSuchUpload { .. } => S3Error::NoSuchUpload,
        MetaError::InvalidPart { .. } => S3Error::InvalidPart,
        MetaError::InvalidPartOrder { .. } => S3Error::InvalidPartOrder,
        MetaError::InvalidPartNumber { .. } => S3Error::InvalidArgument(error.to_string()),
        MetaError::EntityTooSmall { .. } => S3Error::EntityTooSmall,
        MetaError::BucketNotEmpty { .. } => S3Error::BucketNotEmpty,
        MetaError::BucketAlreadyExists { .. } => S3Error::BucketAlreadyExists,
        MetaError::BucketAlreadyOwnedByYou { .. } => S3Error::BucketAlreadyOwnedByYou,
        MetaError::InvalidBucketName { .. } => S3Error::InvalidBucketName,
        MetaError::IllegalVersioningConfiguration { .. } => {
            S3Error::InvalidArgument(error.to_string())
        }
        MetaError::InvalidContinuationToken => {
            S3Error::InvalidArgument("The continuation token provided is incorrect".to_owned())
        }
        MetaError::InvalidArgument { .. } | MetaError::InvalidEcScheme { .. } => {
            S3Error::InvalidArgument(error.to_string())
        }
        MetaError::IdempotencyTokenReused { .. } | MetaError::TokenMismatch { .. } => {
            S3Error::InvalidRequest(error.to_string())
        }
        MetaError::NoSuchAccessKey { .. } => S3Error::InvalidAccessKeyId,
        MetaError::RecordVersionMismatch { .. } | MetaError::ConditionalRequestConflict { .. } => {
            S3Error::ConditionalRequestConflict
        }
        MetaError::PreconditionFailed { .. } => S3Error::PreconditionFailed,
        // S3 answers a delete or retention change that object lock refuses with 403.
        MetaError::ObjectLocked { .. } => S3Error::AccessDenied,
        MetaError::ObjectLockConflict { reason, .. } => S3Error::InvalidBucketState(reason.clone()),
        // SSE-KMS: S3 answers an unknown or disabled key with KMS's exception names, status 400.
        MetaError::NoSuchKmsKey { key } => S3Error::KmsNotFound(key.clone()),
        MetaError::KmsKeyDisabled { key_id } => S3Error::KmsDisabled(key_id.clone()),
        MetaError::KmsKeyAlreadyExists { .. } => S3Error::InvalidArgument(error.to_string()),
        // A full replication queue: the client retries later (the write was not committed).
        MetaError::ReplicationBacklog { .. } => S3Error::SlowDown,
        // A metadata disk below its reserve: refused before anything was written, as a full
        // storage node's write is.
        MetaError::MetadataDiskFull { .. } => S3Error::ServiceUnavailable,
        // The janitor rolled the write back under us, or the gateway built an inconsistent
        // command: nothing the client did wrong, and a retry starts a fresh write.
        MetaError::NoSuchWrite { .. }
        | MetaError::WriteAlreadyCommitted { .. }
        | MetaError::InvalidShardMap { .. }
        | MetaError::AccessKeyAlreadyExists { .. }
        | MetaError::NoSuchNode { .. }
        | MetaError::WrongRole { .. }
        | MetaError::StaleLogIndex { .. } => S3Error::InternalError,
    }
}

/// The metadata service gave no answer: a transient condition clients should retry.
pub fn client_error_to_s3(error: &ClientError) -> S3Error {
    match error {
        ClientError::Unavailable { .. } | ClientError::RuntimeStopped => {
            S3Error::ServiceUnavailable
        }
        ClientError::Unroutable(_) | ClientError::Rejected(_) | ClientError::BadAnswer(_) => {
            S3Error::InternalError
        }
    }
}

/// Erasure-coding failures: too many shards lost is a (hopefully transient) unavailability.
pub fn ec_error_to_s3(error: &EcError) -> S3Error {
    match error {
        EcError::TooManyErasures { .. } => S3Error::ServiceUnavailable,
        EcError::RangeNotSatisfiable { .. } => S3Error::InvalidRange,
        _ => S3Error::InternalError,
    }
}

/// Builds the error response: status, request id, and the XML document unless the response
/// must not have a body (HEAD, 304).
pub fn error_response(
    error: &S3Error,
    resource: &str,
    request_id: &str,
    is_head: bool,
) -> http::Response<ResponseBody> {
    let status = http::StatusCode::from_u16(error.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = http::Response::builder()
        .status(status)
        .header("x-amz-request-id", request_id);
    let body = if error.has_body() && !is_head {
        builder = builder.header("content-type", "application/xml");
        Bytes::from(error.to_xml(resource, request_id))
    } else {
        Bytes::new()
    };
    if matches!(
        error,
        S3Error::ServiceUnavailable | S3Error::PlacementUnavailable(_) | S3Error::SlowDown
    ) {
        builder = builder.header("retry-after", "1");
    }
    // The region the bucket lives in, which clients (and the edge) re-send the request to.
    if let S3Error::PermanentRedirect { region } = error
        && let Ok(value) = http::HeaderValue::from_str(region)
    {
        builder = builder.header("x-amz-bucket-region", value);
    }
    builder
        .body(
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static header names and values are valid")
}

/// An error response that carries extra headers, as S3 sends `x-amz-delete-marker` and
/// `x-amz-version-id` with the 404 or 405 of a delete marker. Returned as `Ok` by a handler.
pub fn error_response_with_headers(
    context: &crate::server::RequestContext<'_>,
    error: &S3Error,
    headers: &[(&'static str, String)],
) -> http::Response<ResponseBody> {
    let mut response = error_response(error, context.resource, context.request_id, context.is_head);
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_meta_state::{NodeId, Role, UploadId, VersionId};

    fn every_meta_error() -> Vec<MetaError> {
        let bucket = || "b".to_owned();
        let key = || "k".to_owned();
        vec![
            MetaError::NoSuchBucket { bucket: bucket() },
            MetaError::NoSuchKey {
                bucket: bucket(),
                key: key(),
                delete_marker: None,
            },
            MetaError::NoSuchVersion {
                bucket: bucket(),
                key: key(),
                version: "null".into(),
            },
            MetaError::MethodNotAllowedOnDeleteMarker {
                version_id: VersionId(1),
            },
            MetaError::NoSuchUpload {
                bucket: bucket(),
                key: key(),
                upload_id: UploadId(1),
            },
            MetaError::InvalidPart {
                part_number: 1,
                reason: "r".into(),
            },
            MetaError::InvalidPartOrder { part_number: 1 },
            MetaError::InvalidPartNumber { part_number: 0 },
            MetaError::EntityTooSmall {
                part_number: 1,
                size_bytes: 1,
                minimum_bytes: 5,
            },
            MetaError::BucketNotEmpty { bucket: bucket() },
            MetaError::BucketAlreadyExists { bucket: bucket() },
            MetaError::BucketAlreadyOwnedByYou { bucket: bucket() },
            MetaError::InvalidBucketName {
                bucket: bucket(),
                reason: "r".into(),
            },
            MetaError::IllegalVersioningConfiguration { bucket: bucket() },
            MetaError::NoSuchWrite {
                bucket: bucket(),
                key: key(),
                version_id: VersionId(1),
            },
            MetaError::WriteAlreadyCommitted {
                version_id: VersionId(1),
            },
            MetaError::TokenMismatch {
                version_id: VersionId(1),
            },
            MetaError::IdempotencyTokenReused { token: "t".into() },
            MetaError::InvalidEcScheme {
                scheme: "x".into(),
                reason: "r".into(),
            },
            MetaError::InvalidShardMap { reason: "r".into() },
            MetaError::RecordVersionMismatch {
                expected: 1,
                actual: 2,
            },
            MetaError::InvalidContinuationToken,
            MetaError::InvalidArgument { reason: "r".into() },
            MetaError::AccessKeyAlreadyExists {
                access_key_id: "a".into(),
            },
            MetaError::NoSuchAccessKey {
                access_key_id: "a".into(),
            },
            MetaError::NoSuchNode { node_id: NodeId(1) },
            MetaError::WrongRole {
                command: "c".into(),
                role: Role::BucketService,
            },
            MetaError::StaleLogIndex {
                log_index: 1,
                last_applied_index: 2,
            },
            MetaError::PreconditionFailed {
                bucket: bucket(),
                key: key(),
            },
            MetaError::ConditionalRequestConflict {
                bucket: bucket(),
                key: key(),
            },
            MetaError::ObjectLocked {
                bucket: bucket(),
                key: key(),
                version_id: VersionId(1),
                reason: String::new(),
            },
            MetaError::ObjectLockConflict {
                bucket: bucket(),
                reason: String::new(),
            },
            MetaError::NoSuchKmsKey { key: "k".into() },
            MetaError::KmsKeyDisabled { key_id: "k".into() },
            MetaError::KmsKeyAlreadyExists { key: "k".into() },
            MetaError::ReplicationBacklog { entries: 1 },
            MetaError::MetadataDiskFull { free_bytes: 1 },
        ]
    }

    /// The expected (code, status) of every metadata refusal.
    fn expected(error: &MetaError) -> (&'static str, u16) {
        match error {
            MetaError::NoSuchBucket { .. } => ("NoSuchBucket", 404),
            MetaError::NoSuchKey { .. } => ("NoSuchKey", 404),
            MetaError::NoSuchVersion { .. } => ("NoSuchVersion", 404),
            MetaError::MethodNotAllowedOnDeleteMarker { .. } => ("MethodNotAllowed", 405),
            MetaError::NoSuchUpload { .. } => ("NoSuchUpload", 404),
            MetaError::InvalidPart { .. } => ("InvalidPart", 400),
            MetaError::InvalidPartOrder { .. } => ("InvalidPartOrder", 400),
            MetaError::InvalidPartNumber { .. } => ("InvalidArgument", 400),
            MetaError::EntityTooSmall { .. } => ("EntityTooSmall", 400),
            MetaError::BucketNotEmpty { .. } => ("BucketNotEmpty", 409),
            MetaError::BucketAlreadyExists { .. } => ("BucketAlreadyExists", 409),
            MetaError::BucketAlreadyOwnedByYou { .. } => ("BucketAlreadyOwnedByYou", 409),
            MetaError::InvalidBucketName { .. } => ("InvalidBucketName", 400),
            MetaError::IllegalVersioningConfiguration { .. } => ("InvalidArgument", 400),
            MetaError::NoSuchWrite { .. } => ("InternalError", 500),
            MetaError::WriteAlreadyCommitted { .. } => ("InternalError", 500),
            MetaError::TokenMismatch { .. } => ("InvalidRequest", 400),
            MetaError::IdempotencyTokenReused { .. } => ("InvalidRequest", 400),
            MetaError::InvalidEcScheme { .. } => ("InvalidArgument", 400),
            MetaError::InvalidShardMap { .. } => ("InternalError", 500),
            MetaError::RecordVersionMismatch { .. } => ("ConditionalRequestConflict", 409),
            MetaError::InvalidContinuationToken => ("InvalidArgument", 400),
            MetaError::InvalidArgument { .. } => ("InvalidArgument", 400),
            MetaError::AccessKeyAlreadyExists { .. } => ("InternalError", 500),
            MetaError::NoSuchAccessKey { .. } => ("InvalidAccessKeyId", 403),
            MetaError::NoSuchNode { .. } => ("InternalError", 500),
            MetaError::WrongRole { .. } => ("InternalError", 500),
            MetaError::StaleLogIndex { .. } => ("InternalError", 500),
            MetaError::PreconditionFailed { .. } => ("PreconditionFailed", 412),
            MetaError::ConditionalRequestConflict { .. } => ("ConditionalRequestConflict", 409),
            MetaError::ObjectLocked { .. } => ("AccessDenied", 403),
            MetaError::ObjectLockConflict { .. } => ("InvalidBucketState", 409),
            MetaError::NoSuchKmsKey { .. } => ("KMS.NotFoundException", 400),
            MetaError::KmsKeyDisabled { .. } => ("KMS.DisabledException", 400),
            MetaError::KmsKeyAlreadyExists { .. } => ("InvalidArgument", 400),
            MetaError::ReplicationBacklog { .. } => ("SlowDown", 503),
            MetaError::MetadataDiskFull { .. } => ("ServiceUnavailable", 503),
        }
    }

    #[test]
    fn every_meta_error_maps_to_its_s3_code_and_status() {
        for error in every_meta_error() {
            let s3 = meta_error_to_s3(&error);
            assert_eq!((s3.code(), s3.http_status()), expected(&error), "{error:?}");
        }
    }

    #[test]
    fn client_errors_are_retryable_unavailability_or_internal() {
        let unavailable = ClientError::Unavailable {
            group: cairn_raft::GroupId(0),
            attempts: 3,
            last_error: "x".into(),
        };
        assert_eq!(client_error_to_s3(&unavailable).http_status(), 503);
        assert_eq!(
            client_error_to_s3(&ClientError::RuntimeStopped).http_status(),
            503
        );
        assert_eq!(
            client_error_to_s3(&ClientError::BadAnswer("x".into())).http_status(),
            500
        );
    }

    fn body_text(response: http::Response<ResponseBody>) -> String {
        let bytes = futures::executor::block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn error_response_carries_status_request_id_and_xml() {
        let response = error_response(&S3Error::NoSuchKey, "/photos/cat.jpg", "REQ1", false);
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["x-amz-request-id"], "REQ1");
        assert_eq!(response.headers()["content-type"], "application/xml");
        let text = body_text(response);
        assert!(text.contains("<Code>NoSuchKey</Code>"), "{text}");
        assert!(
            text.contains("<Resource>/photos/cat.jpg</Resource>"),
            "{text}"
        );
        assert!(text.contains("<RequestId>REQ1</RequestId>"), "{text}");
    }

    #[test]
    fn head_and_not_modified_errors_have_no_body() {
        let head = error_response(&S3Error::NoSuchKey, "/b/k", "REQ2", true);
        assert_eq!(head.status(), 404);
        assert_eq!(head.headers()["x-amz-request-id"], "REQ2");
        assert!(body_text(head).is_empty());
        let not_modified = error_response(&S3Error::NotModified, "/b/k", "REQ3", false);
        assert_eq!(not_modified.status(), 304);
        assert!(body_text(not_modified).is_empty());
    }

    #[test]
    fn not_implemented_is_501_xml() {
        let response = error_response(&S3Error::NotImplemented, "/b?tagging", "REQ4", false);
        assert_eq!(response.status(), 501);
        assert!(body_text(response).contains("<Code>NotImplemented</Code>"));
    }
}
