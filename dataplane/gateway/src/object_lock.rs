//! Object lock's S3 surface: CreateBucket with `x-amz-bucket-object-lock-enabled`,
//! Put/GetObjectLockConfiguration, Put/GetObjectRetention, Put/GetObjectLegalHold, the
//! `x-amz-object-lock-*` headers of new versions (and of GET/HEAD responses), the bucket's
//! default retention, and `x-amz-bypass-governance-retention`.
//!
//! Model: the gateway translates S3 documents and headers to the attributes of
//! `cairn_meta_state::object_lock` (bucket `object-lock`, version `retention` and `legal-hold`)
//! and back; the state machine enforces every rule that protects data (no removal of a locked
//! version, no weakening of a retention, object lock needs versioning and stays on), so a
//! gateway bug cannot unlock anything. A request carrying the bypass header is wrapped in
//! `Command::BypassGovernanceRetention` only when the caller holds `s3:BypassGovernanceRetention`
//! (the bucket owner does unless the bucket policy denies it; others need a policy grant).
//! Writes that set a retention must carry `Content-MD5` or a checksum, as in S3.

use cairn_meta_state::object_lock::{
    LEGAL_HOLD_ATTRIBUTE, OBJECT_LOCK_ATTRIBUTE, ObjectLockConfiguration, RETENTION_ATTRIBUTE,
    Retention, RetentionMode, RetentionPeriod, decode_legal_hold, encode_legal_hold,
};
use cairn_meta_state::{Attributes, BucketRecord, Command, ObjectRecord, Response};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::object_lock::{
    LockConfiguration, LockMode, LockPeriod, RetentionSetting, has_integrity_header,
    legal_hold_xml, object_lock_configuration_xml, parse_legal_hold, parse_lock_headers,
    parse_object_lock_configuration, parse_retention, retention_xml,
};
use cairn_s3_proto::time::format_iso8601_millis;

use crate::body::RequestBody;
use crate::bucket::{owned_bucket, read_verified_document};
use crate::object::{insert_version_id, read_record, version_selector};
use crate::server::{HttpResponse, RequestContext, empty_body, now_unix_millis, xml_response};

const BYPASS_HEADER: &str = "x-amz-bypass-governance-retention";
const BYPASS_ACTION: &str = "s3:BypassGovernanceRetention";

fn missing_lock_configuration() -> S3Error {
    S3Error::InvalidRequest("Bucket is missing Object Lock Configuration".to_owned())
}

fn to_meta_mode(mode: LockMode) -> RetentionMode {
    match mode {
        LockMode::Governance => RetentionMode::Governance,
        LockMode::Compliance => RetentionMode::Compliance,
    }
}

fn to_s3_mode(mode: RetentionMode) -> LockMode {
    match mode {
        RetentionMode::Governance => LockMode::Governance,
        RetentionMode::Compliance => LockMode::Compliance,
    }
}

/// The bucket's object lock configuration; `None` when object lock is not enabled on it.
pub(crate) fn bucket_configuration(
    record: &BucketRecord,
) -> Result<Option<ObjectLockConfiguration>, S3Error> {
    record
        .attributes
        .get(OBJECT_LOCK_ATTRIBUTE)
        .map(|bytes| {
            ObjectLockConfiguration::decode(bytes).ok_or_else(|| {
                tracing::error!(bucket = %record.name, "stored object lock configuration does not decode");
                S3Error::InternalError
            })
        })
        .transpose()
}

/// A version's retention attribute, if it has one.
fn retention_of(record: &ObjectRecord) -> Result<Option<Retention>, S3Error> {
    record
        .attributes
        .get(RETENTION_ATTRIBUTE)
        .map(|bytes| {
            Retention::decode(bytes).ok_or_else(|| {
                tracing::error!(bucket = %record.bucket, key = %record.key, "stored retention does not decode");
                S3Error::InternalError
            })
        })
        .transpose()
}

fn legal_hold_of(record: &ObjectRecord) -> Result<Option<bool>, S3Error> {
    record
        .attributes
        .get(LEGAL_HOLD_ATTRIBUTE)
        .map(|bytes| {
            decode_legal_hold(bytes).ok_or_else(|| {
                tracing::error!(bucket = %record.bucket, key = %record.key, "stored legal hold does not decode");
                S3Error::InternalError
            })
        })
        .transpose()
}

fn require_integrity(context: &RequestContext<'_>) -> Result<(), S3Error> {
    if has_integrity_header(context.headers) {
        Ok(())
    } else {
        Err(S3Error::InvalidRequest(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters".to_owned(),
        ))
    }
}

