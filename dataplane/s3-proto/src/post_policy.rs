//! Browser-based uploads (POST object): the form's fields, its SigV4 signature and its POST
//! policy, and what the upload answers.
//!
//! Model (AWS "Browser-Based Uploads Using POST (AWS Signature Version 4)"): the form carries a
//! base64 policy document (`expiration` plus `conditions`) signed with the uploader's SigV4
//! signing key: the string to sign is the base64 text itself. Conditions are the exact-match
//! object form `{"field": "value"}` and the arrays `["eq", "$field", "value"]`,
//! `["starts-with", "$field", "prefix"]` and `["content-length-range", min, max]`. Field names are
//! compared case-insensitively; values exactly. Every form field must be named by a condition
//! except `file`, `policy`, `x-amz-signature` and names starting with `x-ignore-`; the `bucket`
//! condition is checked against the bucket of the URL.
//!
//! Invariants: the signature is compared in constant time; a policy is checked before any byte
//! of the file is stored; a refusal names the failed condition as AWS does
//! (`Invalid according to Policy: ...`).

use base64::Engine as _;

use crate::S3Error;
use crate::sigv4::{Credential, signatures_equal, signing_key};

/// The SigV4 algorithm name a form must carry in `x-amz-algorithm`.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The largest policy document accepted (base64 text).
pub const POLICY_MAX_BYTES: usize = 20 * 1024;

/// The form fields before the file, in order, names as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormFields {
    fields: Vec<(String, String)>,
}

impl FormFields {
    /// Adds a field; a second field of the same name (case-insensitively) is refused.
    pub fn insert(&mut self, name: String, value: String) -> Result<(), S3Error> {
        if self.get(&name).is_some() {
            return Err(S3Error::InvalidArgument(format!(
                "POST form field '{name}' appears more than once."
            )));
        }
        self.fields.push((name, value));
        Ok(())
    }

    /// A field's value by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// One policy condition. Field names are lowercase and without `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCondition {
    Equals {
        field: String,
        value: String,
    },
    StartsWith {
        field: String,
        prefix: String,
    },
    ContentLengthRange {
        minimum_bytes: u64,
        maximum_bytes: u64,
    },
}

impl PolicyCondition {
    /// The condition as AWS quotes it in a refusal.
    fn describe(&self) -> String {
        match self {
            PolicyCondition::Equals { field, value } => {
                format!("[\"eq\", \"${field}\", \"{value}\"]")
            }
            PolicyCondition::StartsWith { field, prefix } => {
                format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
            }
            PolicyCondition::ContentLengthRange {
                minimum_bytes,
                maximum_bytes,
            } => format!("[\"content-length-range\", {minimum_bytes}, {maximum_bytes}]"),
        }
    }
}

/// A decoded POST policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    pub expiration_unix_millis: i64,
    pub conditions: Vec<PolicyCondition>,
}

fn invalid_policy(reason: &str) -> S3Error {
    S3Error::InvalidPolicyDocument(reason.to_owned())
}

/// Decodes the base64 `policy` field.
pub fn parse_policy(policy_base64: &str) -> Result<PostPolicy, S3Error> {
    if policy_base64.len() > POLICY_MAX_BYTES {
        return Err(invalid_policy("Policy is too large."));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(policy_base64.trim())
        .map_err(|_| invalid_policy("Invalid Policy: Could not decode the policy."))?;
    let document: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|_| invalid_policy("Invalid JSON in the policy document."))?;
    let object = document
        .as_object()
        .ok_or_else(|| invalid_policy("The policy document must be a JSON object."))?;
    let expiration = object
        .get("expiration")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid_policy("Policy missing expiration."))?;
    let expiration_unix_millis = crate::time::parse_iso8601_millis(expiration)
        .ok_or_else(|| invalid_policy("Invalid 'expiration' value."))?;
    let conditions = object
        .get("conditions")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| invalid_policy("Policy missing conditions."))?;
    let conditions = conditions
        .iter()
        .map(parse_condition)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PostPolicy {
        expiration_unix_millis,
        conditions,
    })
}

