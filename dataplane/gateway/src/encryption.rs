//! Server-side encryption in the gateway: which mode a write uses (request headers, else the
//! gateway's default), the envelope stored in the record's `encryption` attribute, the data key
//! a read or copy needs, and the SSE response headers.
//!
//! Model: the gateway encrypts a part's bytes with [`cairn_sse::ChunkEncryptor`] after the body
//! verifier (checksums and the ETag cover the plaintext, as in S3) and before the stripe encoder,
//! so storage nodes receive ciphertext only. Reads decode the stored range covering the wanted
//! chunks and open them ([`cairn_sse::ChunkDecryptor`]). A record without an envelope is
//! plaintext (written before encryption existed, or with encryption turned off).
//!
//! Errors follow S3: malformed SSE headers are `400 InvalidArgument` (also a KMS key id without
//! `aws:kms`); SSE-C headers on an object that is not SSE-C, or none on one that is,
//! `400 InvalidRequest`; a wrong SSE-C key `403 AccessDenied`; an unknown or disabled KMS key
//! `400 KMS.NotFoundException` / `KMS.DisabledException` (see [`crate::kms`]). No error or log
//! line carries key material.

use std::collections::BTreeMap;

use cairn_s3_proto::S3Error;
use cairn_sse::envelope::ATTRIBUTE_NAME;
use cairn_sse::{CustomerKey, DataKey, Envelope, Mode, SseError};

use crate::server::RequestContext;

const SSE_HEADER: &str = "x-amz-server-side-encryption";
const CUSTOMER_ALGORITHM: &str = "server-side-encryption-customer-algorithm";
const CUSTOMER_KEY: &str = "server-side-encryption-customer-key";
const CUSTOMER_KEY_MD5: &str = "server-side-encryption-customer-key-md5";

/// Which SSE-C header family to read: the request's own, or the copy source's
/// (`x-amz-copy-source-server-side-encryption-customer-*`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderFamily {
    Request,
    CopySource,
}

impl HeaderFamily {
    fn name(self, suffix: &str) -> String {
        match self {
            HeaderFamily::Request => format!("x-amz-{suffix}"),
            HeaderFamily::CopySource => format!("x-amz-copy-source-{suffix}"),
        }
    }
}

/// The customer key of an SSE-C request, if its headers name one (all three or none).
fn customer_key(
    context: &RequestContext<'_>,
    family: HeaderFamily,
) -> Result<Option<CustomerKey>, S3Error> {
    let algorithm = context.header(&family.name(CUSTOMER_ALGORITHM));
    let key = context.header(&family.name(CUSTOMER_KEY));
    let key_md5 = context.header(&family.name(CUSTOMER_KEY_MD5));
    match (algorithm, key, key_md5) {
        (None, None, None) => Ok(None),
        (Some(algorithm), _, _) if algorithm != "AES256" => Err(S3Error::InvalidArgument(
            "The requested encryption algorithm is not valid, must be AES256.".to_owned(),
        )),
        (None, _, _) => Err(S3Error::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.".to_owned(),
        )),
        (Some(_), None, _) => Err(S3Error::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.".to_owned(),
        )),
        (Some(_), Some(_), None) => Err(S3Error::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.".to_owned(),
        )),
        (Some(_), Some(key), Some(key_md5)) => CustomerKey::from_headers(key, key_md5)
            .map(Some)
            .map_err(|error| match error {
                SseError::Malformed { what: "customer key" } => S3Error::InvalidArgument(
                    "The secret key was invalid for the specified algorithm.".to_owned(),
                ),
                _ => S3Error::InvalidArgument(
                    "The calculated MD5 hash of the key did not match the hash that was provided."
                        .to_owned(),
                ),
            }),
    }
}

/// The encryption of an object (or upload) being read or written: its mode and data key.
pub(crate) struct ObjectKey {
    pub mode: Mode,
    pub data_key: DataKey,
    /// SSE-C: the key's MD5 (base64), echoed in responses.
    pub customer_key_md5: Option<String>,
    /// SSE-KMS: the KMS key's ARN, echoed in responses.
    pub kms_key_arn: Option<String>,
}

/// What a new object's encryption is to be.
enum Choice {
    Plaintext,
    SseS3,
    /// SSE-KMS with the named key (`None`: the cluster's default key).
    SseKms(Option<String>),
}

/// A new object's (or upload's) encryption: the attributes to store and the key to encrypt with.
pub(crate) struct NewObjectKey {
    pub attributes: BTreeMap<String, Vec<u8>>,
    pub key: Option<ObjectKey>,
}