/// The attribute CreateBucket stores when the request asks for object lock
/// (`x-amz-bucket-object-lock-enabled: true`; the state machine then enables versioning too).
pub(crate) fn create_bucket_attribute(
    context: &RequestContext<'_>,
) -> Result<Option<(String, Vec<u8>)>, S3Error> {
    match context
        .header("x-amz-bucket-object-lock-enabled")
        .map(str::trim)
    {
        None => Ok(None),
        Some(value) if value.eq_ignore_ascii_case("true") => Ok(Some((
            OBJECT_LOCK_ATTRIBUTE.to_owned(),
            ObjectLockConfiguration::default().encode(),
        ))),
        Some(value) if value.eq_ignore_ascii_case("false") => Ok(None),
        Some(_) => Err(S3Error::InvalidArgument(
            "Invalid value for x-amz-bucket-object-lock-enabled".to_owned(),
        )),
    }
}

/// The lock attributes of a new version: the request's `x-amz-object-lock-*` headers, else the
/// bucket's default retention computed from `now_ms`. `body_write`: the request uploads the
/// version's bytes (PutObject), so a retention needs an integrity header.
pub(crate) fn new_version_attributes(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    now_ms: u64,
    body_write: bool,
) -> Result<Attributes, S3Error> {
    let headers = parse_lock_headers(context.headers)?;
    let configuration = bucket_configuration(bucket_record)?;
    let mut attributes = Attributes::new();
    let Some(configuration) = configuration else {
        return if headers.is_empty() {
            Ok(attributes)
        } else {
            Err(missing_lock_configuration())
        };
    };
    let retention = match headers.retention {
        Some(setting) => {
            if setting.retain_until_unix_millis <= now_ms as i64 {
                return Err(S3Error::InvalidArgument(
                    "The retain until date must be in the future!".to_owned(),
                ));
            }
            Some(Retention {
                mode: to_meta_mode(setting.mode),
                retain_until_ms: setting.retain_until_unix_millis as u64,
            })
        }
        None => configuration.default_retention_at(now_ms),
    };
    if let Some(retention) = retention {
        if body_write {
            require_integrity(context)?;
        }
        attributes.insert(RETENTION_ATTRIBUTE.to_owned(), retention.encode());
    }
    if let Some(on) = headers.legal_hold {
        attributes.insert(LEGAL_HOLD_ATTRIBUTE.to_owned(), encode_legal_hold(on));
    }
    Ok(attributes)
}

/// The `x-amz-object-lock-*` headers of a GET/HEAD response about `record`.
pub(crate) fn response_headers(record: &ObjectRecord) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if let Ok(Some(retention)) = retention_of(record) {
        headers.push(("x-amz-object-lock-mode", retention.mode.as_str().to_owned()));
        headers.push((
            "x-amz-object-lock-retain-until-date",
            format_iso8601_millis(retention.retain_until_ms as i64),
        ));
    }
    if let Ok(Some(on)) = legal_hold_of(record) {
        headers.push((
            "x-amz-object-lock-legal-hold",
            if on { "ON" } else { "OFF" }.to_owned(),
        ));
    }
    headers
}

/// Whether this request may bypass GOVERNANCE retention: it says so
/// (`x-amz-bypass-governance-retention: true`) and the caller holds the permission for `key`.
pub(crate) fn bypass_governance(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    key: &str,
) -> bool {
    let asked = context
        .header(BYPASS_HEADER)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    // A policy that denies the bypass leaves the request without it: the state machine then
    // refuses whatever the retention protects.
    asked
        && matches!(
            crate::policy::authorize(context, bucket_record, BYPASS_ACTION, Some(key)),
            Ok(true)
        )
}

/// Wraps `command` in the governance bypass when [`bypass_governance`] allows it.
pub(crate) fn with_bypass(command: Command, bypass: bool) -> Command {
    if bypass {
        Command::BypassGovernanceRetention {
            command: Box::new(command),
        }
    } else {
        command
    }
}

pub async fn get_object_lock_configuration(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let configuration =
        bucket_configuration(&record)?.ok_or(S3Error::ObjectLockConfigurationNotFoundError)?;
    let document = LockConfiguration {
        default_retention: configuration.default_retention.map(|(mode, period)| {
            (
                to_s3_mode(mode),
                match period {
                    RetentionPeriod::Days(days) => LockPeriod::Days(days),
                    RetentionPeriod::Years(years) => LockPeriod::Years(years),
                },
            )
        }),
    };
    Ok(xml_response(object_lock_configuration_xml(&document)))
}