/// A condition value: a string, or a number written as one.
fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn length_bound(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn parse_condition(value: &serde_json::Value) -> Result<PolicyCondition, S3Error> {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries = map.iter();
            let (Some((field, expected)), None) = (entries.next(), entries.next()) else {
                return Err(invalid_policy(
                    "Each condition object must have exactly one field.",
                ));
            };
            let value = scalar(expected)
                .ok_or_else(|| invalid_policy("Condition values must be strings."))?;
            Ok(PolicyCondition::Equals {
                field: field.trim_start_matches('$').to_ascii_lowercase(),
                value,
            })
        }
        serde_json::Value::Array(items) if items.len() == 3 => {
            let operator = items[0]
                .as_str()
                .ok_or_else(|| invalid_policy("Invalid condition operator."))?
                .to_ascii_lowercase();
            if operator == "content-length-range" {
                let (Some(minimum_bytes), Some(maximum_bytes)) =
                    (length_bound(&items[1]), length_bound(&items[2]))
                else {
                    return Err(invalid_policy(
                        "content-length-range bounds must be non-negative integers.",
                    ));
                };
                return Ok(PolicyCondition::ContentLengthRange {
                    minimum_bytes,
                    maximum_bytes,
                });
            }
            let field = items[1]
                .as_str()
                .and_then(|name| name.strip_prefix('$'))
                .ok_or_else(|| invalid_policy("Condition field names must start with '$'."))?
                .to_ascii_lowercase();
            let value = scalar(&items[2])
                .ok_or_else(|| invalid_policy("Condition values must be strings."))?;
            match operator.as_str() {
                "eq" => Ok(PolicyCondition::Equals { field, value }),
                "starts-with" => Ok(PolicyCondition::StartsWith {
                    field,
                    prefix: value,
                }),
                _ => Err(invalid_policy(&format!(
                    "Invalid condition operator '{operator}'."
                ))),
            }
        }
        _ => Err(invalid_policy("Invalid condition.")),
    }
}

/// Fields a policy need not name.
fn exempt_from_policy(lowercase_name: &str) -> bool {
    matches!(lowercase_name, "file" | "policy" | "x-amz-signature")
        || lowercase_name.starts_with("x-ignore-")
}

/// The policy's checks against the form, at `now_unix_millis`. Returns the allowed file size
/// range, if the policy sets one (the caller checks it against the file).
pub fn check_policy(
    policy: &PostPolicy,
    fields: &FormFields,
    bucket: &str,
    now_unix_millis: i64,
) -> Result<Option<(u64, u64)>, S3Error> {
    if now_unix_millis > policy.expiration_unix_millis {
        return Err(S3Error::PostPolicyViolation("Policy expired.".to_owned()));
    }
    let mut length_range = None;
    for condition in &policy.conditions {
        let field_value = |field: &str| -> Option<&str> {
            if field == "bucket" {
                Some(bucket)
            } else {
                fields.get(field)
            }
        };
        let holds = match condition {
            PolicyCondition::Equals { field, value } => {
                field_value(field).is_some_and(|actual| actual == value)
            }
            PolicyCondition::StartsWith { field, prefix } => {
                field_value(field).is_some_and(|actual| {
                    if field == "content-type" {
                        // Several comma-separated types: each must start with the prefix.
                        actual
                            .split(',')
                            .all(|item| item.trim().starts_with(prefix.as_str()))
                    } else {
                        actual.starts_with(prefix.as_str())
                    }
                })
            }
            PolicyCondition::ContentLengthRange {
                minimum_bytes,
                maximum_bytes,
            } => {
                length_range = Some((*minimum_bytes, *maximum_bytes));
                true
            }
        };
        if !holds {
            return Err(S3Error::PostPolicyViolation(format!(
                "Policy Condition failed: {}",
                condition.describe()
            )));
        }
    }
    let covered = |name: &str| {
        policy.conditions.iter().any(|condition| match condition {
            PolicyCondition::Equals { field, .. } | PolicyCondition::StartsWith { field, .. } => {
                field == name
            }
            PolicyCondition::ContentLengthRange { .. } => false,
        })
    };
    let extra: Vec<&str> = fields
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            let lowercase = name.to_ascii_lowercase();
            !exempt_from_policy(&lowercase) && !covered(&lowercase)
        })
        .collect();
    if !extra.is_empty() {
        return Err(S3Error::PostPolicyViolation(format!(
            "Extra input fields: {}",
            extra.join(", ")
        )));
    }
    Ok(length_range)
}