/// Chooses the encryption of a new object or multipart upload from the request's headers
/// (`x-amz-server-side-encryption`, the SSE-C headers) or, without them, the bucket's default
/// encryption (PutBucketEncryption), else the gateway's default.
pub(crate) async fn new_object_key(
    context: &RequestContext<'_>,
    bucket_record: &cairn_meta_state::BucketRecord,
    key: &str,
) -> Result<NewObjectKey, S3Error> {
    let bucket = bucket_record.name.as_str();
    let config = &context.executor.shared.config;
    let customer = customer_key(context, HeaderFamily::Request)?;
    let requested_sse = match context.header(SSE_HEADER) {
        None => None,
        Some("AES256") => Some(Mode::SseS3),
        Some("aws:kms") => Some(Mode::SseKms),
        Some("aws:kms:dsse") => return Err(S3Error::NotImplemented),
        Some(_) => {
            return Err(S3Error::InvalidArgument(
                "The encryption method specified is not supported".to_owned(),
            ));
        }
    };
    let requested_kms_key = context.header(crate::kms::KMS_KEY_ID_HEADER);
    if requested_kms_key.is_some() && requested_sse != Some(Mode::SseKms) {
        return Err(S3Error::InvalidArgument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms".to_owned(),
        ));
    }
    if let Some(customer) = customer {
        if requested_sse.is_some() {
            return Err(S3Error::InvalidArgument(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified".to_owned(),
            ));
        }
        let (envelope, data_key) = Envelope::new_sse_c(&customer, bucket, key)
            .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
        return Ok(stored(
            &envelope,
            ObjectKey {
                mode: Mode::SseC,
                data_key,
                customer_key_md5: Some(customer.md5_base64()),
                kms_key_arn: None,
            },
        ));
    }
    let choice = match requested_sse {
        Some(Mode::SseKms) => Choice::SseKms(requested_kms_key.map(str::to_owned)),
        Some(_) => Choice::SseS3,
        None => match crate::bucket_encryption::bucket_default(bucket_record)? {
            crate::bucket_encryption::BucketDefault::SseKms { key_id } => Choice::SseKms(key_id),
            crate::bucket_encryption::BucketDefault::SseS3 => Choice::SseS3,
            crate::bucket_encryption::BucketDefault::None if config.encrypt_by_default => {
                Choice::SseS3
            }
            crate::bucket_encryption::BucketDefault::None => Choice::Plaintext,
        },
    };
    let ring = crate::master_key::current_ring(config.master_key.as_ref());
    match (choice, ring) {
        (Choice::Plaintext, _) => Ok(NewObjectKey {
            attributes: BTreeMap::new(),
            key: None,
        }),
        // A default this gateway cannot apply without a master key stays plaintext, as before
        // encryption existed; asking for it explicitly is refused.
        (Choice::SseS3 | Choice::SseKms(_), None) if requested_sse.is_none() => Ok(NewObjectKey {
            attributes: BTreeMap::new(),
            key: None,
        }),
        (Choice::SseS3 | Choice::SseKms(_), None) => Err(S3Error::NotImplemented),
        (Choice::SseS3, Some(master)) => {
            let (envelope, data_key) = Envelope::new_sse_s3(master.active(), bucket, key)
                .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
            Ok(stored(
                &envelope,
                ObjectKey {
                    mode: Mode::SseS3,
                    data_key,
                    customer_key_md5: None,
                    kms_key_arn: None,
                },
            ))
        }
        (Choice::SseKms(requested), Some(_)) => {
            let kms_key = crate::kms::key_for_write(context.executor, requested.as_deref()).await?;
            let (envelope, data_key) = Envelope::new_sse_kms(
                &kms_key.material,
                &kms_key.key_id,
                kms_key.version,
                bucket,
                key,
            )
            .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
            Ok(stored(
                &envelope,
                ObjectKey {
                    mode: Mode::SseKms,
                    data_key,
                    customer_key_md5: None,
                    kms_key_arn: Some(kms_key.arn),
                },
            ))
        }
    }
}

fn stored(envelope: &Envelope, key: ObjectKey) -> NewObjectKey {
    NewObjectKey {
        attributes: BTreeMap::from([(ATTRIBUTE_NAME.to_owned(), envelope.encode())]),
        key: Some(key),
    }
}

