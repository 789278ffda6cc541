//! The S3 surface as one enum: [`Router::parse`] turns (method, raw path, raw query, Host, a few
//! headers) into exactly one [`Endpoint`] variant with its parameters decoded and validated.
//!
//! Model:
//! - Addressing: a Host equal to `<bucket>.<base domain>` (base domains are configured, e.g.
//!   `s3.localhost`) is virtual-host style and the whole path is the key; any other Host (a base
//!   domain itself, an IP, an unknown name) is path style, `/<bucket>/<key>`.
//! - Keys are percent-decoded exactly once with `+` literal, never normalised: `//`, `.` and `..`
//!   segments and trailing slashes are part of the key. Query values decode `+` as space.
//! - Dispatch follows S3: a subresource marker in the query (`?uploads`, `?uploadId=`,
//!   `?tagging`, …) selects the operation before the method's default does. Markers of operations
//!   Cairn does not implement yet map to [`Endpoint::NotImplemented`], so they answer 501 instead
//!   of silently falling through to a plain GET/PUT/DELETE (a wrong success).
//! - Invariants of every returned variant: bucket names pass [`validate_bucket_name`], keys are
//!   non-empty valid UTF-8 of at most 1,024 bytes, part numbers are 1..=10,000, max-* values are
//!   clamped to S3's 1,000.

use crate::S3Error;
use crate::encoding::{PlusMeans, parse_query, percent_decode};
use crate::range::{ByteRange, parse_copy_source_range};
use crate::xml::{ListEncoding, MULTIPART_MAX_PARTS};

pub const KEY_MAX_BYTES: usize = 1024;
/// S3 returns at most 1,000 entries per listing page whatever max-keys says.
pub const LIST_MAX_ENTRIES: u32 = 1000;

/// The HTTP request line and the headers routing depends on. All strings are raw wire values.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The path without the query, still percent-encoded (`/bucket/a%20b`).
    pub raw_path: &'a str,
    /// The query without `?`, still percent-encoded; empty when absent.
    pub raw_query: &'a str,
    pub host: Option<&'a str>,
    /// `x-amz-copy-source`.
    pub copy_source: Option<&'a str>,
    /// `x-amz-copy-source-range`.
    pub copy_source_range: Option<&'a str>,
}

/// The source of CopyObject / UploadPartCopy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// `response-*` query overrides of GetObject's response headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseOverrides {
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_type: Option<String>,
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListObjectsV2Params {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub continuation_token: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: u32,
    pub encoding: ListEncoding,
    pub fetch_owner: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListObjectsV1Params {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub marker: String,
    pub max_keys: u32,
    pub encoding: ListEncoding,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUploadsParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: String,
    pub upload_id_marker: String,
    pub max_uploads: u32,
    pub encoding: ListEncoding,
}

/// ListObjectVersions parameters (`?versions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListVersionsParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: String,
    /// Only meaningful with `key_marker`; `null` names the null version.
    pub version_id_marker: String,
    pub max_keys: u32,
    pub encoding: ListEncoding,
}

/// Operations recognised by their markers but not implemented yet (issue 6); each answers
/// `501 NotImplemented`. One variant per operation so the handler that implements one later
/// moves it into [`Endpoint`] without touching the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnimplementedOperation {
    RestoreObject,
    SelectObjectContent,
    GetObjectTorrent,
    /// Website, logging, notification, accelerate, request payment,
    /// ownership controls, public access block, analytics, metrics, inventory, intelligent
    /// tiering, on the bucket, read or written: the marker is kept for the error message.
    OtherBucketSubresource(&'static str),
}

/// Every operation name [`Endpoint::operation_name`] returns, indexed by
/// [`Endpoint::operation_index`].
pub const OPERATION_NAMES: [&str; 62] = [
    "ListBuckets",
    "CreateBucket",
    "HeadBucket",
    "DeleteBucket",
    "GetBucketLocation",
    "PutObject",
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "DeleteObjects",
    "ListObjectsV2",
    "ListObjects",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
    "NotImplemented",
    "GetBucketVersioning",
    "PutBucketVersioning",
    "ListObjectVersions",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    "GetBucketTagging",
    "PutBucketTagging",
    "DeleteBucketTagging",
    "GetBucketPolicy",
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketAcl",
    "PutBucketAcl",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetPublicAccessBlock",
    "PutPublicAccessBlock",
    "DeletePublicAccessBlock",
    "GetBucketCors",
    "PutBucketCors",
    "DeleteBucketCors",
    "PreflightCors",
    "GetObjectAttributes",
    "GetObjectLockConfiguration",
    "PutObjectLockConfiguration",
    "GetObjectRetention",
    "PutObjectRetention",
    "GetObjectLegalHold",
    "PutObjectLegalHold",
    "GetBucketEncryption",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
    "GetBucketLifecycleConfiguration",
    "PutBucketLifecycleConfiguration",
    "DeleteBucketLifecycle",
    "PostObject",
    "GetBucketReplication",
    "PutBucketReplication",
    "DeleteBucketReplication",
];

