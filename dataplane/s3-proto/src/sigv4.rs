//! AWS Signature Version 4 verification for S3: the Authorization header form and presigned
//! query URLs, producing the context that [`crate::chunked`] needs to verify aws-chunked bodies.
//!
//! Model: the verifier recomputes the signature from the request as received — canonical
//! request (S3 variant: the path is URI-encoded once and never normalised), string to sign,
//! signing key derived from the secret the caller's [`SecretKeyProvider`] returns — and compares
//! it with the client's in constant time. The caller supplies the current time, so the checks are
//! deterministic: a timestamp more than [`MAX_CLOCK_SKEW_SECONDS`] away is
//! `RequestTimeTooSkewed`; a presigned URL is valid for `X-Amz-Expires` seconds (at most 7 days)
//! after `X-Amz-Date`.
//!
//! Invariants: a request is only reported as authenticated when the signature matched; every
//! `x-amz-*` header of a header-signed request is covered by the signature; the payload mode
//! returned ([`PayloadMode`]) tells the gateway which body check is still its job (hash compare
//! for a signed SHA-256, a chunk decoder for streaming modes).
//!
//! Canonical URI: S3 clients sign the path as they send it, encoded once; a server that decodes and
//! re-encodes strictly gets the same string for every client that encodes strictly. Some clients
//! leave characters such as `!`, `*`, `'` or `(` raw; for them the raw wire path is tried as
//! well. Both candidates derive from the received path, so accepting either grants nothing that
//! the signer did not sign.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::S3Error;
use crate::encoding::{PlusMeans, percent_decode, uri_encode};
use crate::time::{format_amz_date, parse_amz_date, parse_http_date};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 15 * 60;
pub const PRESIGNED_MAX_EXPIRES_SECONDS: i64 = 7 * 24 * 3600;
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

/// Where secrets come from (the metadata service in the gateway). `None` means the access key
/// id is unknown.
pub trait SecretKeyProvider {
    fn secret_access_key(&self, access_key_id: &str) -> Option<String>;
}

impl<F> SecretKeyProvider for F
where
    F: Fn(&str) -> Option<String>,
{
    fn secret_access_key(&self, access_key_id: &str) -> Option<String> {
        self(access_key_id)
    }
}

/// The request as received. Header names may be in any case; a name that repeats is joined
/// with `,` in canonical form, in the order given.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

impl<'a> SignedRequest<'a> {
    /// The access key id the request claims, before any verification: from a SigV4
    /// `Authorization` header or a presigned URL's `X-Amz-Credential`. `None` for an unsigned
    /// request and for an `Authorization` header of another scheme ([`verify_request`] names
    /// the precise error for those). Callers use it to fetch the one secret to verify with.
    pub fn claimed_access_key_id(&self) -> Result<Option<String>, S3Error> {
        if let Some(authorization) = self.header("authorization") {
            if !authorization.trim_start().starts_with(ALGORITHM) {
                return Ok(None);
            }
            return Ok(Some(
                parse_authorization_header(authorization)?
                    .credential
                    .access_key_id,
            ));
        }
        let credential = self
            .raw_query
            .split('&')
            .find_map(|segment| segment.strip_prefix("X-Amz-Credential="));
        Ok(credential.map(|value| {
            // `AKID%2F20250101%2F...` (or with a literal '/'): the id is everything before the
            // first separator; access key ids are alphanumeric, so no further decoding is needed.
            let upper = value.to_ascii_uppercase();
            let end = [upper.find("%2F"), upper.find('/')]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(value.len());
            value[..end].to_owned()
        }))
    }

    pub fn header(&self, lowercase_name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(lowercase_name))
            .map(|(_, value)| *value)
    }
}

/// Verifier settings.
#[derive(Debug, Clone, Default)]
pub struct VerifyConfig {
    /// When set, the credential scope's region must equal it (`AuthorizationHeaderMalformed`).
    pub region: Option<String>,
}

