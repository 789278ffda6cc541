//! The S3 error model: every error the gateway can answer, and the single place where each one
//! is mapped to its S3 `Code` string and HTTP status.
//!
//! Invariants: [`S3Error::code`] and [`S3Error::http_status`] are the only mapping from variants to
//! wire codes (the table test below covers every variant, and an exhaustive `match` there fails to
//! compile when a variant is added without a row). [`S3Error::to_xml`] renders the standard S3
//! `<Error>` document; `NotModified` and HEAD responses carry no body, which the gateway decides via
//! [`S3Error::has_body`].

use crate::xml::XmlWriter;

/// An S3-visible failure. The `Display` text is the human-readable `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    // --- authentication and authorisation ---
    #[error("Access Denied")]
    AccessDenied,
    #[error("Request has expired")]
    RequestExpired,
    #[error("Request is not valid yet")]
    RequestNotYetValid,
    #[error("The provided token has expired.")]
    ExpiredToken,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureDoesNotMatch,
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    #[error("The difference between the request time and the server's time is too large.")]
    RequestTimeTooSkewed,
    #[error("The authorization header is malformed; {0}")]
    AuthorizationHeaderMalformed(String),
    /// AuthorizationHeaderMalformed for a credential scope of another region: the error document
    /// names the right one in `<Region>`, which SDKs (boto3, the AWS CLI) use to re-sign.
    #[error(
        "The authorization header is malformed; the region '{signing_region}' is wrong; expecting '{expected_region}'"
    )]
    WrongSigningRegion {
        signing_region: String,
        expected_region: String,
    },
    #[error("Query-string authentication is malformed: {0}")]
    AuthorizationQueryParametersError(String),
    #[error("There were headers present in the request which were not signed: {0}")]
    UnsignedHeaders(String),
    #[error("Your request was missing a required header: {0}")]
    MissingSecurityHeader(String),
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    XAmzContentSha256Mismatch,

    // --- buckets ---
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    #[error("The requested bucket name is not available.")]
    BucketAlreadyExists,
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("The specified bucket is not valid.")]
    InvalidBucketName,
    #[error("The specified location-constraint is not valid")]
    InvalidLocationConstraint,
    /// CreateBucket sent to one region's endpoint naming another region (or none, outside
    /// us-east-1); the text says which.
    #[error(
        "The {0} location constraint is incompatible for the region specific endpoint this request was sent to."
    )]
    IllegalLocationConstraintException(String),
    /// The bucket lives in another region (named here; the gateway sends it in
    /// `x-amz-bucket-region`).
    #[error(
        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint."
    )]
    PermanentRedirect { region: String },
    #[error("You have attempted to create more buckets than allowed")]
    TooManyBuckets,
    #[error("The Versioning element must be specified")]
    IllegalVersioningConfiguration,
    #[error("Mfa Authentication must be used for this request")]
    MfaAuthenticationRequired,

    // --- objects and keys ---
    #[error("The specified key does not exist.")]
    NoSuchKey,
    #[error("The specified version does not exist.")]
    NoSuchVersion,
    #[error("Your key is too long")]
    KeyTooLongError,
    #[error("Couldn't parse the specified URI.")]
    InvalidUri,
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge,
    #[error("The storage class you specified is not valid")]
    InvalidStorageClass,

    // --- multipart ---
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload,
    #[error(
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )]
    InvalidPart,
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed object size.")]
    EntityTooSmall,
    #[error("Your proposed upload exceeds the maximum allowed object size.")]
    EntityTooLarge,
    /// The write would take the bucket past its quota (Cairn's per-bucket quotas; Ceph RGW
    /// answers the same code and status). The text says which limit.
    #[error("{0}")]
    QuotaExceeded(String),

    // --- bodies, digests and checksums ---
    #[error("The Content-MD5 or checksum value you specified did not match what we received.")]
    BadDigest,
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header.")]
    IncompleteBody,
    #[error("You must provide the Content-Length HTTP header.")]
    MissingContentLength,
    #[error("Request body is empty.")]
    MissingRequestBodyError,
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema."
    )]
    MalformedXml,
    #[error("Your request was too big.")]
    MaxMessageLengthExceeded,
    #[error(
        "The request contained trailing data that was not well-formed or did not conform to our published schema."
    )]
    MalformedTrailerError,
    #[error("Only the last chunk is allowed to have a size less than 8192 bytes")]
    InvalidChunkSizeError,
    #[error(
        "Your socket connection to the server was not read from or written to within the timeout period."
    )]
    RequestTimeout,

    // --- conditions and ranges ---
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    #[error("Not Modified")]
    NotModified,
    #[error("The requested range is not satisfiable")]
    InvalidRange,
    #[error("A conflicting conditional operation is currently in progress against this resource.")]
    ConditionalRequestConflict,
    #[error("{0}")]
    InvalidBucketState(String),

    // --- generic request problems ---
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    #[error("A header you provided implies functionality that is not implemented")]
    NotImplemented,

    // --- tagging, policies and other bucket configurations ---
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("The TagSet does not exist")]
    NoSuchTagSet,
    #[error("The bucket policy does not exist")]
    NoSuchBucketPolicy,
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    MalformedAclError(String),
    /// An ACL grant to an email address: Cairn's users have no email addresses, so none resolves.
    #[error("The e-mail address you provided does not match any account on record.")]
    UnresolvableGrantByEmailAddress,
    /// A body sent with a request that takes none (an ACL body together with ACL headers).
    #[error("This request does not support content")]
    UnexpectedContent,
    #[error("The public access block configuration was not found")]
    NoSuchPublicAccessBlockConfiguration,
    #[error("The CORS configuration does not exist")]
    NoSuchCorsConfiguration,
    #[error("Object Lock configuration does not exist for this bucket")]
    ObjectLockConfigurationNotFoundError,
    #[error("The specified object does not have a ObjectLock configuration")]
    NoSuchObjectLockConfiguration,
    #[error("The server side encryption configuration was not found")]
    ServerSideEncryptionConfigurationNotFoundError,
    #[error("The lifecycle configuration does not exist")]
    NoSuchLifecycleConfiguration,
    #[error("The replication configuration was not found")]
    ReplicationConfigurationNotFoundError,
    /// A CORS preflight no rule allows.
    #[error("{0}")]
    AccessForbidden(String),

    // --- server side ---
    #[error("We encountered an internal error. Please try again.")]
    InternalError,
    #[error("Service is unable to handle request.")]
    ServiceUnavailable,
    /// 503 with the reason: too few writable storage nodes / AZs to place a stripe by the AZ rule.
    #[error("{0}")]
    PlacementUnavailable(String),
    #[error("Please reduce your request rate.")]
    SlowDown,

    // --- browser-based uploads (POST object) ---
    #[error("The body of your POST request is not well-formed multipart/form-data.")]
    MalformedPostRequest,
    #[error("Your POST request fields preceding the upload file were too large.")]
    MaxPostPreDataLengthExceeded,
    /// A POST policy that expired, whose condition failed or that does not cover a form field
    /// (AWS answers these `AccessDenied` with this message).
    #[error("Invalid according to Policy: {0}")]
    PostPolicyViolation(String),
    #[error("Invalid Policy: {0}")]
    InvalidPolicyDocument(String),

    // --- SSE-KMS (the message names the key as the request did) ---
    #[error("Invalid keyId '{0}'")]
    KmsNotFound(String),
    #[error("{0} is disabled.")]
    KmsDisabled(String),
}