/// One S3 operation with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    GetObject {
        bucket: String,
        key: String,
        version_id: Option<String>,
        part_number: Option<u32>,
        overrides: ResponseOverrides,
    },
    HeadObject {
        bucket: String,
        key: String,
        version_id: Option<String>,
        part_number: Option<u32>,
    },
    DeleteObject {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    DeleteObjects {
        bucket: String,
    },
    ListObjectsV2 {
        bucket: String,
        params: ListObjectsV2Params,
    },
    ListObjectsV1 {
        bucket: String,
        params: ListObjectsV1Params,
    },
    CopyObject {
        bucket: String,
        key: String,
        source: CopySource,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
        source: CopySource,
        source_range: Option<ByteRange>,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListParts {
        bucket: String,
        key: String,
        upload_id: String,
        max_parts: u32,
        part_number_marker: u32,
    },
    ListMultipartUploads {
        bucket: String,
        params: ListUploadsParams,
    },
    NotImplemented {
        bucket: Option<String>,
        key: Option<String>,
        operation: UnimplementedOperation,
    },
    GetBucketVersioning {
        bucket: String,
    },
    PutBucketVersioning {
        bucket: String,
    },
    ListObjectVersions {
        bucket: String,
        params: ListVersionsParams,
    },
    GetObjectTagging {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    PutObjectTagging {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    DeleteObjectTagging {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    GetBucketTagging {
        bucket: String,
    },
    PutBucketTagging {
        bucket: String,
    },
    DeleteBucketTagging {
        bucket: String,
    },
    GetBucketPolicy {
        bucket: String,
    },
    PutBucketPolicy {
        bucket: String,
    },
    DeleteBucketPolicy {
        bucket: String,
    },
    GetBucketPolicyStatus {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    GetPublicAccessBlock {
        bucket: String,
    },
    PutPublicAccessBlock {
        bucket: String,
    },
    DeletePublicAccessBlock {
        bucket: String,
    },
    GetBucketCors {
        bucket: String,
    },
    GetBucketLifecycle {
        bucket: String,
    },
    PutBucketLifecycle {
        bucket: String,
    },
    DeleteBucketLifecycle {
        bucket: String,
    },
    GetBucketReplication {
        bucket: String,
    },
    PutBucketReplication {
        bucket: String,
    },
    DeleteBucketReplication {
        bucket: String,
    },
    PutBucketCors {
        bucket: String,
    },
    DeleteBucketCors {
        bucket: String,
    },
    /// A browser's CORS preflight (`OPTIONS`) on a bucket or object path.
    PreflightCors {
        bucket: String,
        key: Option<String>,
    },
    GetObjectAttributes {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    GetObjectLockConfiguration {
        bucket: String,
    },
    PutObjectLockConfiguration {
        bucket: String,
    },
    GetObjectRetention {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    PutObjectRetention {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    GetObjectLegalHold {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    PutObjectLegalHold {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    GetBucketEncryption {
        bucket: String,
    },
    PutBucketEncryption {
        bucket: String,
    },
    DeleteBucketEncryption {
        bucket: String,
    },
    /// A browser-based upload (`POST /bucket` with a multipart/form-data body): the key and
    /// everything else come from the form.
    PostObject {
        bucket: String,
    },
}

impl Endpoint {
    /// A stable operation name for logs and metrics labels.
    pub fn operation_name(&self) -> &'static str {
        OPERATION_NAMES[self.operation_index()]
    }

    /// The position of this operation in [`OPERATION_NAMES`]: metrics keep one slot per
    /// operation and index it with this, so a request never looks a label up by string.
    pub fn operation_index(&self) -> usize {
        match self {
            Endpoint::ListBuckets => 0,
            Endpoint::CreateBucket { .. } => 1,
            Endpoint::HeadBucket { .. } => 2,
            Endpoint::DeleteBucket { .. } => 3,
            Endpoint::GetBucketLocation { .. } => 4,
            Endpoint::PutObject { .. } => 5,
            Endpoint::GetObject { .. } => 6,
            Endpoint::HeadObject { .. } => 7,
            Endpoint::DeleteObject { .. } => 8,
            Endpoint::DeleteObjects { .. } => 9,
            Endpoint::ListObjectsV2 { .. } => 10,
            Endpoint::ListObjectsV1 { .. } => 11,
            Endpoint::CopyObject { .. } => 12,
            Endpoint::CreateMultipartUpload { .. } => 13,
            Endpoint::UploadPart { .. } => 14,
            Endpoint::UploadPartCopy { .. } => 15,
            Endpoint::CompleteMultipartUpload { .. } => 16,
            Endpoint::AbortMultipartUpload { .. } => 17,
            Endpoint::ListParts { .. } => 18,
            Endpoint::ListMultipartUploads { .. } => 19,
            Endpoint::NotImplemented { .. } => 20,
            Endpoint::GetBucketVersioning { .. } => 21,
            Endpoint::PutBucketVersioning { .. } => 22,
            Endpoint::ListObjectVersions { .. } => 23,
            Endpoint::GetObjectTagging { .. } => 24,
            Endpoint::PutObjectTagging { .. } => 25,
            Endpoint::DeleteObjectTagging { .. } => 26,
            Endpoint::GetBucketTagging { .. } => 27,
            Endpoint::PutBucketTagging { .. } => 28,
            Endpoint::DeleteBucketTagging { .. } => 29,
            Endpoint::GetBucketPolicy { .. } => 30,
            Endpoint::PutBucketPolicy { .. } => 31,
            Endpoint::DeleteBucketPolicy { .. } => 32,
            Endpoint::GetBucketPolicyStatus { .. } => 33,
            Endpoint::GetBucketAcl { .. } => 34,
            Endpoint::PutBucketAcl { .. } => 35,
            Endpoint::GetObjectAcl { .. } => 36,
            Endpoint::PutObjectAcl { .. } => 37,
            Endpoint::GetPublicAccessBlock { .. } => 38,
            Endpoint::PutPublicAccessBlock { .. } => 39,
            Endpoint::DeletePublicAccessBlock { .. } => 40,
            Endpoint::GetBucketCors { .. } => 41,
            Endpoint::PutBucketCors { .. } => 42,
            Endpoint::DeleteBucketCors { .. } => 43,
            Endpoint::PreflightCors { .. } => 44,
            Endpoint::GetObjectAttributes { .. } => 45,
            Endpoint::GetObjectLockConfiguration { .. } => 46,
            Endpoint::PutObjectLockConfiguration { .. } => 47,
            Endpoint::GetObjectRetention { .. } => 48,
            Endpoint::PutObjectRetention { .. } => 49,
            Endpoint::GetObjectLegalHold { .. } => 50,
            Endpoint::PutObjectLegalHold { .. } => 51,
            Endpoint::GetBucketEncryption { .. } => 52,
            Endpoint::PutBucketEncryption { .. } => 53,
            Endpoint::DeleteBucketEncryption { .. } => 54,
            Endpoint::GetBucketLifecycle { .. } => 55,
            Endpoint::PutBucketLifecycle { .. } => 56,
            Endpoint::DeleteBucketLifecycle { .. } => 57,
            Endpoint::PostObject { .. } => 58,
            Endpoint::GetBucketReplication { .. } => 59,
            Endpoint::PutBucketReplication { .. } => 60,
            Endpoint::DeleteBucketReplication { .. } => 61,
        }
    }

    /// The bucket the request addresses, when there is one.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Endpoint::ListBuckets => None,
            Endpoint::NotImplemented { bucket, .. } => bucket.as_deref(),
            Endpoint::CreateBucket { bucket }
            | Endpoint::HeadBucket { bucket }
            | Endpoint::DeleteBucket { bucket }
            | Endpoint::GetBucketLocation { bucket }
            | Endpoint::PutObject { bucket, .. }
            | Endpoint::GetObject { bucket, .. }
            | Endpoint::HeadObject { bucket, .. }
            | Endpoint::DeleteObject { bucket, .. }
            | Endpoint::DeleteObjects { bucket }
            | Endpoint::ListObjectsV2 { bucket, .. }
            | Endpoint::ListObjectsV1 { bucket, .. }
            | Endpoint::CopyObject { bucket, .. }
            | Endpoint::CreateMultipartUpload { bucket, .. }
            | Endpoint::UploadPart { bucket, .. }
            | Endpoint::UploadPartCopy { bucket, .. }
            | Endpoint::CompleteMultipartUpload { bucket, .. }
            | Endpoint::AbortMultipartUpload { bucket, .. }
            | Endpoint::ListParts { bucket, .. }
            | Endpoint::ListMultipartUploads { bucket, .. }
            | Endpoint::GetBucketVersioning { bucket }
            | Endpoint::PutBucketVersioning { bucket }
            | Endpoint::ListObjectVersions { bucket, .. }
            | Endpoint::GetObjectTagging { bucket, .. }
            | Endpoint::PutObjectTagging { bucket, .. }
            | Endpoint::DeleteObjectTagging { bucket, .. }
            | Endpoint::GetBucketTagging { bucket }
            | Endpoint::PutBucketTagging { bucket }
            | Endpoint::DeleteBucketTagging { bucket }
            | Endpoint::GetBucketPolicy { bucket }
            | Endpoint::PutBucketPolicy { bucket }
            | Endpoint::DeleteBucketPolicy { bucket }
            | Endpoint::GetBucketPolicyStatus { bucket }
            | Endpoint::GetBucketAcl { bucket }
            | Endpoint::PutBucketAcl { bucket }
            | Endpoint::GetObjectAcl { bucket, .. }
            | Endpoint::PutObjectAcl { bucket, .. }
            | Endpoint::GetPublicAccessBlock { bucket }
            | Endpoint::PutPublicAccessBlock { bucket }
            | Endpoint::DeletePublicAccessBlock { bucket }
            | Endpoint::GetBucketCors { bucket }
            | Endpoint::PutBucketCors { bucket }
            | Endpoint::DeleteBucketCors { bucket }
            | Endpoint::GetBucketLifecycle { bucket }
            | Endpoint::PutBucketLifecycle { bucket }
            | Endpoint::DeleteBucketLifecycle { bucket }
            | Endpoint::GetBucketReplication { bucket }
            | Endpoint::PutBucketReplication { bucket }
            | Endpoint::DeleteBucketReplication { bucket }
            | Endpoint::PreflightCors { bucket, .. }
            | Endpoint::GetObjectAttributes { bucket, .. }
            | Endpoint::GetObjectLockConfiguration { bucket }
            | Endpoint::PutObjectLockConfiguration { bucket }
            | Endpoint::GetObjectRetention { bucket, .. }
            | Endpoint::PutObjectRetention { bucket, .. }
            | Endpoint::GetObjectLegalHold { bucket, .. }
            | Endpoint::PutObjectLegalHold { bucket, .. }
            | Endpoint::GetBucketEncryption { bucket }
            | Endpoint::PutBucketEncryption { bucket }
            | Endpoint::DeleteBucketEncryption { bucket }
            | Endpoint::PostObject { bucket } => Some(bucket),
        }
    }

    /// The object key the request addresses, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Endpoint::PutObject { key, .. }
            | Endpoint::GetObject { key, .. }
            | Endpoint::HeadObject { key, .. }
            | Endpoint::DeleteObject { key, .. }
            | Endpoint::CopyObject { key, .. }
            | Endpoint::CreateMultipartUpload { key, .. }
            | Endpoint::UploadPart { key, .. }
            | Endpoint::UploadPartCopy { key, .. }
            | Endpoint::CompleteMultipartUpload { key, .. }
            | Endpoint::AbortMultipartUpload { key, .. }
            | Endpoint::ListParts { key, .. }
            | Endpoint::GetObjectTagging { key, .. }
            | Endpoint::PutObjectTagging { key, .. }
            | Endpoint::DeleteObjectTagging { key, .. }
            | Endpoint::GetObjectAcl { key, .. }
            | Endpoint::PutObjectAcl { key, .. }
            | Endpoint::GetObjectAttributes { key, .. }
            | Endpoint::GetObjectRetention { key, .. }
            | Endpoint::PutObjectRetention { key, .. }
            | Endpoint::GetObjectLegalHold { key, .. }
            | Endpoint::PutObjectLegalHold { key, .. } => Some(key),
            Endpoint::NotImplemented { key, .. } | Endpoint::PreflightCors { key, .. } => {
                key.as_deref()
            }
            _ => None,
        }
    }

    /// The IAM action a bucket policy names this request by (AWS's "Actions defined by Amazon
    /// S3"); a request naming a version is the `...Version` action.
    pub fn policy_action(&self) -> &'static str {
        match self {
            Endpoint::ListBuckets => "s3:ListAllMyBuckets",
            Endpoint::CreateBucket { .. } => "s3:CreateBucket",
            Endpoint::HeadBucket { .. }
            | Endpoint::ListObjectsV2 { .. }
            | Endpoint::ListObjectsV1 { .. } => "s3:ListBucket",
            Endpoint::DeleteBucket { .. } => "s3:DeleteBucket",
            Endpoint::GetBucketLocation { .. } => "s3:GetBucketLocation",
            Endpoint::GetObject { version_id, .. } | Endpoint::HeadObject { version_id, .. } => {
                if version_id.is_some() {
                    "s3:GetObjectVersion"
                } else {
                    "s3:GetObject"
                }
            }
            Endpoint::PutObject { .. }
            | Endpoint::CopyObject { .. }
            | Endpoint::CreateMultipartUpload { .. }
            | Endpoint::UploadPart { .. }
            | Endpoint::UploadPartCopy { .. }
            | Endpoint::CompleteMultipartUpload { .. }
            | Endpoint::PostObject { .. } => "s3:PutObject",
            Endpoint::DeleteObject { version_id, .. } => {
                if version_id.is_some() {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                }
            }
            Endpoint::DeleteObjects { .. } => "s3:DeleteObject",
            Endpoint::AbortMultipartUpload { .. } => "s3:AbortMultipartUpload",
            Endpoint::ListParts { .. } => "s3:ListMultipartUploadParts",
            Endpoint::ListMultipartUploads { .. } => "s3:ListBucketMultipartUploads",
            Endpoint::NotImplemented { .. } => "s3:NotImplemented",
            Endpoint::GetBucketVersioning { .. } => "s3:GetBucketVersioning",
            Endpoint::PutBucketVersioning { .. } => "s3:PutBucketVersioning",
            Endpoint::ListObjectVersions { .. } => "s3:ListBucketVersions",
            Endpoint::GetObjectTagging { version_id, .. } => {
                if version_id.is_some() {
                    "s3:GetObjectVersionTagging"
                } else {
                    "s3:GetObjectTagging"
                }
            }
            Endpoint::PutObjectTagging { version_id, .. } => {
                if version_id.is_some() {
                    "s3:PutObjectVersionTagging"
                } else {
                    "s3:PutObjectTagging"
                }
            }
            Endpoint::DeleteObjectTagging { version_id, .. } => {
                if version_id.is_some() {
                    "s3:DeleteObjectVersionTagging"
                } else {
                    "s3:DeleteObjectTagging"
                }
            }
            Endpoint::GetBucketTagging { .. } => "s3:GetBucketTagging",
            // AWS authorises DeleteBucketTagging as PutBucketTagging.
            Endpoint::PutBucketTagging { .. } | Endpoint::DeleteBucketTagging { .. } => {
                "s3:PutBucketTagging"
            }
            Endpoint::GetBucketPolicy { .. } => "s3:GetBucketPolicy",
            Endpoint::PutBucketPolicy { .. } => "s3:PutBucketPolicy",
            Endpoint::DeleteBucketPolicy { .. } => "s3:DeleteBucketPolicy",
            Endpoint::GetBucketPolicyStatus { .. } => "s3:GetBucketPolicyStatus",
            Endpoint::GetBucketAcl { .. } => "s3:GetBucketAcl",
            Endpoint::PutBucketAcl { .. } => "s3:PutBucketAcl",
            Endpoint::GetObjectAcl { version_id, .. } => {
                if version_id.is_some() {
                    "s3:GetObjectVersionAcl"
                } else {
                    "s3:GetObjectAcl"
                }
            }
            Endpoint::PutObjectAcl { version_id, .. } => {
                if version_id.is_some() {
                    "s3:PutObjectVersionAcl"
                } else {
                    "s3:PutObjectAcl"
                }
            }
            Endpoint::GetPublicAccessBlock { .. } => "s3:GetBucketPublicAccessBlock",
            // AWS authorises the delete as the put.
            Endpoint::PutPublicAccessBlock { .. } | Endpoint::DeletePublicAccessBlock { .. } => {
                "s3:PutBucketPublicAccessBlock"
            }
            Endpoint::GetBucketCors { .. } => "s3:GetBucketCORS",
            // AWS authorises the delete as the put.
            Endpoint::PutBucketCors { .. } | Endpoint::DeleteBucketCors { .. } => {
                "s3:PutBucketCORS"
            }
            Endpoint::GetBucketLifecycle { .. } => "s3:GetLifecycleConfiguration",
            // AWS authorises the delete as the put.
            Endpoint::PutBucketLifecycle { .. } | Endpoint::DeleteBucketLifecycle { .. } => {
                "s3:PutLifecycleConfiguration"
            }
            Endpoint::GetBucketReplication { .. } => "s3:GetReplicationConfiguration",
            // AWS authorises the delete as the put.
            Endpoint::PutBucketReplication { .. } | Endpoint::DeleteBucketReplication { .. } => {
                "s3:PutReplicationConfiguration"
            }
            // Preflights are unauthenticated; no policy is consulted.
            Endpoint::PreflightCors { .. } => "s3:PreflightCors",
            Endpoint::GetObjectAttributes { version_id, .. } => {
                if version_id.is_some() {
                    "s3:GetObjectVersionAttributes"
                } else {
                    "s3:GetObjectAttributes"
                }
            }
            Endpoint::GetObjectLockConfiguration { .. } => "s3:GetBucketObjectLockConfiguration",
            Endpoint::PutObjectLockConfiguration { .. } => "s3:PutBucketObjectLockConfiguration",
            // AWS has no per-version actions for these.
            Endpoint::GetObjectRetention { .. } => "s3:GetObjectRetention",
            Endpoint::PutObjectRetention { .. } => "s3:PutObjectRetention",
            Endpoint::GetObjectLegalHold { .. } => "s3:GetObjectLegalHold",
            Endpoint::PutObjectLegalHold { .. } => "s3:PutObjectLegalHold",
            Endpoint::GetBucketEncryption { .. } => "s3:GetEncryptionConfiguration",
            // AWS authorises the delete as the put.
            Endpoint::PutBucketEncryption { .. } | Endpoint::DeleteBucketEncryption { .. } => {
                "s3:PutEncryptionConfiguration"
            }
        }
    }

    /// The result the gateway sends for an unimplemented endpoint.
    pub fn require_implemented(self) -> Result<Endpoint, S3Error> {
        match self {
            Endpoint::NotImplemented { .. } => Err(S3Error::NotImplemented),
            other => Ok(other),
        }
    }
}

/// S3 bucket naming rules (general purpose buckets): 3–63 characters of lowercase letters,
/// digits, dots and hyphens; starts and ends with a letter or digit; no `..`, no IPv4 form, no
/// reserved prefixes/suffixes; no `.-`/`-.` pairs (they break virtual-host DNS names).
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let bytes = name.as_bytes();
    let well_formed = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'.' || *byte == b'-'
        })
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !looks_like_ipv4(name)
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    if well_formed {
        Ok(())
    } else {
        Err(S3Error::InvalidBucketName)
    }
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty() && part.len() <= 3 && part.bytes().all(|byte| byte.is_ascii_digit())
        })
}

