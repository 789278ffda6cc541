//! SigV4 header signing for the benchmark's requests, lean enough that the client does not
//! compete with the server it measures for the machine's cores.
//!
//! Every request is signed with `UNSIGNED-PAYLOAD` and three signed headers (`host`,
//! `x-amz-content-sha256`, `x-amz-date`). The per-day signing key (four HMACs) is derived once
//! per UTC day and kept; a signature then costs one SHA-256 of the canonical request and one
//! HMAC, through ring's assembly SHA-256. `aws-sigv4`, which the client used before, derived the
//! key and parsed the URL again for every request and hashed in portable Rust: about a fifth of
//! the client's CPU per 4 KiB GET.
//!
//! The caller passes the path already URI-encoded as S3 expects (every byte but the unreserved
//! ones and `/` percent-encoded, once) and the query already encoded; the query's parameters are
//! put in canonical order here.

use ring::{digest, hmac};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of `x-amz-content-sha256` for a body that is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Signs requests for one access key in one region, for the `s3` service.
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    /// The day (`YYYYMMDD`) of `key` and the key derived for it.
    day_key: Option<(String, hmac::Key)>,
}

/// The headers that carry a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub amz_date: String,
    pub authorization: String,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Signer {
        Signer {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            day_key: None,
        }
    }

    /// The signature headers of `method host path?query` at `time`.
    pub fn sign(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
        time: SystemTime,
    ) -> Signed {
        let amz_date = amz_date(time);
        let day = &amz_date[..8];
        let mut canonical = String::with_capacity(256);
        canonical.push_str(method);
        canonical.push('\n');
        canonical.push_str(path);
        canonical.push('\n');
        canonical_query(query, &mut canonical);
        let _ = write!(
            canonical,
            "\nhost:{host}\nx-amz-content-sha256:{UNSIGNED_PAYLOAD}\nx-amz-date:{amz_date}\n\n\
             host;x-amz-content-sha256;x-amz-date\n{UNSIGNED_PAYLOAD}"
        );
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let mut to_sign = String::with_capacity(160);
        let _ = write!(to_sign, "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n");
        hex_into(
            digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref(),
            &mut to_sign,
        );
        let key = match &self.day_key {
            Some((key_day, key)) if key_day == day => key,
            _ => &self.day_key.insert((day.to_owned(), self.day_key(day))).1,
        };
        let mut authorization = String::with_capacity(200);
        let _ = write!(
            authorization,
            "AWS4-HMAC-SHA256 Credential={}/{scope}, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=",
            self.access_key
        );
        hex_into(
            hmac::sign(key, to_sign.as_bytes()).as_ref(),
            &mut authorization,
        );
        Signed {
            amz_date,
            authorization,
        }
    }

    /// HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), "s3"), "aws4_request").
    fn day_key(&self, day: &str) -> hmac::Key {
        let mut key = format!("AWS4{}", self.secret_key).into_bytes();
        for part in [day, &self.region, "s3", "aws4_request"] {
            key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
                .as_ref()
                .to_vec();
        }
        hmac::Key::new(hmac::HMAC_SHA256, &key)
    }
}

/// Appends the canonical form of an encoded query: parameters sorted by name then value, each as
/// `name=value` (`name=` for a bare name), joined by `&`.
fn canonical_query(query: &str, out: &mut String) {
    if query.is_empty() {
        return;
    }
    let mut parameters: Vec<(&str, &str)> = query
        .split('&')
        .filter(|parameter| !parameter.is_empty())
        .map(|parameter| parameter.split_once('=').unwrap_or((parameter, "")))
        .collect();
    parameters.sort_unstable();
    for (index, (name, value)) in parameters.into_iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    cairn_s3_proto::time::format_amz_date(seconds as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
        SigningSettings, UriPathNormalizationMode, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    /// The headers AWS's own signer (`aws-sigv4`) gives the same request.
    fn reference(method: &str, url: &str, time: SystemTime) -> Signed {
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", "secret/Key+1", None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.signature_location = SignatureLocation::Headers;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let host = url.split('/').nth(2).unwrap();
        let signable = SignableRequest::new(
            method,
            url,
            [("host", host)].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let header = |name: &str| {
            instructions
                .headers()
                .find(|(header, _)| *header == name)
                .map(|(_, value)| value.to_owned())
                .unwrap()
        };
        Signed {
            amz_date: header("x-amz-date"),
            authorization: header("authorization"),
        }
    }

    #[test]
    fn signatures_match_aws_sigv4() {
        let mut signer = Signer::new("AKIDEXAMPLE", "secret/Key+1", "eu-west-3");
        // 2024-02-29 23:59:59 UTC (a leap day, a second before midnight), then the next day,
        // which must derive a new key, then 2026-11-28.
        for seconds in [1_709_251_199u64, 1_709_251_200, 1_795_000_000] {
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            for (method, host, path, query, url_query) in [
                ("GET", "127.0.0.1:9000", "/b/bench-1f/obj-00000001", "", ""),
                ("PUT", "127.0.0.1:9000", "/b", "", ""),
                ("POST", "b.localhost:8333", "/k%20x/y", "uploads", "uploads"),
                (
                    "PUT",
                    "127.0.0.1:9000",
                    "/b/k",
                    "uploadId=a%2Fb&partNumber=2",
                    "uploadId=a%2Fb&partNumber=2",
                ),
                (
                    "GET",
                    "127.0.0.1:9000",
                    "/b",
                    "list-type=2&max-keys=1000&prefix=p%2F",
                    "list-type=2&max-keys=1000&prefix=p%2F",
                ),
            ] {
                let url = if url_query.is_empty() {
                    format!("http://{host}{path}")
                } else {
                    format!("http://{host}{path}?{url_query}")
                };
                assert_eq!(
                    signer.sign(method, host, path, query, time),
                    reference(method, &url, time),
                    "{method} {url} at {seconds}"
                );
            }
        }
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        let at = |seconds: u64| amz_date(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_709_251_199), "20240229T235959Z");
        assert_eq!(at(4_102_444_800), "21000101T000000Z");
    }
}