/// The data key of a stored object or upload (its `attributes`), given the request's SSE-C
/// headers of `family`; `None` for a plaintext record.
pub(crate) async fn open_object_key(
    context: &RequestContext<'_>,
    attributes: &BTreeMap<String, Vec<u8>>,
    bucket: &str,
    key: &str,
    family: HeaderFamily,
) -> Result<Option<ObjectKey>, S3Error> {
    let customer = customer_key(context, family)?;
    let Some(bytes) = attributes.get(ATTRIBUTE_NAME) else {
        return match customer {
            None => Ok(None),
            Some(_) => Err(S3Error::InvalidRequest(
                "The encryption parameters are not applicable to this object.".to_owned(),
            )),
        };
    };
    let envelope = Envelope::decode(bytes).map_err(|error| {
        tracing::warn!(bucket, key, %error, "unreadable encryption envelope");
        S3Error::InternalError
    })?;
    match (envelope.mode(), customer) {
        (Mode::SseS3, None) => {
            let master = crate::master_key::current_ring(
                context.executor.shared.config.master_key.as_ref(),
            )
            .ok_or_else(|| {
                    tracing::warn!(bucket, key, "SSE-S3 object but this gateway has no master key");
                    S3Error::InternalError
                })?;
            let data_key = envelope
                .open_sse_s3(&master, bucket, key)
                .map_err(|error| {
                    tracing::warn!(bucket, key, %error, "cannot open an SSE-S3 data key");
                    S3Error::InternalError
                })?;
            Ok(Some(ObjectKey {
                mode: Mode::SseS3,
                data_key,
                customer_key_md5: None,
                kms_key_arn: None,
            }))
        }
        (Mode::SseKms, None) => {
            let (key_id, key_version) = envelope.kms_key().expect("an SSE-KMS envelope");
            let kms_key = crate::kms::key_for_read(context.executor, key_id, key_version).await?;
            let data_key = envelope
                .open_sse_kms(&kms_key.material, bucket, key)
                .map_err(|error| {
                    tracing::warn!(bucket, key, %error, "cannot open an SSE-KMS data key");
                    S3Error::InternalError
                })?;
            Ok(Some(ObjectKey {
                mode: Mode::SseKms,
                data_key,
                customer_key_md5: None,
                kms_key_arn: Some(kms_key.arn),
            }))
        }
        (Mode::SseS3 | Mode::SseKms, Some(_)) => Err(S3Error::InvalidRequest(
            "The encryption parameters are not applicable to this object.".to_owned(),
        )),
        (Mode::SseC, None) => Err(S3Error::InvalidRequest(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.".to_owned(),
        )),
        (Mode::SseC, Some(customer)) => {
            let data_key = envelope
                .open_sse_c(&customer, bucket, key)
                .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
            Ok(Some(ObjectKey {
                mode: Mode::SseC,
                data_key,
                customer_key_md5: Some(customer.md5_base64()),
                kms_key_arn: None,
            }))
        }
    }
}

/// The SSE response headers for an object encrypted with `key`.
pub(crate) fn response_headers(key: Option<&ObjectKey>) -> Vec<(&'static str, String)> {
    match key {
        None => Vec::new(),
        Some(ObjectKey {
            mode: Mode::SseS3, ..
        }) => vec![(SSE_HEADER, "AES256".to_owned())],
        Some(ObjectKey {
            mode: Mode::SseKms,
            kms_key_arn,
            ..
        }) => kms_headers(kms_key_arn.clone().unwrap_or_default()),
        Some(ObjectKey {
            mode: Mode::SseC,
            customer_key_md5,
            ..
        }) => vec![
            (
                "x-amz-server-side-encryption-customer-algorithm",
                "AES256".to_owned(),
            ),
            (
                "x-amz-server-side-encryption-customer-key-MD5",
                customer_key_md5.clone().unwrap_or_default(),
            ),
        ],
    }
}

fn kms_headers(arn: String) -> Vec<(&'static str, String)> {
    vec![
        (SSE_HEADER, "aws:kms".to_owned()),
        (crate::kms::KMS_KEY_ID_HEADER, arn),
    ]
}

/// Adds [`response_headers`] to a response.
pub(crate) fn insert_response_headers(
    response: &mut crate::server::HttpResponse,
    key: Option<&ObjectKey>,
) {
    for (name, value) in response_headers(key) {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Plaintext length of each stored part of a record (`encrypted`: the parts hold chunked
/// ciphertext).
pub(crate) fn plaintext_part_lengths(
    parts: &[cairn_meta_state::PartShards],
    encrypted: bool,
) -> Result<Vec<u64>, S3Error> {
    parts
        .iter()
        .map(|part| {
            if encrypted {
                cairn_sse::plaintext_length_bytes(part.length_bytes).ok_or(S3Error::InternalError)
            } else {
                Ok(part.length_bytes)
            }
        })
        .collect()
}

/// The SSE response headers of a stored record without opening its key (the SSE-C key MD5 is
/// the request's, when it sent one).
pub(crate) fn stored_mode_headers(
    context: &RequestContext<'_>,
    attributes: &BTreeMap<String, Vec<u8>>,
) -> Vec<(&'static str, String)> {
    let envelope = attributes
        .get(ATTRIBUTE_NAME)
        .and_then(|bytes| Envelope::decode(bytes).ok());
    match envelope.as_ref().map(Envelope::mode) {
        None => Vec::new(),
        Some(Mode::SseS3) => vec![(SSE_HEADER, "AES256".to_owned())],
        Some(Mode::SseKms) => {
            let key_id = envelope
                .as_ref()
                .and_then(Envelope::kms_key)
                .map(|(key_id, _)| key_id)
                .unwrap_or_default();
            kms_headers(crate::kms::arn(context.executor, key_id))
        }
        Some(Mode::SseC) => {
            let mut headers = vec![(
                "x-amz-server-side-encryption-customer-algorithm",
                "AES256".to_owned(),
            )];
            if let Some(md5) = context.header(&HeaderFamily::Request.name(CUSTOMER_KEY_MD5)) {
                headers.push((
                    "x-amz-server-side-encryption-customer-key-MD5",
                    md5.to_owned(),
                ));
            }
            headers
        }
    }
}

/// The stored length of a part of `plaintext_length_bytes` (encrypted or not).
pub(crate) fn stored_length_bytes(plaintext_length_bytes: u64, encrypted: bool) -> u64 {
    if encrypted {
        cairn_sse::stored_length_bytes(plaintext_length_bytes)
    } else {
        plaintext_length_bytes
    }
}