/// Keys: non-empty UTF-8 of at most 1,024 bytes.
pub fn validate_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(S3Error::InvalidArgument(
            "Object key must not be empty".to_string(),
        ));
    }
    if key.len() > KEY_MAX_BYTES {
        return Err(S3Error::KeyTooLongError);
    }
    Ok(())
}

/// Decodes a key or bucket segment from a path (`+` stays `+`).
fn decode_path_segment(raw: &str) -> Result<String, S3Error> {
    percent_decode(raw, PlusMeans::Plus).map_err(|_| S3Error::InvalidUri)
}

/// Parses `x-amz-copy-source`: `[/]bucket/key[?versionId=id]`, URL-encoded.
pub fn parse_copy_source(header_value: &str) -> Result<CopySource, S3Error> {
    let invalid = || S3Error::InvalidArgument("Invalid copy source object key".to_string());
    let trimmed = header_value.trim();
    let (path, query) = match trimmed.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (trimmed, None),
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let (raw_bucket, raw_key) = path.split_once('/').ok_or_else(invalid)?;
    let bucket = decode_path_segment(raw_bucket).map_err(|_| invalid())?;
    let key = decode_path_segment(raw_key).map_err(|_| invalid())?;
    validate_bucket_name(&bucket)?;
    validate_key(&key).map_err(|error| match error {
        S3Error::KeyTooLongError => error,
        _ => invalid(),
    })?;
    let mut version_id = None;
    if let Some(query) = query {
        for (name, value) in parse_query(query).map_err(|_| invalid())? {
            if name == "versionId" {
                version_id = Some(value);
            }
        }
    }
    Ok(CopySource {
        bucket,
        key,
        version_id,
    })
}