/// PutObjectLockConfiguration. It also turns object lock on for an existing bucket, which S3
/// allows once versioning is enabled (the state machine refuses it otherwise with
/// `InvalidBucketState`).
pub async fn put_object_lock_configuration(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    if context.header("x-amz-bucket-object-lock-token").is_some() {
        // Tokens belong to the pre-2023 flow for enabling object lock through support; Cairn
        // issues none.
        return Err(S3Error::InvalidRequest(
            "An Object Lock token is not applicable to this bucket".to_owned(),
        ));
    }
    require_integrity(context)?;
    let document = read_verified_document(context, body).await?;
    let parsed = parse_object_lock_configuration(&document)?;
    let configuration = ObjectLockConfiguration {
        default_retention: parsed.default_retention.map(|(mode, period)| {
            (
                to_meta_mode(mode),
                match period {
                    LockPeriod::Days(days) => RetentionPeriod::Days(days),
                    LockPeriod::Years(years) => RetentionPeriod::Years(years),
                },
            )
        }),
    };
    crate::bucket::write_bucket_attribute(
        context,
        bucket,
        OBJECT_LOCK_ATTRIBUTE,
        Some(configuration.encode()),
        http::StatusCode::OK,
    )
    .await
}

/// The bucket (checked for the request's action) and the version a retention or legal hold
/// request addresses; the bucket must have object lock.
async fn locked_version(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(BucketRecord, ObjectRecord), S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    if bucket_configuration(&bucket_record)?.is_none() {
        return Err(missing_lock_configuration());
    }
    let record = read_record(context, bucket, key, version_selector(version_id)?).await?;
    Ok((bucket_record, record))
}

pub async fn get_object_retention(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let (bucket_record, record) = locked_version(context, bucket, key, version_id).await?;
    let retention = retention_of(&record)?.ok_or(S3Error::NoSuchObjectLockConfiguration)?;
    let mut response = xml_response(retention_xml(&RetentionSetting {
        mode: to_s3_mode(retention.mode),
        retain_until_unix_millis: retention.retain_until_ms as i64,
    }));
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}

/// Sets one lock attribute of a version (the state machine refuses a weakening it does not
/// allow) and answers 200 with the version id.
async fn write_lock_attribute(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    record: &ObjectRecord,
    name: &str,
    value: Option<Vec<u8>>,
    bypass: bool,
) -> Result<HttpResponse, S3Error> {
    let command = Command::PutObjectAttribute {
        bucket: bucket_record.name.clone(),
        key: record.key.clone(),
        // The version read above, by id, so a new version in between is not the one changed.
        version: cairn_meta_state::VersionSelector::Id(record.version_id),
        name: name.to_owned(),
        value,
    };
    let command = crate::replication::queue_attribute_change(
        bucket_record,
        &record.key,
        name,
        with_bypass(command, bypass),
    );
    let Response::Object(updated) = context.executor.meta_write(command).await? else {
        return Err(S3Error::InternalError);
    };
    let mut response = http::Response::builder()
        .status(http::StatusCode::OK)
        .body(empty_body())
        .expect("static headers are valid");
    insert_version_id(&mut response, bucket_record.versioning, &updated);
    Ok(response)
}

pub async fn put_object_retention(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let (bucket_record, record) = locked_version(context, bucket, key, version_id).await?;
    require_integrity(context)?;
    let document = read_verified_document(context, body).await?;
    let value = match parse_retention(&document)? {
        None => None,
        Some(setting) => {
            if setting.retain_until_unix_millis <= now_unix_millis() as i64 {
                return Err(S3Error::InvalidArgument(
                    "The retain until date must be in the future!".to_owned(),
                ));
            }
            Some(
                Retention {
                    mode: to_meta_mode(setting.mode),
                    retain_until_ms: setting.retain_until_unix_millis as u64,
                }
                .encode(),
            )
        }
    };
    let bypass = bypass_governance(context, &bucket_record, key);
    write_lock_attribute(
        context,
        &bucket_record,
        &record,
        RETENTION_ATTRIBUTE,
        value,
        bypass,
    )
    .await
}

pub async fn get_object_legal_hold(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let (bucket_record, record) = locked_version(context, bucket, key, version_id).await?;
    let on = legal_hold_of(&record)?.ok_or(S3Error::NoSuchObjectLockConfiguration)?;
    let mut response = xml_response(legal_hold_xml(on));
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}

pub async fn put_object_legal_hold(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let (bucket_record, record) = locked_version(context, bucket, key, version_id).await?;
    require_integrity(context)?;
    let document = read_verified_document(context, body).await?;
    let on = parse_legal_hold(&document)?;
    write_lock_attribute(
        context,
        &bucket_record,
        &record,
        LEGAL_HOLD_ATTRIBUTE,
        Some(encode_legal_hold(on)),
        false,
    )
    .await
}