/// How the body is protected, i.e. what the gateway must still check while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD` (and every presigned URL without a payload hash).
    Unsigned,
    /// The hex SHA-256 the client signed; the body must hash to it, else
    /// `XAmzContentSHA256Mismatch`.
    Sha256 { expected_sha256: [u8; 32] },
    /// aws-chunked with signed chunks, optionally followed by a signed trailer.
    StreamingSigned { trailer: bool },
    /// aws-chunked with unsigned chunks and trailing checksum headers.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    pub fn is_aws_chunked(&self) -> bool {
        matches!(
            self,
            PayloadMode::StreamingSigned { .. } | PayloadMode::StreamingUnsignedTrailer
        )
    }
}

/// What signed chunks and trailers chain from: the request's signing key, timestamp, scope and
/// the request signature (the first "previous signature").
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigningContext {
    pub signing_key: [u8; 32],
    pub amz_timestamp: String,
    pub scope: String,
    pub seed_signature_hex: String,
}

impl std::fmt::Debug for ChunkSigningContext {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key is a credential for the day: never print it.
        formatter
            .debug_struct("ChunkSigningContext")
            .field("amz_timestamp", &self.amz_timestamp)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A request whose signature matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    pub access_key_id: String,
    pub region: String,
    pub presigned: bool,
    pub payload: PayloadMode,
    pub signing: ChunkSigningContext,
}

/// The outcome of authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// No signature at all: an anonymous request (the gateway decides whether that is allowed).
    Anonymous,
    Verified(VerifiedRequest),
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

thread_local! {
    /// Signing keys this thread derived lately, by secret, day, region and service. A key
    /// changes with those only, and deriving one costs four HMACs (16 SHA-256 blocks), more than
    /// the rest of a request's signature check (the canonical request's hash and one HMAC); a
    /// client signs every request of a day with the same key. Emptied when it holds
    /// [`SIGNING_KEYS_KEPT`].
    static SIGNING_KEYS: std::cell::RefCell<std::collections::HashMap<Vec<u8>, [u8; 32]>> =
        std::cell::RefCell::default();
}