/// The file size against the policy's `content-length-range`.
pub fn check_content_length(
    length_range: Option<(u64, u64)>,
    file_bytes: u64,
) -> Result<(), S3Error> {
    match length_range {
        Some((_, maximum)) if file_bytes > maximum => Err(S3Error::EntityTooLarge),
        Some((minimum, _)) if file_bytes < minimum => Err(S3Error::EntityTooSmall),
        _ => Ok(()),
    }
}

/// The SigV4 fields of a signed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostSignature {
    pub credential: Credential,
    pub amz_date: String,
    pub signature_hex: String,
}

fn missing_field(name: &str) -> S3Error {
    S3Error::InvalidArgument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    ))
}

/// How the form authenticates: `None` for an anonymous form (no policy and no signature
/// fields), else the parsed signature fields (a policy is then required).
pub fn post_signature(fields: &FormFields) -> Result<Option<PostSignature>, S3Error> {
    if fields.get("awsaccesskeyid").is_some() || fields.get("signature").is_some() {
        // Signature version 2 forms: AWS retired SigV2 for new buckets; Cairn never had it.
        return Err(S3Error::NotImplemented);
    }
    let signed = [
        "policy",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-algorithm",
    ]
    .iter()
    .any(|name| fields.get(name).is_some());
    if !signed {
        return Ok(None);
    }
    let field = |name: &'static str| fields.get(name).ok_or_else(|| missing_field(name));
    field("policy")?;
    let algorithm = field("x-amz-algorithm")?;
    if algorithm != ALGORITHM {
        return Err(S3Error::InvalidArgument(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\""
        )));
    }
    let credential_text = field("x-amz-credential")?;
    let credential = Credential::parse(credential_text).ok_or_else(|| {
        S3Error::InvalidArgument(format!(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\": {credential_text}"
        ))
    })?;
    if credential.service != "s3" {
        return Err(S3Error::InvalidArgument(format!(
            "Error parsing the X-Amz-Credential parameter; incorrect service \"{}\". This endpoint belongs to \"s3\".",
            credential.service
        )));
    }
    let amz_date = field("x-amz-date")?;
    if crate::time::parse_amz_date(amz_date).is_none() {
        return Err(S3Error::InvalidArgument(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".to_owned(),
        ));
    }
    if !amz_date.starts_with(&credential.date_yyyymmdd) {
        return Err(S3Error::InvalidArgument(format!(
            "Error parsing the X-Amz-Credential parameter; the credential date '{}' does not match X-Amz-Date",
            credential.date_yyyymmdd
        )));
    }
    let signature_hex = field("x-amz-signature")?;
    Ok(Some(PostSignature {
        credential,
        amz_date: amz_date.to_owned(),
        signature_hex: signature_hex.to_ascii_lowercase(),
    }))
}

/// The SigV4 signature of a POST policy: HMAC-SHA256 of the base64 text under the signing key.
pub fn policy_signature_hex(
    secret_access_key: &str,
    credential: &Credential,
    policy_base64: &str,
) -> String {
    let key = signing_key(
        secret_access_key,
        &credential.date_yyyymmdd,
        &credential.region,
        &credential.service,
    );
    crate::sigv4::signature_hex(&key, policy_base64)
}

/// Checks the form's signature over its policy (constant-time comparison).
pub fn verify_policy_signature(
    secret_access_key: &str,
    signature: &PostSignature,
    policy_base64: &str,
) -> Result<(), S3Error> {
    let computed = policy_signature_hex(secret_access_key, &signature.credential, policy_base64);
    if signatures_equal(&computed, &signature.signature_hex) {
        Ok(())
    } else {
        Err(S3Error::SignatureDoesNotMatch)
    }
}