/// Parsed query parameters with S3's typed accessors.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(candidate, _)| candidate == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    /// A non-negative count clamped to S3's page size; garbage is `InvalidArgument`.
    fn max_entries(&self, name: &str) -> Result<u32, S3Error> {
        match self.get(name) {
            None => Ok(LIST_MAX_ENTRIES),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|value| *value >= 0)
                .map(|value| value.min(i64::from(LIST_MAX_ENTRIES)) as u32)
                .ok_or_else(|| {
                    S3Error::InvalidArgument(format!(
                        "Provided {name} not an integer or within integer range"
                    ))
                }),
        }
    }

    fn part_number(&self) -> Result<Option<u32>, S3Error> {
        match self.get("partNumber") {
            None => Ok(None),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|number| (1..=MULTIPART_MAX_PARTS).contains(number))
                .map(Some)
                .ok_or_else(|| {
                    S3Error::InvalidArgument(
                        "Part number must be an integer between 1 and 10000, inclusive".to_string(),
                    )
                }),
        }
    }

    fn encoding(&self) -> Result<ListEncoding, S3Error> {
        match self.get("encoding-type") {
            None => Ok(ListEncoding::Raw),
            Some(value) if value.eq_ignore_ascii_case("url") => Ok(ListEncoding::Url),
            Some(_) => Err(S3Error::InvalidArgument(
                "Invalid Encoding Method specified in Request".to_string(),
            )),
        }
    }

    fn upload_id(&self) -> Option<String> {
        self.string("uploadId")
    }
}