impl S3Error {
    /// The S3 `<Code>` string. Several variants share a code (for example an expired presigned URL
    /// is `AccessDenied` on AWS) but keep their own message.
    pub fn code(&self) -> &'static str {
        match self {
            S3Error::AccessDenied
            | S3Error::RequestExpired
            | S3Error::RequestNotYetValid
            | S3Error::UnsignedHeaders(_) => "AccessDenied",
            S3Error::ExpiredToken => "ExpiredToken",
            S3Error::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            S3Error::InvalidAccessKeyId => "InvalidAccessKeyId",
            S3Error::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            S3Error::AuthorizationHeaderMalformed(_) | S3Error::WrongSigningRegion { .. } => {
                "AuthorizationHeaderMalformed"
            }
            S3Error::AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            S3Error::MissingSecurityHeader(_) => "MissingSecurityHeader",
            S3Error::XAmzContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            S3Error::NoSuchBucket => "NoSuchBucket",
            S3Error::BucketAlreadyExists => "BucketAlreadyExists",
            S3Error::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            S3Error::BucketNotEmpty => "BucketNotEmpty",
            S3Error::InvalidBucketName => "InvalidBucketName",
            S3Error::InvalidLocationConstraint => "InvalidLocationConstraint",
            S3Error::IllegalLocationConstraintException(_) => "IllegalLocationConstraintException",
            S3Error::PermanentRedirect { .. } => "PermanentRedirect",
            S3Error::TooManyBuckets => "TooManyBuckets",
            S3Error::IllegalVersioningConfiguration => "IllegalVersioningConfigurationException",
            S3Error::MfaAuthenticationRequired => "AccessDenied",
            S3Error::NoSuchKey => "NoSuchKey",
            S3Error::NoSuchVersion => "NoSuchVersion",
            S3Error::KeyTooLongError => "KeyTooLongError",
            S3Error::InvalidUri => "InvalidURI",
            S3Error::MetadataTooLarge => "MetadataTooLarge",
            S3Error::InvalidStorageClass => "InvalidStorageClass",
            S3Error::NoSuchUpload => "NoSuchUpload",
            S3Error::InvalidPart => "InvalidPart",
            S3Error::InvalidPartOrder => "InvalidPartOrder",
            S3Error::EntityTooSmall => "EntityTooSmall",
            S3Error::EntityTooLarge => "EntityTooLarge",
            S3Error::QuotaExceeded(_) => "QuotaExceeded",
            S3Error::BadDigest => "BadDigest",
            S3Error::InvalidDigest => "InvalidDigest",
            S3Error::IncompleteBody => "IncompleteBody",
            S3Error::MissingContentLength => "MissingContentLength",
            S3Error::MissingRequestBodyError => "MissingRequestBodyError",
            S3Error::MalformedXml => "MalformedXML",
            S3Error::MaxMessageLengthExceeded => "MaxMessageLengthExceeded",
            S3Error::InvalidChunkSizeError => "InvalidChunkSizeError",
            S3Error::MalformedTrailerError => "MalformedTrailerError",
            S3Error::RequestTimeout => "RequestTimeout",
            S3Error::PreconditionFailed => "PreconditionFailed",
            S3Error::NotModified => "NotModified",
            S3Error::InvalidRange => "InvalidRange",
            S3Error::ConditionalRequestConflict => "ConditionalRequestConflict",
            S3Error::InvalidBucketState(_) => "InvalidBucketState",
            S3Error::InvalidArgument(_) => "InvalidArgument",
            S3Error::InvalidRequest(_) => "InvalidRequest",
            S3Error::MethodNotAllowed => "MethodNotAllowed",
            S3Error::NotImplemented => "NotImplemented",
            S3Error::InvalidTag(_) => "InvalidTag",
            S3Error::BadRequest(_) => "BadRequest",
            S3Error::NoSuchTagSet => "NoSuchTagSet",
            S3Error::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            S3Error::MalformedPolicy(_) => "MalformedPolicy",
            S3Error::MalformedAclError(_) => "MalformedACLError",
            S3Error::UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            S3Error::UnexpectedContent => "UnexpectedContent",
            S3Error::NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            S3Error::NoSuchCorsConfiguration => "NoSuchCORSConfiguration",
            S3Error::ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            S3Error::NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            S3Error::ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            S3Error::NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            S3Error::ReplicationConfigurationNotFoundError => {
                "ReplicationConfigurationNotFoundError"
            }
            S3Error::AccessForbidden(_) => "AccessForbidden",
            S3Error::InternalError => "InternalError",
            S3Error::ServiceUnavailable | S3Error::PlacementUnavailable(_) => "ServiceUnavailable",
            S3Error::SlowDown => "SlowDown",
            S3Error::MalformedPostRequest => "MalformedPOSTRequest",
            S3Error::MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceededError",
            S3Error::PostPolicyViolation(_) => "AccessDenied",
            S3Error::InvalidPolicyDocument(_) => "InvalidPolicyDocument",
            S3Error::KmsNotFound(_) => "KMS.NotFoundException",
            S3Error::KmsDisabled(_) => "KMS.DisabledException",
        }
    }

    /// The HTTP status code of the response carrying this error.
    pub fn http_status(&self) -> u16 {
        match self {
            S3Error::NotModified => 304,
            S3Error::PermanentRedirect { .. } => 301,
            S3Error::AccessDenied
            | S3Error::RequestExpired
            | S3Error::RequestNotYetValid
            | S3Error::UnsignedHeaders(_)
            | S3Error::SignatureDoesNotMatch
            | S3Error::InvalidAccessKeyId
            | S3Error::RequestTimeTooSkewed
            | S3Error::AuthorizationQueryParametersError(_)
            | S3Error::MfaAuthenticationRequired
            | S3Error::InvalidChunkSizeError
            | S3Error::AccessForbidden(_)
            | S3Error::PostPolicyViolation(_)
            | S3Error::QuotaExceeded(_) => 403,
            S3Error::ExpiredToken
            | S3Error::AuthorizationHeaderMalformed(_)
            | S3Error::WrongSigningRegion { .. }
            | S3Error::MissingSecurityHeader(_)
            | S3Error::XAmzContentSha256Mismatch
            | S3Error::InvalidBucketName
            | S3Error::InvalidLocationConstraint
            | S3Error::IllegalLocationConstraintException(_)
            | S3Error::TooManyBuckets
            | S3Error::IllegalVersioningConfiguration
            | S3Error::KeyTooLongError
            | S3Error::InvalidUri
            | S3Error::MetadataTooLarge
            | S3Error::InvalidStorageClass
            | S3Error::InvalidPart
            | S3Error::InvalidPartOrder
            | S3Error::EntityTooSmall
            | S3Error::EntityTooLarge
            | S3Error::BadDigest
            | S3Error::InvalidDigest
            | S3Error::IncompleteBody
            | S3Error::MissingRequestBodyError
            | S3Error::MalformedXml
            | S3Error::MaxMessageLengthExceeded
            | S3Error::MalformedTrailerError
            | S3Error::RequestTimeout
            | S3Error::InvalidArgument(_)
            | S3Error::InvalidRequest(_)
            | S3Error::InvalidTag(_)
            | S3Error::BadRequest(_)
            | S3Error::MalformedPolicy(_)
            | S3Error::MalformedAclError(_)
            | S3Error::UnresolvableGrantByEmailAddress
            | S3Error::UnexpectedContent
            | S3Error::MalformedPostRequest
            | S3Error::MaxPostPreDataLengthExceeded
            | S3Error::InvalidPolicyDocument(_)
            | S3Error::KmsNotFound(_)
            | S3Error::KmsDisabled(_) => 400,
            S3Error::NoSuchBucket
            | S3Error::NoSuchKey
            | S3Error::NoSuchVersion
            | S3Error::NoSuchUpload
            | S3Error::NoSuchTagSet
            | S3Error::NoSuchBucketPolicy
            | S3Error::NoSuchPublicAccessBlockConfiguration
            | S3Error::NoSuchCorsConfiguration
            | S3Error::ObjectLockConfigurationNotFoundError
            | S3Error::NoSuchObjectLockConfiguration
            | S3Error::ServerSideEncryptionConfigurationNotFoundError
            | S3Error::NoSuchLifecycleConfiguration
            | S3Error::ReplicationConfigurationNotFoundError => 404,
            S3Error::MethodNotAllowed => 405,
            S3Error::BucketAlreadyExists
            | S3Error::BucketAlreadyOwnedByYou
            | S3Error::BucketNotEmpty
            | S3Error::ConditionalRequestConflict
            | S3Error::InvalidBucketState(_) => 409,
            S3Error::MissingContentLength => 411,
            S3Error::PreconditionFailed => 412,
            S3Error::InvalidRange => 416,
            S3Error::InternalError => 500,
            S3Error::NotImplemented => 501,
            S3Error::ServiceUnavailable | S3Error::PlacementUnavailable(_) | S3Error::SlowDown => {
                503
            }
        }
    }

    /// Whether the response may carry the XML body. A 304 never has one (RFC 9110 §15.4.5); the
    /// gateway also drops it for HEAD requests.
    pub fn has_body(&self) -> bool {
        self.http_status() != 304
    }

    /// Renders the S3 `<Error>` document. `resource` is the request path (for example
    /// `/bucket/key`), `request_id` the id the gateway also sends in `x-amz-request-id`.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut writer = XmlWriter::new();
        writer.open("Error");
        writer.text_element("Code", self.code());
        writer.text_element("Message", &self.to_string());
        if let S3Error::WrongSigningRegion {
            expected_region, ..
        } = self
        {
            writer.text_element("Region", expected_region);
        }
        writer.text_element("Resource", resource);
        writer.text_element("RequestId", request_id);
        writer.close("Error");
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant once. The exhaustive match in `row` (no wildcard arm) makes adding a variant
    /// without a row here a compile error.
    fn all_variants() -> Vec<S3Error> {
        vec![
            S3Error::AccessDenied,
            S3Error::RequestExpired,
            S3Error::RequestNotYetValid,
            S3Error::ExpiredToken,
            S3Error::SignatureDoesNotMatch,
            S3Error::InvalidAccessKeyId,
            S3Error::RequestTimeTooSkewed,
            S3Error::AuthorizationHeaderMalformed("x".into()),
            S3Error::WrongSigningRegion {
                signing_region: "us-east-1".into(),
                expected_region: "us-west-2".into(),
            },
            S3Error::AuthorizationQueryParametersError("x".into()),
            S3Error::UnsignedHeaders("x-amz-meta-a".into()),
            S3Error::MissingSecurityHeader("x-amz-date".into()),
            S3Error::XAmzContentSha256Mismatch,
            S3Error::NoSuchBucket,
            S3Error::BucketAlreadyExists,
            S3Error::BucketAlreadyOwnedByYou,
            S3Error::BucketNotEmpty,
            S3Error::InvalidBucketName,
            S3Error::InvalidLocationConstraint,
            S3Error::IllegalLocationConstraintException("eu-west-1".into()),
            S3Error::PermanentRedirect {
                region: "us-west-2".into(),
            },
            S3Error::TooManyBuckets,
            S3Error::IllegalVersioningConfiguration,
            S3Error::MfaAuthenticationRequired,
            S3Error::NoSuchKey,
            S3Error::NoSuchVersion,
            S3Error::KeyTooLongError,
            S3Error::InvalidUri,
            S3Error::MetadataTooLarge,
            S3Error::InvalidStorageClass,
            S3Error::NoSuchUpload,
            S3Error::InvalidPart,
            S3Error::InvalidPartOrder,
            S3Error::EntityTooSmall,
            S3Error::EntityTooLarge,
            S3Error::QuotaExceeded("over quota".into()),
            S3Error::BadDigest,
            S3Error::InvalidDigest,
            S3Error::IncompleteBody,
            S3Error::MissingContentLength,
            S3Error::MissingRequestBodyError,
            S3Error::MalformedXml,
            S3Error::MaxMessageLengthExceeded,
            S3Error::InvalidChunkSizeError,
            S3Error::MalformedTrailerError,
            S3Error::RequestTimeout,
            S3Error::PreconditionFailed,
            S3Error::NotModified,
            S3Error::InvalidRange,
            S3Error::ConditionalRequestConflict,
            S3Error::InvalidBucketState("object lock".to_owned()),
            S3Error::InvalidArgument("x".into()),
            S3Error::InvalidRequest("x".into()),
            S3Error::MethodNotAllowed,
            S3Error::NotImplemented,
            S3Error::InvalidTag("x".into()),
            S3Error::BadRequest("x".into()),
            S3Error::NoSuchTagSet,
            S3Error::NoSuchBucketPolicy,
            S3Error::MalformedPolicy("x".into()),
            S3Error::MalformedAclError("x".into()),
            S3Error::UnresolvableGrantByEmailAddress,
            S3Error::UnexpectedContent,
            S3Error::NoSuchPublicAccessBlockConfiguration,
            S3Error::NoSuchCorsConfiguration,
            S3Error::ObjectLockConfigurationNotFoundError,
            S3Error::NoSuchObjectLockConfiguration,
            S3Error::ServerSideEncryptionConfigurationNotFoundError,
            S3Error::NoSuchLifecycleConfiguration,
            S3Error::ReplicationConfigurationNotFoundError,
            S3Error::AccessForbidden("x".into()),
            S3Error::InternalError,
            S3Error::ServiceUnavailable,
            S3Error::PlacementUnavailable("x".into()),
            S3Error::SlowDown,
            S3Error::MalformedPostRequest,
            S3Error::MaxPostPreDataLengthExceeded,
            S3Error::PostPolicyViolation("Policy expired.".into()),
            S3Error::InvalidPolicyDocument("x".into()),
            S3Error::KmsNotFound("x".into()),
            S3Error::KmsDisabled("x".into()),
        ]
    }

    /// The expected (code, status) per variant, written independently of the implementation.
    fn row(error: &S3Error) -> (&'static str, u16) {
        match error {
            S3Error::AccessDenied => ("AccessDenied", 403),
            S3Error::RequestExpired => ("AccessDenied", 403),
            S3Error::RequestNotYetValid => ("AccessDenied", 403),
            S3Error::ExpiredToken => ("ExpiredToken", 400),
            S3Error::SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
            S3Error::InvalidAccessKeyId => ("InvalidAccessKeyId", 403),
            S3Error::RequestTimeTooSkewed => ("RequestTimeTooSkewed", 403),
            S3Error::AuthorizationHeaderMalformed(_) => ("AuthorizationHeaderMalformed", 400),
            S3Error::WrongSigningRegion { .. } => ("AuthorizationHeaderMalformed", 400),
            S3Error::AuthorizationQueryParametersError(_) => {
                ("AuthorizationQueryParametersError", 403)
            }
            S3Error::UnsignedHeaders(_) => ("AccessDenied", 403),
            S3Error::MissingSecurityHeader(_) => ("MissingSecurityHeader", 400),
            S3Error::XAmzContentSha256Mismatch => ("XAmzContentSHA256Mismatch", 400),
            S3Error::NoSuchBucket => ("NoSuchBucket", 404),
            S3Error::BucketAlreadyExists => ("BucketAlreadyExists", 409),
            S3Error::BucketAlreadyOwnedByYou => ("BucketAlreadyOwnedByYou", 409),
            S3Error::BucketNotEmpty => ("BucketNotEmpty", 409),
            S3Error::InvalidBucketName => ("InvalidBucketName", 400),
            S3Error::InvalidLocationConstraint => ("InvalidLocationConstraint", 400),
            S3Error::IllegalLocationConstraintException(_) => {
                ("IllegalLocationConstraintException", 400)
            }
            S3Error::PermanentRedirect { .. } => ("PermanentRedirect", 301),
            S3Error::TooManyBuckets => ("TooManyBuckets", 400),
            S3Error::IllegalVersioningConfiguration => {
                ("IllegalVersioningConfigurationException", 400)
            }
            S3Error::MfaAuthenticationRequired => ("AccessDenied", 403),
            S3Error::NoSuchKey => ("NoSuchKey", 404),
            S3Error::NoSuchVersion => ("NoSuchVersion", 404),
            S3Error::KeyTooLongError => ("KeyTooLongError", 400),
            S3Error::InvalidUri => ("InvalidURI", 400),
            S3Error::MetadataTooLarge => ("MetadataTooLarge", 400),
            S3Error::InvalidStorageClass => ("InvalidStorageClass", 400),
            S3Error::NoSuchUpload => ("NoSuchUpload", 404),
            S3Error::InvalidPart => ("InvalidPart", 400),
            S3Error::InvalidPartOrder => ("InvalidPartOrder", 400),
            S3Error::EntityTooSmall => ("EntityTooSmall", 400),
            S3Error::EntityTooLarge => ("EntityTooLarge", 400),
            S3Error::QuotaExceeded(_) => ("QuotaExceeded", 403),
            S3Error::BadDigest => ("BadDigest", 400),
            S3Error::InvalidDigest => ("InvalidDigest", 400),
            S3Error::IncompleteBody => ("IncompleteBody", 400),
            S3Error::MissingContentLength => ("MissingContentLength", 411),
            S3Error::MissingRequestBodyError => ("MissingRequestBodyError", 400),
            S3Error::MalformedXml => ("MalformedXML", 400),
            S3Error::MaxMessageLengthExceeded => ("MaxMessageLengthExceeded", 400),
            S3Error::InvalidChunkSizeError => ("InvalidChunkSizeError", 403),
            S3Error::MalformedTrailerError => ("MalformedTrailerError", 400),
            S3Error::RequestTimeout => ("RequestTimeout", 400),
            S3Error::PreconditionFailed => ("PreconditionFailed", 412),
            S3Error::NotModified => ("NotModified", 304),
            S3Error::InvalidRange => ("InvalidRange", 416),
            S3Error::ConditionalRequestConflict => ("ConditionalRequestConflict", 409),
            S3Error::InvalidBucketState(_) => ("InvalidBucketState", 409),
            S3Error::InvalidArgument(_) => ("InvalidArgument", 400),
            S3Error::InvalidRequest(_) => ("InvalidRequest", 400),
            S3Error::MethodNotAllowed => ("MethodNotAllowed", 405),
            S3Error::NotImplemented => ("NotImplemented", 501),
            S3Error::InvalidTag(_) => ("InvalidTag", 400),
            S3Error::BadRequest(_) => ("BadRequest", 400),
            S3Error::NoSuchTagSet => ("NoSuchTagSet", 404),
            S3Error::NoSuchBucketPolicy => ("NoSuchBucketPolicy", 404),
            S3Error::MalformedPolicy(_) => ("MalformedPolicy", 400),
            S3Error::MalformedAclError(_) => ("MalformedACLError", 400),
            S3Error::UnresolvableGrantByEmailAddress => ("UnresolvableGrantByEmailAddress", 400),
            S3Error::UnexpectedContent => ("UnexpectedContent", 400),
            S3Error::NoSuchPublicAccessBlockConfiguration => {
                ("NoSuchPublicAccessBlockConfiguration", 404)
            }
            S3Error::NoSuchCorsConfiguration => ("NoSuchCORSConfiguration", 404),
            S3Error::ObjectLockConfigurationNotFoundError => {
                ("ObjectLockConfigurationNotFoundError", 404)
            }
            S3Error::NoSuchObjectLockConfiguration => ("NoSuchObjectLockConfiguration", 404),
            S3Error::ServerSideEncryptionConfigurationNotFoundError => {
                ("ServerSideEncryptionConfigurationNotFoundError", 404)
            }
            S3Error::NoSuchLifecycleConfiguration => ("NoSuchLifecycleConfiguration", 404),
            S3Error::ReplicationConfigurationNotFoundError => {
                ("ReplicationConfigurationNotFoundError", 404)
            }
            S3Error::AccessForbidden(_) => ("AccessForbidden", 403),
            S3Error::InternalError => ("InternalError", 500),
            S3Error::ServiceUnavailable => ("ServiceUnavailable", 503),
            S3Error::PlacementUnavailable(_) => ("ServiceUnavailable", 503),
            S3Error::SlowDown => ("SlowDown", 503),
            S3Error::MalformedPostRequest => ("MalformedPOSTRequest", 400),
            S3Error::MaxPostPreDataLengthExceeded => ("MaxPostPreDataLengthExceededError", 400),
            S3Error::PostPolicyViolation(_) => ("AccessDenied", 403),
            S3Error::InvalidPolicyDocument(_) => ("InvalidPolicyDocument", 400),
            S3Error::KmsNotFound(_) => ("KMS.NotFoundException", 400),
            S3Error::KmsDisabled(_) => ("KMS.DisabledException", 400),
        }
    }

    #[test]
    fn every_variant_maps_to_its_code_and_status() {
        let variants = all_variants();
        assert_eq!(variants.len(), 81, "a variant is missing from the table");
        for error in &variants {
            assert_eq!((error.code(), error.http_status()), row(error), "{error:?}");
            assert!(!error.to_string().is_empty(), "{error:?} has no message");
        }
    }

    #[test]
    fn error_xml_is_golden() {
        let xml = S3Error::NoSuchKey.to_xml("/photos/a&b.jpg", "4442587FB7D0A2F9");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Resource>/photos/a&amp;b.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"
        );
    }

    #[test]
    fn not_modified_has_no_body() {
        assert!(!S3Error::NotModified.has_body());
        assert!(S3Error::PreconditionFailed.has_body());
    }
}