/// The key to store under: the `key` field with `${filename}` replaced by the uploaded file's
/// name (its last path component, as browsers may send a full path).
pub fn object_key(fields: &FormFields, filename: Option<&str>) -> Result<String, S3Error> {
    let key = fields.get("key").ok_or_else(|| missing_field("key"))?;
    let filename = filename
        .map(|name| name.rsplit(['/', '\\']).next().unwrap_or(name))
        .unwrap_or("");
    let key = key.replace("${filename}", filename);
    crate::endpoint::validate_key(&key)?;
    Ok(key)
}

/// The request headers the form stands for, handed to the PUT pipeline: `Content-Type` and the
/// other standard headers, `x-amz-meta-*`, `acl` as `x-amz-acl`, `tagging` (an XML document) as
/// `x-amz-tagging`, and the `x-amz-*` fields that configure the object (encryption, checksums,
/// object lock, storage class). Signature fields are not headers.
pub fn object_headers(fields: &FormFields) -> Result<Vec<(String, String)>, S3Error> {
    let mut headers = Vec::new();
    for (name, value) in fields.iter() {
        let lowercase = name.to_ascii_lowercase();
        let header = match lowercase.as_str() {
            "content-type"
            | "content-md5"
            | "cache-control"
            | "content-disposition"
            | "content-encoding"
            | "expires" => lowercase.clone(),
            "acl" => "x-amz-acl".to_owned(),
            "tagging" => {
                let tags = crate::tagging::parse_tagging(
                    value.as_bytes(),
                    crate::tagging::TagTarget::Object,
                )?;
                let encoded = tags
                    .iter()
                    .map(|tag| {
                        format!(
                            "{}={}",
                            crate::encoding::uri_encode(&tag.key, false),
                            crate::encoding::uri_encode(&tag.value, false)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                headers.push(("x-amz-tagging".to_owned(), encoded));
                continue;
            }
            "x-amz-storage-class" => {
                if value != "STANDARD" {
                    return Err(S3Error::InvalidStorageClass);
                }
                lowercase.clone()
            }
            "x-amz-algorithm"
            | "x-amz-credential"
            | "x-amz-date"
            | "x-amz-signature"
            | "x-amz-security-token" => continue,
            other
                if other.starts_with("x-amz-meta-")
                    || other.starts_with("x-amz-server-side-encryption")
                    || other.starts_with("x-amz-checksum-")
                    || other.starts_with("x-amz-object-lock-")
                    || other == "x-amz-website-redirect-location" =>
            {
                lowercase.clone()
            }
            _ => continue,
        };
        headers.push((header, value.to_owned()));
    }
    Ok(headers)
}

/// What a successful upload answers (`success_action_redirect` / `redirect`, else
/// `success_action_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessAction {
    /// 303 See Other to this URL, with `bucket`, `key` and `etag` appended.
    Redirect(String),
    /// 200 or 204 without a body, 201 with the `PostResponse` document.
    Status(u16),
}

pub fn success_action(fields: &FormFields) -> SuccessAction {
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"));
    if let Some(url) = redirect
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        return SuccessAction::Redirect(url.to_owned());
    }
    // An unsupported or missing value answers 204, as S3 does.
    match fields.get("success_action_status").map(str::trim) {
        Some("200") => SuccessAction::Status(200),
        Some("201") => SuccessAction::Status(201),
        _ => SuccessAction::Status(204),
    }
}

/// The redirect target: the URL with `bucket`, `key` and `etag` (quoted) query parameters.
pub fn redirect_location(url: &str, bucket: &str, key: &str, etag_quoted: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}bucket={}&key={}&etag={}",
        crate::encoding::uri_encode(bucket, false),
        crate::encoding::uri_encode(key, false),
        crate::encoding::uri_encode(etag_quoted, false)
    )
}