/// Subresource markers on a bucket that select an operation Cairn does not implement yet, whatever
/// the method. Checked before the method's default operation.
fn unimplemented_bucket_operation(query: &Query) -> Option<UnimplementedOperation> {
    use UnimplementedOperation as Op;
    const OTHER_MARKERS: [&str; 11] = [
        "website",
        "logging",
        "notification",
        "accelerate",
        "requestPayment",
        "ownershipControls",
        "analytics",
        "metrics",
        "inventory",
        "intelligent-tiering",
        "metadataTable",
    ];
    OTHER_MARKERS
        .iter()
        .find(|marker| query.has(marker))
        .map(|marker| Op::OtherBucketSubresource(marker))
}

fn unimplemented_object_operation(method: &str, query: &Query) -> Option<UnimplementedOperation> {
    use UnimplementedOperation as Op;
    if query.has("torrent") {
        return Some(Op::GetObjectTorrent);
    }
    if method == "POST" && query.has("restore") {
        return Some(Op::RestoreObject);
    }
    if method == "POST" && query.has("select") {
        return Some(Op::SelectObjectContent);
    }
    None
}

/// Routing configuration.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Lowercase base domains for virtual-host addressing, e.g. `s3.localhost`.
    base_domains: Vec<String>,
}

impl Router {
    pub fn new<I, S>(base_domains: I) -> Router
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Router {
            base_domains: base_domains
                .into_iter()
                .map(|domain| domain.as_ref().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The bucket named by a virtual-host Host header, if the host is `<bucket>.<base domain>`.
    fn virtual_host_bucket(&self, host: &str) -> Option<String> {
        let host = host.trim().to_ascii_lowercase();
        // Strip a port; an IPv6 literal (`[::1]:9000`) is never a virtual host.
        let host_name = if host.starts_with('[') {
            return None;
        } else {
            host.rsplit_once(':')
                .map(|(name, _)| name.to_string())
                .unwrap_or(host)
        };
        let host_name = host_name.trim_end_matches('.');
        self.base_domains.iter().find_map(|domain| {
            host_name
                .strip_suffix(domain.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|bucket| !bucket.is_empty())
                .map(str::to_string)
        })
    }

    pub fn parse(&self, head: &RequestHead<'_>) -> Result<Endpoint, S3Error> {
        let raw_path = head.raw_path;
        if !raw_path.starts_with('/') {
            return Err(S3Error::InvalidUri);
        }
        let query = Query {
            pairs: parse_query(head.raw_query).map_err(|_| S3Error::InvalidUri)?,
        };
        let (bucket, raw_key) = match head.host.and_then(|host| self.virtual_host_bucket(host)) {
            Some(bucket) => (Some(bucket), &raw_path[1..]),
            None => {
                let rest = &raw_path[1..];
                let (raw_bucket, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
                if raw_bucket.is_empty() {
                    (None, "")
                } else {
                    (Some(decode_path_segment(raw_bucket)?), raw_key)
                }
            }
        };
        let method = head.method;
        let Some(bucket) = bucket else {
            return match method {
                "GET" => Ok(Endpoint::ListBuckets),
                _ => Err(S3Error::MethodNotAllowed),
            };
        };
        validate_bucket_name(&bucket)?;
        let key = decode_path_segment(raw_key)?;
        if key.is_empty() {
            self.bucket_endpoint(method, bucket, &query)
        } else {
            validate_key(&key)?;
            self.object_endpoint(head, bucket, key, &query)
        }
    }

    fn bucket_endpoint(
        &self,
        method: &str,
        bucket: String,
        query: &Query,
    ) -> Result<Endpoint, S3Error> {
        if method == "OPTIONS" {
            return Ok(Endpoint::PreflightCors { bucket, key: None });
        }
        if query.has("cors") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketCors { bucket }),
                "PUT" => Ok(Endpoint::PutBucketCors { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketCors { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("lifecycle") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketLifecycle { bucket }),
                "PUT" => Ok(Endpoint::PutBucketLifecycle { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketLifecycle { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("replication") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketReplication { bucket }),
                "PUT" => Ok(Endpoint::PutBucketReplication { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketReplication { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("versioning") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketVersioning { bucket }),
                "PUT" => Ok(Endpoint::PutBucketVersioning { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("tagging") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketTagging { bucket }),
                "PUT" => Ok(Endpoint::PutBucketTagging { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketTagging { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("policy") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketPolicy { bucket }),
                "PUT" => Ok(Endpoint::PutBucketPolicy { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketPolicy { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("acl") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketAcl { bucket }),
                "PUT" => Ok(Endpoint::PutBucketAcl { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("publicAccessBlock") {
            return match method {
                "GET" => Ok(Endpoint::GetPublicAccessBlock { bucket }),
                "PUT" => Ok(Endpoint::PutPublicAccessBlock { bucket }),
                "DELETE" => Ok(Endpoint::DeletePublicAccessBlock { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("object-lock") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectLockConfiguration { bucket }),
                "PUT" => Ok(Endpoint::PutObjectLockConfiguration { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("encryption") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketEncryption { bucket }),
                "PUT" => Ok(Endpoint::PutBucketEncryption { bucket }),
                "DELETE" => Ok(Endpoint::DeleteBucketEncryption { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("policyStatus") {
            return match method {
                "GET" => Ok(Endpoint::GetBucketPolicyStatus { bucket }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("versions") {
            return match method {
                "GET" => Ok(Endpoint::ListObjectVersions {
                    bucket,
                    params: ListVersionsParams {
                        prefix: query.string("prefix").unwrap_or_default(),
                        delimiter: query.string("delimiter").filter(|text| !text.is_empty()),
                        key_marker: query.string("key-marker").unwrap_or_default(),
                        version_id_marker: query.string("version-id-marker").unwrap_or_default(),
                        max_keys: query.max_entries("max-keys")?,
                        encoding: query.encoding()?,
                    },
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if let Some(operation) = unimplemented_bucket_operation(query) {
            return Ok(Endpoint::NotImplemented {
                bucket: Some(bucket),
                key: None,
                operation,
            });
        }
        match method {
            "GET" => {
                if query.has("location") {
                    return Ok(Endpoint::GetBucketLocation { bucket });
                }
                if query.has("uploads") {
                    return Ok(Endpoint::ListMultipartUploads {
                        bucket,
                        params: ListUploadsParams {
                            prefix: query.string("prefix").unwrap_or_default(),
                            delimiter: query.string("delimiter").filter(|text| !text.is_empty()),
                            key_marker: query.string("key-marker").unwrap_or_default(),
                            upload_id_marker: query.string("upload-id-marker").unwrap_or_default(),
                            max_uploads: query.max_entries("max-uploads")?,
                            encoding: query.encoding()?,
                        },
                    });
                }
                let prefix = query.string("prefix").unwrap_or_default();
                let delimiter = query.string("delimiter").filter(|text| !text.is_empty());
                let max_keys = query.max_entries("max-keys")?;
                let encoding = query.encoding()?;
                match query.get("list-type") {
                    Some("2") => Ok(Endpoint::ListObjectsV2 {
                        bucket,
                        params: ListObjectsV2Params {
                            prefix,
                            delimiter,
                            continuation_token: query.string("continuation-token"),
                            start_after: query
                                .string("start-after")
                                .filter(|text| !text.is_empty()),
                            max_keys,
                            encoding,
                            fetch_owner: query.get("fetch-owner") == Some("true"),
                        },
                    }),
                    None => Ok(Endpoint::ListObjectsV1 {
                        bucket,
                        params: ListObjectsV1Params {
                            prefix,
                            delimiter,
                            marker: query.string("marker").unwrap_or_default(),
                            max_keys,
                            encoding,
                        },
                    }),
                    Some(_) => Err(S3Error::InvalidArgument("Invalid list type".to_string())),
                }
            }
            "HEAD" => Ok(Endpoint::HeadBucket { bucket }),
            "PUT" => Ok(Endpoint::CreateBucket { bucket }),
            "DELETE" => Ok(Endpoint::DeleteBucket { bucket }),
            "POST" if query.has("delete") => Ok(Endpoint::DeleteObjects { bucket }),
            "POST" => Ok(Endpoint::PostObject { bucket }),
            _ => Err(S3Error::MethodNotAllowed),
        }
    }

    fn object_endpoint(
        &self,
        head: &RequestHead<'_>,
        bucket: String,
        key: String,
        query: &Query,
    ) -> Result<Endpoint, S3Error> {
        let method = head.method;
        if method == "OPTIONS" {
            return Ok(Endpoint::PreflightCors {
                bucket,
                key: Some(key),
            });
        }
        let version_id = query.string("versionId");
        if query.has("tagging") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectTagging {
                    bucket,
                    key,
                    version_id,
                }),
                "PUT" => Ok(Endpoint::PutObjectTagging {
                    bucket,
                    key,
                    version_id,
                }),
                "DELETE" => Ok(Endpoint::DeleteObjectTagging {
                    bucket,
                    key,
                    version_id,
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("attributes") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectAttributes {
                    bucket,
                    key,
                    version_id,
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("acl") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectAcl {
                    bucket,
                    key,
                    version_id,
                }),
                "PUT" => Ok(Endpoint::PutObjectAcl {
                    bucket,
                    key,
                    version_id,
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("retention") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectRetention {
                    bucket,
                    key,
                    version_id,
                }),
                "PUT" => Ok(Endpoint::PutObjectRetention {
                    bucket,
                    key,
                    version_id,
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if query.has("legal-hold") {
            return match method {
                "GET" => Ok(Endpoint::GetObjectLegalHold {
                    bucket,
                    key,
                    version_id,
                }),
                "PUT" => Ok(Endpoint::PutObjectLegalHold {
                    bucket,
                    key,
                    version_id,
                }),
                _ => Err(S3Error::MethodNotAllowed),
            };
        }
        if let Some(operation) = unimplemented_object_operation(method, query) {
            return Ok(Endpoint::NotImplemented {
                bucket: Some(bucket),
                key: Some(key),
                operation,
            });
        }
        match method {
            "GET" if query.has("uploadId") => Ok(Endpoint::ListParts {
                bucket,
                key,
                upload_id: query.upload_id().unwrap_or_default(),
                max_parts: query.max_entries("max-parts")?,
                part_number_marker: match query.get("part-number-marker") {
                    None => 0,
                    Some(text) => text.parse().map_err(|_| {
                        S3Error::InvalidArgument(
                            "Provided part-number-marker not an integer".to_string(),
                        )
                    })?,
                },
            }),
            "GET" => Ok(Endpoint::GetObject {
                bucket,
                key,
                version_id,
                part_number: query.part_number()?,
                overrides: ResponseOverrides {
                    cache_control: query.string("response-cache-control"),
                    content_disposition: query.string("response-content-disposition"),
                    content_encoding: query.string("response-content-encoding"),
                    content_language: query.string("response-content-language"),
                    content_type: query.string("response-content-type"),
                    expires: query.string("response-expires"),
                },
            }),
            "HEAD" => Ok(Endpoint::HeadObject {
                bucket,
                key,
                version_id,
                part_number: query.part_number()?,
            }),
            "PUT" => {
                let copy_source = head.copy_source.map(parse_copy_source).transpose()?;
                if query.has("uploadId") || query.has("partNumber") {
                    let upload_id = query.upload_id().ok_or_else(|| {
                        S3Error::InvalidRequest("partNumber requires uploadId".to_string())
                    })?;
                    let part_number = query.part_number()?.ok_or_else(|| {
                        S3Error::InvalidArgument(
                            "Part number must be an integer between 1 and 10000, inclusive"
                                .to_string(),
                        )
                    })?;
                    return Ok(match copy_source {
                        Some(source) => Endpoint::UploadPartCopy {
                            bucket,
                            key,
                            upload_id,
                            part_number,
                            source,
                            source_range: head
                                .copy_source_range
                                .map(parse_copy_source_range)
                                .transpose()?,
                        },
                        None => Endpoint::UploadPart {
                            bucket,
                            key,
                            upload_id,
                            part_number,
                        },
                    });
                }
                Ok(match copy_source {
                    Some(source) => Endpoint::CopyObject {
                        bucket,
                        key,
                        source,
                    },
                    None => Endpoint::PutObject { bucket, key },
                })
            }
            "POST" if query.has("uploads") => Ok(Endpoint::CreateMultipartUpload { bucket, key }),
            "POST" if query.has("uploadId") => Ok(Endpoint::CompleteMultipartUpload {
                bucket,
                key,
                upload_id: query.upload_id().unwrap_or_default(),
            }),
            "DELETE" if query.has("uploadId") => Ok(Endpoint::AbortMultipartUpload {
                bucket,
                key,
                upload_id: query.upload_id().unwrap_or_default(),
            }),
            "DELETE" => Ok(Endpoint::DeleteObject {
                bucket,
                key,
                version_id,
            }),
            _ => Err(S3Error::MethodNotAllowed),
        }
    }
}