/// Most derived signing keys one thread keeps (see [`signing_key`]).
const SIGNING_KEYS_KEPT: usize = 1024;

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`,
/// remembered per thread (see [`SIGNING_KEYS`]).
pub fn signing_key(
    secret_access_key: &str,
    date_yyyymmdd: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    // Each part with its length in front, so no two different quadruples share a name.
    let mut name = Vec::with_capacity(
        16 + secret_access_key.len() + date_yyyymmdd.len() + region.len() + service.len(),
    );
    for part in [secret_access_key, date_yyyymmdd, region, service] {
        name.extend_from_slice(&(part.len() as u32).to_le_bytes());
        name.extend_from_slice(part.as_bytes());
    }
    SIGNING_KEYS.with_borrow_mut(|keys| {
        if let Some(key) = keys.get(&name) {
            return *key;
        }
        let key = derive_signing_key(secret_access_key, date_yyyymmdd, region, service);
        if keys.len() >= SIGNING_KEYS_KEPT {
            keys.clear();
        }
        keys.insert(name, key);
        key
    })
}

fn derive_signing_key(
    secret_access_key: &str,
    date_yyyymmdd: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let date_key = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        date_yyyymmdd.as_bytes(),
    );
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

pub fn string_to_sign(amz_timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signature_hex(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// Constant-time equality of two hex signatures (lengths are public: always 64).
pub fn signatures_equal(computed_hex: &str, provided_hex: &str) -> bool {
    computed_hex.len() == provided_hex.len()
        && bool::from(computed_hex.as_bytes().ct_eq(provided_hex.as_bytes()))
}

/// The canonical query string: every parameter except `X-Amz-Signature`, names and values
/// decoded then strictly re-encoded, sorted by name then value.
pub fn canonical_query_string(raw_query: &str, exclude_signature: bool) -> Result<String, S3Error> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for segment in raw_query.split('&').filter(|segment| !segment.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let name = percent_decode(raw_name, PlusMeans::Plus).map_err(|_| S3Error::InvalidUri)?;
        if exclude_signature && name == "X-Amz-Signature" {
            continue;
        }
        let value = percent_decode(raw_value, PlusMeans::Plus).map_err(|_| S3Error::InvalidUri)?;
        pairs.push((uri_encode(&name, false), uri_encode(&value, false)));
    }
    pairs.sort();
    Ok(pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&"))
}

/// The canonical URI candidates, strict re-encoding first (see the module header).
fn canonical_uri_candidates(raw_path: &str) -> Result<Vec<String>, S3Error> {
    let decoded = percent_decode(raw_path, PlusMeans::Plus).map_err(|_| S3Error::InvalidUri)?;
    let strict = uri_encode(&decoded, true);
    let mut candidates = vec![strict];
    if candidates[0] != raw_path {
        candidates.push(raw_path.to_string());
    }
    Ok(candidates)
}

/// Header value normalisation: trim, and collapse runs of spaces to one.
fn canonical_header_value(value: &str) -> String {
    let mut normalised = String::with_capacity(value.len());
    let mut previous_space = false;
    for character in value.trim().chars() {
        if character == ' ' {
            if !previous_space {
                normalised.push(' ');
            }
            previous_space = true;
        } else {
            normalised.push(character);
            previous_space = false;
        }
    }
    normalised
}

fn canonical_headers(
    request: &SignedRequest<'_>,
    signed_headers: &[String],
) -> Result<String, S3Error> {
    let mut canonical = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| canonical_header_value(value))
            .collect();
        if values.is_empty() {
            // A signed header that is not in the request cannot have been signed with this request.
            return Err(S3Error::SignatureDoesNotMatch);
        }
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    Ok(canonical)
}

/// Assembles a canonical request.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    )
}

/// `AKID/20130524/us-east-1/s3/aws4_request`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date_yyyymmdd: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date_yyyymmdd, self.region, self.service
        )
    }

    pub fn parse(text: &str) -> Option<Credential> {
        // The access key id itself cannot contain '/', so split from the right.
        let mut parts = text.rsplitn(5, '/');
        let terminal = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key_id = parts.next()?;
        let date_ok = date.len() == 8 && date.bytes().all(|byte| byte.is_ascii_digit());
        if terminal != "aws4_request" || !date_ok || access_key_id.is_empty() || region.is_empty() {
            return None;
        }
        Some(Credential {
            access_key_id: access_key_id.to_string(),
            date_yyyymmdd: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }
}

/// The parsed Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub credential: Credential,
    pub signed_headers: Vec<String>,
    pub signature_hex: String,
}

fn malformed(message: &str) -> S3Error {
    S3Error::AuthorizationHeaderMalformed(message.to_string())
}

fn is_signature_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn parse_signed_headers(text: &str) -> Option<Vec<String>> {
    let names: Vec<String> = text
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        None
    } else {
        Some(names)
    }
}

pub fn parse_authorization_header(value: &str) -> Result<AuthorizationHeader, S3Error> {
    let rest = value
        .trim()
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| malformed("the authorization mechanism is not AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (name, field_value) = field
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("a field is not name=value"))?;
        match name.trim() {
            "Credential" => credential = Some(field_value.trim()),
            "SignedHeaders" => signed_headers = Some(field_value.trim()),
            "Signature" => signature = Some(field_value.trim()),
            _ => return Err(malformed("unknown field")),
        }
    }
    let credential = Credential::parse(credential.ok_or_else(|| malformed("missing Credential"))?)
        .ok_or_else(|| malformed("the Credential is not AKID/date/region/service/aws4_request"))?;
    let signed_headers =
        parse_signed_headers(signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?)
            .ok_or_else(|| malformed("empty SignedHeaders entry"))?;
    let signature = signature.ok_or_else(|| malformed("missing Signature"))?;
    if !is_signature_hex(signature) {
        return Err(malformed("the Signature is not 64 lowercase hex digits"));
    }
    Ok(AuthorizationHeader {
        credential,
        signed_headers,
        signature_hex: signature.to_string(),
    })
}

fn check_scope(
    credential: &Credential,
    amz_timestamp: &str,
    config: &VerifyConfig,
    presigned: bool,
) -> Result<(), S3Error> {
    let error = |message: String| {
        if presigned {
            S3Error::AuthorizationQueryParametersError(message)
        } else {
            S3Error::AuthorizationHeaderMalformed(message)
        }
    };
    if credential.service != "s3" {
        return Err(error(format!(
            "incorrect service '{}'; expecting 's3'",
            credential.service
        )));
    }
    if !amz_timestamp.starts_with(&credential.date_yyyymmdd) {
        return Err(error(format!(
            "invalid credential date '{}'; it must match the request date",
            credential.date_yyyymmdd
        )));
    }
    if let Some(expected) = &config.region
        && &credential.region != expected
    {
        if !presigned {
            return Err(S3Error::WrongSigningRegion {
                signing_region: credential.region.clone(),
                expected_region: expected.clone(),
            });
        }
        return Err(error(format!(
            "the region '{}' is wrong; expecting '{expected}'",
            credential.region
        )));
    }
    Ok(())
}

fn parse_payload_mode(value: Option<&str>, presigned: bool) -> Result<PayloadMode, S3Error> {
    let Some(value) = value else {
        return if presigned {
            Ok(PayloadMode::Unsigned)
        } else {
            Err(S3Error::InvalidRequest(
                "Missing required header for this request: x-amz-content-sha256".to_string(),
            ))
        };
    };
    match value.trim() {
        UNSIGNED_PAYLOAD => Ok(PayloadMode::Unsigned),
        STREAMING_SIGNED => Ok(PayloadMode::StreamingSigned { trailer: false }),
        STREAMING_SIGNED_TRAILER => Ok(PayloadMode::StreamingSigned { trailer: true }),
        STREAMING_UNSIGNED_TRAILER => Ok(PayloadMode::StreamingUnsignedTrailer),
        other => {
            let mut expected_sha256 = [0u8; 32];
            match hex::decode_to_slice(other, &mut expected_sha256) {
                Ok(()) => Ok(PayloadMode::Sha256 { expected_sha256 }),
                Err(_) => Err(S3Error::InvalidArgument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, or a valid sha256 value."
                        .to_string(),
                )),
            }
        }
    }
}

/// The header-form timestamp: `x-amz-date`, else `Date` (RFC 1123), normalised to the basic
/// ISO 8601 form the string to sign uses.
fn request_timestamp(request: &SignedRequest<'_>) -> Result<(String, i64), S3Error> {
    if let Some(amz_date) = request.header("x-amz-date") {
        let unix_seconds = parse_amz_date(amz_date.trim()).ok_or(S3Error::AccessDenied)?;
        return Ok((amz_date.trim().to_string(), unix_seconds));
    }
    let date = request.header("date").ok_or(S3Error::AccessDenied)?;
    let unix_seconds = parse_http_date(date).ok_or(S3Error::AccessDenied)?;
    Ok((format_amz_date(unix_seconds), unix_seconds))
}

fn check_signature(
    request: &SignedRequest<'_>,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &[String],
    payload_hash: &str,
    claimed: &ChunkSigningContext,
) -> Result<(), S3Error> {
    let signed_headers_joined = signed_headers.join(";");
    for canonical_uri in canonical_uri_candidates(request.raw_path)? {
        let canonical = canonical_request(
            request.method,
            &canonical_uri,
            canonical_query,
            canonical_headers,
            &signed_headers_joined,
            payload_hash,
        );
        let to_sign = string_to_sign(&claimed.amz_timestamp, &claimed.scope, &canonical);
        let computed = signature_hex(&claimed.signing_key, &to_sign);
        if signatures_equal(&computed, &claimed.seed_signature_hex) {
            return Ok(());
        }
    }
    Err(S3Error::SignatureDoesNotMatch)
}

/// Authenticates a request: Authorization header, presigned query, or anonymous.
pub fn verify_request(
    request: &SignedRequest<'_>,
    secrets: &dyn SecretKeyProvider,
    config: &VerifyConfig,
    now_unix_seconds: i64,
) -> Result<Authentication, S3Error> {
    let presigned = request.raw_query.split('&').any(|segment| {
        segment.starts_with("X-Amz-Algorithm=") || segment.starts_with("X-Amz-Signature=")
    });
    if let Some(authorization) = request.header("authorization") {
        if presigned {
            return Err(S3Error::InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified".to_string(),
            ));
        }
        if authorization.trim_start().starts_with("AWS ") {
            return Err(S3Error::InvalidRequest(
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
                    .to_string(),
            ));
        }
        return verify_header_signed(request, authorization, secrets, config, now_unix_seconds)
            .map(Authentication::Verified);
    }
    if presigned {
        return verify_presigned(request, secrets, config, now_unix_seconds)
            .map(Authentication::Verified);
    }
    if request
        .raw_query
        .split('&')
        .any(|segment| segment.starts_with("AWSAccessKeyId="))
    {
        return Err(S3Error::InvalidRequest(
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.".to_string(),
        ));
    }
    Ok(Authentication::Anonymous)
}

/// Verifies an Authorization-header request.
pub fn verify_header_signed(
    request: &SignedRequest<'_>,
    authorization: &str,
    secrets: &dyn SecretKeyProvider,
    config: &VerifyConfig,
    now_unix_seconds: i64,
) -> Result<VerifiedRequest, S3Error> {
    let parsed = parse_authorization_header(authorization)?;
    let (amz_timestamp, request_unix_seconds) = request_timestamp(request)?;
    check_scope(&parsed.credential, &amz_timestamp, config, false)?;
    if !parsed.signed_headers.iter().any(|name| name == "host") {
        return Err(malformed("the host header must be signed"));
    }
    let unsigned_amz_headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name.starts_with("x-amz-") && !parsed.signed_headers.contains(name))
        .collect();
    if !unsigned_amz_headers.is_empty() {
        return Err(S3Error::UnsignedHeaders(unsigned_amz_headers.join(", ")));
    }
    if (request_unix_seconds - now_unix_seconds).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(S3Error::RequestTimeTooSkewed);
    }
    let payload_hash_header = request.header("x-amz-content-sha256");
    let payload = parse_payload_mode(payload_hash_header, false)?;
    let secret = secrets
        .secret_access_key(&parsed.credential.access_key_id)
        .ok_or(S3Error::InvalidAccessKeyId)?;
    let credential = &parsed.credential;
    let key = signing_key(
        &secret,
        &credential.date_yyyymmdd,
        &credential.region,
        &credential.service,
    );
    let scope = credential.scope();
    let canonical_query = canonical_query_string(request.raw_query, false)?;
    let headers = canonical_headers(request, &parsed.signed_headers)?;
    let signing = ChunkSigningContext {
        signing_key: key,
        amz_timestamp,
        scope,
        seed_signature_hex: parsed.signature_hex,
    };
    check_signature(
        request,
        &canonical_query,
        &headers,
        &parsed.signed_headers,
        payload_hash_header.unwrap_or(UNSIGNED_PAYLOAD).trim(),
        &signing,
    )?;
    Ok(VerifiedRequest {
        access_key_id: credential.access_key_id.clone(),
        region: credential.region.clone(),
        presigned: false,
        payload,
        signing,
    })
}

/// Verifies a presigned URL (`X-Amz-*` query parameters).
pub fn verify_presigned(
    request: &SignedRequest<'_>,
    secrets: &dyn SecretKeyProvider,
    config: &VerifyConfig,
    now_unix_seconds: i64,
) -> Result<VerifiedRequest, S3Error> {
    let query_error =
        |message: &str| S3Error::AuthorizationQueryParametersError(message.to_string());
    let pairs = crate::encoding::parse_query(request.raw_query).map_err(|_| S3Error::InvalidUri)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential = get("X-Amz-Credential")
        .and_then(Credential::parse)
        .ok_or_else(|| query_error("X-Amz-Credential is missing or malformed"))?;
    let amz_timestamp = get("X-Amz-Date")
        .ok_or_else(|| query_error("X-Amz-Date is missing"))?
        .to_string();
    let request_unix_seconds = parse_amz_date(&amz_timestamp)
        .ok_or_else(|| query_error("X-Amz-Date must be in the ISO8601 Long Format"))?;
    let expires_seconds: i64 = get("X-Amz-Expires")
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| query_error("X-Amz-Expires must be a non-negative integer"))?;
    if !(0..=PRESIGNED_MAX_EXPIRES_SECONDS).contains(&expires_seconds) {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let signed_headers = get("X-Amz-SignedHeaders")
        .and_then(parse_signed_headers)
        .ok_or_else(|| query_error("X-Amz-SignedHeaders is missing or malformed"))?;
    let provided_signature = get("X-Amz-Signature")
        .filter(|signature| is_signature_hex(signature))
        .ok_or_else(|| query_error("X-Amz-Signature is missing or malformed"))?
        .to_string();
    check_scope(&credential, &amz_timestamp, config, true)?;
    if !signed_headers.iter().any(|name| name == "host") {
        return Err(query_error("the host header must be signed"));
    }
    if request_unix_seconds - now_unix_seconds > MAX_CLOCK_SKEW_SECONDS {
        return Err(S3Error::RequestNotYetValid);
    }
    if now_unix_seconds > request_unix_seconds + expires_seconds {
        return Err(S3Error::RequestExpired);
    }
    // A presigned URL signs `UNSIGNED-PAYLOAD` unless the signer put a payload hash in the query.
    let payload_hash = get("X-Amz-Content-Sha256")
        .unwrap_or(UNSIGNED_PAYLOAD)
        .to_string();
    let payload = parse_payload_mode(Some(&payload_hash), true)?;
    let secret = secrets
        .secret_access_key(&credential.access_key_id)
        .ok_or(S3Error::InvalidAccessKeyId)?;
    let key = signing_key(
        &secret,
        &credential.date_yyyymmdd,
        &credential.region,
        &credential.service,
    );
    let scope = credential.scope();
    let canonical_query = canonical_query_string(request.raw_query, true)?;
    let headers = canonical_headers(request, &signed_headers)?;
    let signing = ChunkSigningContext {
        signing_key: key,
        amz_timestamp,
        scope,
        seed_signature_hex: provided_signature,
    };
    check_signature(
        request,
        &canonical_query,
        &headers,
        &signed_headers,
        &payload_hash,
        &signing,
    )?;
    Ok(VerifiedRequest {
        access_key_id: credential.access_key_id.clone(),
        region: credential.region.clone(),
        presigned: true,
        payload,
        signing,
    })
}

/// For [`PayloadMode::Sha256`]: compares the body's SHA-256 once it has been read.
pub fn verify_payload_sha256(
    expected_sha256: &[u8; 32],
    computed_sha256: &[u8; 32],
) -> Result<(), S3Error> {
    if bool::from(expected_sha256.ct_eq(computed_sha256)) {
        Ok(())
    } else {
        Err(S3Error::XAmzContentSha256Mismatch)
    }
}

/// The client side, for Cairn's own tools (`cairn admin`): the headers that sign a request with
/// an Authorization header (`host`, `x-amz-date` and `x-amz-content-sha256` signed, the body's
/// SHA-256 as payload hash). `raw_path` and `raw_query` go on the wire exactly as given and must
/// already be in canonical form (strictly `UriEncode`d, parameters sorted).
#[allow(clippy::too_many_arguments)]
pub fn sign_request_headers(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    host: &str,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    now_unix_seconds: i64,
) -> Vec<(String, String)> {
    sign_request_headers_with_payload_hash(
        method,
        raw_path,
        raw_query,
        host,
        sha256_hex(body),
        &[],
        access_key_id,
        secret_access_key,
        region,
        now_unix_seconds,
    )
}

/// [`sign_request_headers`] with the payload hash given ([`UNSIGNED_PAYLOAD`] for a body that is
/// streamed rather than hashed first: the replicator's copies) and `extra_headers` signed too
/// (lowercase names; every `x-amz-*` header a request carries must be signed). The caller sends
/// the extra headers itself.
#[allow(clippy::too_many_arguments)]
pub fn sign_request_headers_with_payload_hash(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    host: &str,
    payload_hash: String,
    extra_headers: &[(String, String)],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    now_unix_seconds: i64,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now_unix_seconds);
    let date = &amz_date[..8];
    let mut signed: Vec<(String, String)> = vec![
        ("host".to_owned(), host.to_owned()),
        ("x-amz-content-sha256".to_owned(), payload_hash.clone()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    signed.extend(
        extra_headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), canonical_header_value(value))),
    );
    signed.sort();
    let canonical_headers: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = signed
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = canonical_request(
        method,
        raw_path,
        raw_query,
        &canonical_headers,
        &signed_headers,
        &payload_hash,
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let signature = signature_hex(
        &signing_key(secret_access_key, date, region, "s3"),
        &string_to_sign(&amz_date, &scope, &canonical),
    );
    vec![
        ("host".to_owned(), host.to_owned()),
        ("x-amz-date".to_owned(), amz_date),
        ("x-amz-content-sha256".to_owned(), payload_hash),
        (
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
            ),
        ),
    ]
}

#[cfg(test)]
mod signer_tests {
    use super::*;

    /// The remembered keys are the derived ones: AWS's published example, keys whose parts
    /// concatenate to the same bytes, and more quadruples than a thread keeps.
    #[test]
    fn signing_keys_are_derived_once_and_named_unambiguously() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let expected = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
        for _ in 0..2 {
            assert_eq!(
                hex::encode(signing_key(secret, "20150830", "us-east-1", "iam")),
                expected
            );
        }
        assert_ne!(
            signing_key("secret", "20150830", "us-east-1", "s3"),
            signing_key("secret2", "0150830", "us-east-1", "s3")
        );
        for n in 0..(SIGNING_KEYS_KEPT + 10) {
            let secret = format!("secret-{n}");
            let key = signing_key(&secret, "20261128", "us-east-1", "s3");
            assert_eq!(
                key,
                derive_signing_key(&secret, "20261128", "us-east-1", "s3")
            );
            assert_eq!(key, signing_key(&secret, "20261128", "us-east-1", "s3"));
        }
        assert!(SIGNING_KEYS.with_borrow(|keys| keys.len()) <= SIGNING_KEYS_KEPT);
    }

    #[test]
    fn signed_headers_verify() {
        let now = 1_764_000_000;
        let headers = sign_request_headers(
            "POST",
            "/_cairn/admin/v1/access-keys",
            "user=alice",
            "127.0.0.1:9000",
            b"",
            "AKIDROOT",
            "root-secret",
            "us-east-1",
            now,
        );
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let request = SignedRequest {
            method: "POST",
            raw_path: "/_cairn/admin/v1/access-keys",
            raw_query: "user=alice",
            headers: &borrowed,
        };
        let secrets =
            |id: &str| -> Option<String> { (id == "AKIDROOT").then(|| "root-secret".to_owned()) };
        let config = VerifyConfig {
            region: Some("us-east-1".to_owned()),
        };
        let Ok(Authentication::Verified(verified)) =
            verify_request(&request, &secrets, &config, now)
        else {
            panic!("signature must verify");
        };
        assert_eq!(verified.access_key_id, "AKIDROOT");
        let wrong = |_: &str| -> Option<String> { Some("other".to_owned()) };
        assert_eq!(
            verify_request(&request, &wrong, &config, now),
            Err(S3Error::SignatureDoesNotMatch)
        );
    }
}