/// The `PostResponse` document of `success_action_status=201`.
pub fn post_response_xml(location: &str, bucket: &str, key: &str, etag_quoted: &str) -> String {
    let mut writer = crate::xml::XmlWriter::new();
    writer.open("PostResponse");
    writer.text_element("Location", location);
    writer.text_element("Bucket", bucket);
    writer.text_element("Key", key);
    writer.text_element("ETag", etag_quoted);
    writer.close("PostResponse");
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> FormFields {
        let mut fields = FormFields::default();
        for (name, value) in pairs {
            fields.insert(name.to_string(), value.to_string()).unwrap();
        }
        fields
    }

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    const NOW: i64 = 1_764_000_000_000;

    fn policy(conditions: &str) -> PostPolicy {
        parse_policy(&encode(&format!(
            "{{\"expiration\": \"2099-01-01T00:00:00Z\", \"conditions\": [{conditions}]}}"
        )))
        .unwrap()
    }

    #[test]
    fn policies_parse_every_condition_form() {
        let parsed = policy(
            r#"{"bucket": "photos"}, ["starts-with", "$Key", "user/"], ["eq", "$acl", "public-read"],
               ["content-length-range", 1, "1048576"], {"success_action_status": 201}"#,
        );
        assert_eq!(
            parsed.conditions,
            vec![
                PolicyCondition::Equals {
                    field: "bucket".into(),
                    value: "photos".into()
                },
                PolicyCondition::StartsWith {
                    field: "key".into(),
                    prefix: "user/".into()
                },
                PolicyCondition::Equals {
                    field: "acl".into(),
                    value: "public-read".into()
                },
                PolicyCondition::ContentLengthRange {
                    minimum_bytes: 1,
                    maximum_bytes: 1_048_576
                },
                PolicyCondition::Equals {
                    field: "success_action_status".into(),
                    value: "201".into()
                },
            ]
        );
        assert_eq!(parsed.expiration_unix_millis, 4_070_908_800_000);
    }

    #[test]
    fn malformed_policies_are_invalid_policy_documents() {
        for document in [
            "not base64 !!",
            &encode("not json"),
            &encode("[]"),
            &encode(r#"{"conditions": []}"#),
            &encode(r#"{"expiration": "tomorrow", "conditions": []}"#),
            &encode(r#"{"expiration": "2099-01-01T00:00:00Z"}"#),
            &encode(
                r#"{"expiration": "2099-01-01T00:00:00Z", "conditions": [["in", "$key", "a"]]}"#,
            ),
            &encode(
                r#"{"expiration": "2099-01-01T00:00:00Z", "conditions": [["eq", "key", "a"]]}"#,
            ),
            &encode(
                r#"{"expiration": "2099-01-01T00:00:00Z", "conditions": [{"a": "b", "c": "d"}]}"#,
            ),
            &encode(
                r#"{"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#,
            ),
        ] {
            assert!(
                matches!(
                    parse_policy(document),
                    Err(S3Error::InvalidPolicyDocument(_))
                ),
                "{document}"
            );
        }
    }

    #[test]
    fn conditions_hold_or_name_the_failure() {
        let parsed = policy(
            r#"{"bucket": "photos"}, ["starts-with", "$key", "user/"], {"acl": "private"},
               ["starts-with", "$Content-Type", "image/"], ["content-length-range", 10, 100]"#,
        );
        let good = fields(&[
            ("Key", "user/a.jpg"),
            ("ACL", "private"),
            ("content-type", "image/png, image/jpeg"),
        ]);
        assert_eq!(
            check_policy(&parsed, &good, "photos", NOW),
            Ok(Some((10, 100)))
        );
        assert_eq!(
            check_policy(&parsed, &good, "other", NOW),
            Err(S3Error::PostPolicyViolation(
                "Policy Condition failed: [\"eq\", \"$bucket\", \"photos\"]".into()
            ))
        );
        let bad_key = fields(&[
            ("key", "admin/a.jpg"),
            ("acl", "private"),
            ("content-type", "image/png"),
        ]);
        assert_eq!(
            check_policy(&parsed, &bad_key, "photos", NOW),
            Err(S3Error::PostPolicyViolation(
                "Policy Condition failed: [\"starts-with\", \"$key\", \"user/\"]".into()
            ))
        );
        let one_bad_type = fields(&[
            ("key", "user/a"),
            ("acl", "private"),
            ("content-type", "image/png,text/html"),
        ]);
        assert!(check_policy(&parsed, &one_bad_type, "photos", NOW).is_err());
        // A condition on a missing field fails.
        let missing_acl = fields(&[("key", "user/a"), ("content-type", "image/png")]);
        assert!(check_policy(&parsed, &missing_acl, "photos", NOW).is_err());
        // Values are case-sensitive.
        let upper = fields(&[
            ("key", "user/a"),
            ("acl", "PRIVATE"),
            ("content-type", "image/png"),
        ]);
        assert!(check_policy(&parsed, &upper, "photos", NOW).is_err());
    }

    #[test]
    fn every_field_must_be_covered_except_the_exempt_ones() {
        let parsed = policy(r#"{"key": "k"}, ["starts-with", "$x-amz-meta-color", ""]"#);
        let covered = fields(&[
            ("key", "k"),
            ("x-amz-meta-color", "red"),
            ("policy", "..."),
            ("X-Amz-Signature", "..."),
            ("x-ignore-tracking", "1"),
            ("file", "inline"),
        ]);
        assert_eq!(check_policy(&parsed, &covered, "b", NOW), Ok(None));
        let extra = fields(&[
            ("key", "k"),
            ("x-amz-meta-color", "red"),
            ("acl", "public-read"),
        ]);
        assert_eq!(
            check_policy(&parsed, &extra, "b", NOW),
            Err(S3Error::PostPolicyViolation(
                "Extra input fields: acl".into()
            ))
        );
    }

    #[test]
    fn expired_policies_are_refused() {
        let expired = parse_policy(&encode(
            r#"{"expiration": "2020-01-01T00:00:00.000Z", "conditions": []}"#,
        ))
        .unwrap();
        assert_eq!(
            check_policy(&expired, &FormFields::default(), "b", NOW),
            Err(S3Error::PostPolicyViolation("Policy expired.".into()))
        );
    }

    #[test]
    fn content_length_range_bounds_are_inclusive() {
        assert_eq!(check_content_length(Some((10, 100)), 10), Ok(()));
        assert_eq!(check_content_length(Some((10, 100)), 100), Ok(()));
        assert_eq!(
            check_content_length(Some((10, 100)), 101),
            Err(S3Error::EntityTooLarge)
        );
        assert_eq!(
            check_content_length(Some((10, 100)), 9),
            Err(S3Error::EntityTooSmall)
        );
        assert_eq!(check_content_length(None, u64::MAX), Ok(()));
    }

    /// The credential of AWS's documentation examples; the expected signature is computed with
    /// the HMAC chain written out.
    #[test]
    fn the_signature_is_sigv4_over_the_base64_policy() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let credential_text = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request";
        let policy_base64 = encode(
            r#"{"expiration": "2015-12-30T12:00:00.000Z", "conditions": [{"bucket": "sigv4examplebucket"}]}"#,
        );
        let credential = Credential::parse(credential_text).unwrap();
        let signature_hex = policy_signature_hex(secret, &credential, &policy_base64);
        let form = fields(&[
            ("key", "user/user1/${filename}"),
            ("policy", &policy_base64),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", credential_text),
            ("x-amz-date", "20151229T000000Z"),
            ("x-amz-signature", &signature_hex),
        ]);
        let signature = post_signature(&form).unwrap().unwrap();
        assert_eq!(signature.credential.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            verify_policy_signature(secret, &signature, &policy_base64),
            Ok(())
        );
        assert_eq!(
            verify_policy_signature("another secret", &signature, &policy_base64),
            Err(S3Error::SignatureDoesNotMatch)
        );
        // A policy changed after signing no longer matches.
        assert_eq!(
            verify_policy_signature(secret, &signature, &encode("{}")),
            Err(S3Error::SignatureDoesNotMatch)
        );
        // Computed independently of `signing_key` (the HMAC chain written out).
        let hmac = crate::sigv4::hmac_sha256;
        let key = hmac(
            &hmac(
                &hmac(
                    &hmac(format!("AWS4{secret}").as_bytes(), b"20151229"),
                    b"us-east-1",
                ),
                b"s3",
            ),
            b"aws4_request",
        );
        assert_eq!(
            signature_hex,
            hex::encode(hmac(&key, policy_base64.as_bytes()))
        );
    }

    #[test]
    fn signature_fields_are_required_together() {
        assert_eq!(post_signature(&fields(&[("key", "k")])), Ok(None));
        let only_policy = fields(&[("key", "k"), ("policy", "e30=")]);
        assert!(matches!(
            post_signature(&only_policy),
            Err(S3Error::InvalidArgument(message)) if message.contains("x-amz-algorithm")
        ));
        let bad_credential = fields(&[
            ("policy", "e30="),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "nonsense"),
            ("x-amz-date", "20151229T000000Z"),
            ("x-amz-signature", "00"),
        ]);
        assert!(matches!(
            post_signature(&bad_credential),
            Err(S3Error::InvalidArgument(_))
        ));
        let v2 = fields(&[("AWSAccessKeyId", "a"), ("signature", "s"), ("policy", "p")]);
        assert_eq!(post_signature(&v2), Err(S3Error::NotImplemented));
    }

    #[test]
    fn keys_substitute_the_filename() {
        let form = fields(&[("key", "uploads/${filename}")]);
        assert_eq!(
            object_key(&form, Some("C:\\photos\\cat.jpg")).unwrap(),
            "uploads/cat.jpg"
        );
        assert_eq!(
            object_key(&form, Some("dog.png")).unwrap(),
            "uploads/dog.png"
        );
        assert!(matches!(
            object_key(&FormFields::default(), None),
            Err(S3Error::InvalidArgument(_))
        ));
        assert!(object_key(&fields(&[("key", "${filename}")]), None).is_err());
    }

    #[test]
    fn form_fields_become_object_headers() {
        let form = fields(&[
            ("key", "k"),
            ("Content-Type", "image/png"),
            ("ACL", "public-read"),
            ("X-Amz-Meta-Color", "red"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-storage-class", "STANDARD"),
            ("x-amz-credential", "c"),
            ("success_action_status", "201"),
            (
                "tagging",
                "<Tagging><TagSet><Tag><Key>a b</Key><Value>1+2</Value></Tag></TagSet></Tagging>",
            ),
        ]);
        assert_eq!(
            object_headers(&form).unwrap(),
            vec![
                ("content-type".to_owned(), "image/png".to_owned()),
                ("x-amz-acl".to_owned(), "public-read".to_owned()),
                ("x-amz-meta-color".to_owned(), "red".to_owned()),
                (
                    "x-amz-server-side-encryption".to_owned(),
                    "AES256".to_owned()
                ),
                ("x-amz-storage-class".to_owned(), "STANDARD".to_owned()),
                ("x-amz-tagging".to_owned(), "a%20b=1%2B2".to_owned()),
            ]
        );
        assert_eq!(
            object_headers(&fields(&[("x-amz-storage-class", "GLACIER")])),
            Err(S3Error::InvalidStorageClass)
        );
        assert!(object_headers(&fields(&[("tagging", "<nope")])).is_err());
    }

    #[test]
    fn success_actions_and_documents() {
        assert_eq!(success_action(&fields(&[])), SuccessAction::Status(204));
        assert_eq!(
            success_action(&fields(&[("success_action_status", "201")])),
            SuccessAction::Status(201)
        );
        assert_eq!(
            success_action(&fields(&[("success_action_status", "404")])),
            SuccessAction::Status(204)
        );
        assert_eq!(
            success_action(&fields(&[
                ("success_action_status", "201"),
                ("success_action_redirect", "https://example.com/done?x=1"),
            ])),
            SuccessAction::Redirect("https://example.com/done?x=1".into())
        );
        // Not a URL: ignored.
        assert_eq!(
            success_action(&fields(&[("redirect", "done.html")])),
            SuccessAction::Status(204)
        );
        assert_eq!(
            redirect_location("https://example.com/done?x=1", "b", "a b/c", "\"e1\""),
            "https://example.com/done?x=1&bucket=b&key=a%20b%2Fc&etag=%22e1%22"
        );
        assert_eq!(
            post_response_xml("http://h/b/k", "b", "k", "\"e\""),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>http://h/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;e&quot;</ETag></PostResponse>"
        );
    }
}
