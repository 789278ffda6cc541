//! Object lock documents and headers: `ObjectLockConfiguration` (Put/GetObjectLockConfiguration),
//! `Retention` (Put/GetObjectRetention), `LegalHold` (Put/GetObjectLegalHold) and the
//! `x-amz-object-lock-*` headers of PutObject, CreateMultipartUpload and CopyObject.
//!
//! Model: parsers validate what S3 validates (one of Days/Years, a positive period, a known mode,
//! a parseable date) and answer S3's errors; the rules that depend on state (the bucket has object
//! lock, the date is in the future, a retention may not be weakened) are the gateway's and the
//! state machine's. Dates are Unix milliseconds.

use crate::S3Error;
use crate::time::{format_iso8601_millis, parse_iso8601_millis};
use crate::xml::{XmlWriter, parse_document};

pub const OBJECT_LOCK_BODY_LIMIT_BYTES: usize = 64 * 1024;
/// S3 caps a default retention at 100 years (36,500 days).
pub const MAX_DEFAULT_RETENTION_DAYS: u32 = 36_500;
pub const MAX_DEFAULT_RETENTION_YEARS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn parse(text: &str) -> Option<LockMode> {
        match text {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// A default retention's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockPeriod {
    Days(u32),
    Years(u32),
}

/// A bucket's object lock configuration as S3 documents it (`ObjectLockEnabled` is always
/// `Enabled`; S3 accepts no other value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockConfiguration {
    pub default_retention: Option<(LockMode, LockPeriod)>,
}

/// A version's retention: `None` in a document means "remove the retention" (an empty
/// `<Retention/>`), which only a governance bypass may do to an active one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSetting {
    pub mode: LockMode,
    pub retain_until_unix_millis: i64,
}

fn mode_of(text: &str) -> Result<LockMode, S3Error> {
    LockMode::parse(text.trim()).ok_or(S3Error::MalformedXml)
}

pub fn parse_object_lock_configuration(body: &[u8]) -> Result<LockConfiguration, S3Error> {
    let root = parse_document(body, OBJECT_LOCK_BODY_LIMIT_BYTES)?;
    if root.name != "ObjectLockConfiguration" {
        return Err(S3Error::MalformedXml);
    }
    match root.child_text("ObjectLockEnabled").map(str::trim) {
        Some("Enabled") => {}
        _ => return Err(S3Error::MalformedXml),
    }
    let Some(rule) = root.child("Rule") else {
        return Ok(LockConfiguration::default());
    };
    let retention = rule
        .child("DefaultRetention")
        .ok_or(S3Error::MalformedXml)?;
    let mode = mode_of(retention.child_text("Mode").ok_or(S3Error::MalformedXml)?)?;
    let number = |text: &str| -> Result<u32, S3Error> {
        let value: i64 = text.trim().parse().map_err(|_| S3Error::MalformedXml)?;
        if value <= 0 {
            return Err(S3Error::InvalidArgument(
                "Default retention period must be a positive integer value.".to_owned(),
            ));
        }
        u32::try_from(value).map_err(|_| {
            S3Error::InvalidArgument("Default retention period is too large.".to_owned())
        })
    };
    let period = match (retention.child_text("Days"), retention.child_text("Years")) {
        (Some(days), None) => LockPeriod::Days(number(days)?),
        (None, Some(years)) => LockPeriod::Years(number(years)?),
        _ => return Err(S3Error::MalformedXml),
    };
    let too_long = match period {
        LockPeriod::Days(days) => days > MAX_DEFAULT_RETENTION_DAYS,
        LockPeriod::Years(years) => years > MAX_DEFAULT_RETENTION_YEARS,
    };
    if too_long {
        return Err(S3Error::InvalidArgument(
            "Default retention period is too large.".to_owned(),
        ));
    }
    Ok(LockConfiguration {
        default_retention: Some((mode, period)),
    })
}

pub fn object_lock_configuration_xml(configuration: &LockConfiguration) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ObjectLockConfiguration");
    writer.text_element("ObjectLockEnabled", "Enabled");
    if let Some((mode, period)) = configuration.default_retention {
        writer.open("Rule");
        writer.open("DefaultRetention");
        writer.text_element("Mode", mode.as_str());
        match period {
            LockPeriod::Days(days) => writer.number_element("Days", days),
            LockPeriod::Years(years) => writer.number_element("Years", years),
        }
        writer.close("DefaultRetention");
        writer.close("Rule");
    }
    writer.close("ObjectLockConfiguration");
    writer.finish()
}

/// Parses a `Retention` document; `None` is an empty one (no mode, no date).
pub fn parse_retention(body: &[u8]) -> Result<Option<RetentionSetting>, S3Error> {
    let root = parse_document(body, OBJECT_LOCK_BODY_LIMIT_BYTES)?;
    if root.name != "Retention" {
        return Err(S3Error::MalformedXml);
    }
    match (root.child_text("Mode"), root.child_text("RetainUntilDate")) {
        (None, None) => Ok(None),
        (Some(mode), Some(date)) => Ok(Some(RetentionSetting {
            mode: mode_of(mode)?,
            retain_until_unix_millis: parse_iso8601_millis(date.trim())
                .ok_or(S3Error::MalformedXml)?,
        })),
        _ => Err(S3Error::MalformedXml),
    }
}

pub fn retention_xml(retention: &RetentionSetting) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("Retention");
    writer.text_element("Mode", retention.mode.as_str());
    writer.text_element(
        "RetainUntilDate",
        &format_iso8601_millis(retention.retain_until_unix_millis),
    );
    writer.close("Retention");
    writer.finish()
}

/// Parses a `LegalHold` document: whether the hold is ON.
pub fn parse_legal_hold(body: &[u8]) -> Result<bool, S3Error> {
    let root = parse_document(body, OBJECT_LOCK_BODY_LIMIT_BYTES)?;
    if root.name != "LegalHold" {
        return Err(S3Error::MalformedXml);
    }
    match root.child_text("Status").map(str::trim) {
        Some("ON") => Ok(true),
        Some("OFF") => Ok(false),
        _ => Err(S3Error::MalformedXml),
    }
}

pub fn legal_hold_xml(on: bool) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("LegalHold");
    writer.text_element("Status", if on { "ON" } else { "OFF" });
    writer.close("LegalHold");
    writer.finish()
}

/// The `x-amz-object-lock-*` headers of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockHeaders {
    pub retention: Option<RetentionSetting>,
    pub legal_hold: Option<bool>,
}

impl LockHeaders {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.legal_hold.is_none()
    }
}

/// Parses the object lock headers of PutObject, CreateMultipartUpload and CopyObject: the mode
/// and the date come together or not at all.
pub fn parse_lock_headers(headers: &[(&str, &str)]) -> Result<LockHeaders, S3Error> {
    let header = |name: &str| crate::headers::header(headers, name).map(str::trim);
    let retention = match (
        header("x-amz-object-lock-mode"),
        header("x-amz-object-lock-retain-until-date"),
    ) {
        (None, None) => None,
        (Some(mode), Some(date)) => Some(RetentionSetting {
            mode: LockMode::parse(mode).ok_or_else(|| {
                S3Error::InvalidArgument("Unknown wormMode directive.".to_owned())
            })?,
            retain_until_unix_millis: parse_iso8601_millis(date).ok_or_else(|| {
                S3Error::InvalidArgument(
                    "The retain until date must be provided in ISO 8601 format".to_owned(),
                )
            })?,
        }),
        _ => {
            return Err(S3Error::InvalidArgument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
                    .to_owned(),
            ));
        }
    };
    let legal_hold = match header("x-amz-object-lock-legal-hold") {
        None => None,
        Some("ON") => Some(true),
        Some("OFF") => Some(false),
        Some(_) => {
            return Err(S3Error::InvalidArgument(
                "Legal Hold must be either of 'ON' or 'OFF'".to_owned(),
            ));
        }
    };
    Ok(LockHeaders {
        retention,
        legal_hold,
    })
}

/// Whether a request carries an integrity header S3 requires on object lock writes:
/// `Content-MD5`, an `x-amz-checksum-*` value, or a trailing checksum (`x-amz-trailer`).
pub fn has_integrity_header(headers: &[(&str, &str)]) -> bool {
    headers.iter().any(|(name, _)| {
        let name = name.to_ascii_lowercase();
        name == "content-md5"
            || (name.starts_with("x-amz-checksum-") && name != "x-amz-checksum-mode")
            || name == "x-amz-trailer"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_round_trips_and_validates() {
        let document = b"<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        let parsed = parse_object_lock_configuration(document).unwrap();
        assert_eq!(
            parsed.default_retention,
            Some((LockMode::Governance, LockPeriod::Days(3)))
        );
        assert_eq!(
            parse_object_lock_configuration(object_lock_configuration_xml(&parsed).as_bytes())
                .unwrap(),
            parsed
        );
        let enabled_only = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        assert_eq!(
            parse_object_lock_configuration(enabled_only).unwrap(),
            LockConfiguration::default()
        );
        let both = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(
            parse_object_lock_configuration(both),
            Err(S3Error::MalformedXml)
        );
        let zero = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>0</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert!(matches!(
            parse_object_lock_configuration(zero),
            Err(S3Error::InvalidArgument(_))
        ));
        let bad_mode = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>FOREVER</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(
            parse_object_lock_configuration(bad_mode),
            Err(S3Error::MalformedXml)
        );
        let disabled = b"<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>";
        assert_eq!(
            parse_object_lock_configuration(disabled),
            Err(S3Error::MalformedXml)
        );
    }

    #[test]
    fn retention_and_legal_hold_documents() {
        let retention = RetentionSetting {
            mode: LockMode::Compliance,
            retain_until_unix_millis: 1_800_000_000_123,
        };
        let document = retention_xml(&retention);
        assert!(document.contains("<RetainUntilDate>2027-01-15T08:00:00.123Z</RetainUntilDate>"));
        assert_eq!(parse_retention(document.as_bytes()), Ok(Some(retention)));
        assert_eq!(parse_retention(b"<Retention/>"), Ok(None));
        assert_eq!(
            parse_retention(b"<Retention><Mode>GOVERNANCE</Mode></Retention>"),
            Err(S3Error::MalformedXml)
        );
        assert_eq!(parse_legal_hold(legal_hold_xml(true).as_bytes()), Ok(true));
        assert_eq!(
            parse_legal_hold(b"<LegalHold><Status>OFF</Status></LegalHold>"),
            Ok(false)
        );
        assert_eq!(
            parse_legal_hold(b"<LegalHold><Status>on</Status></LegalHold>"),
            Err(S3Error::MalformedXml)
        );
    }

    #[test]
    fn headers() {
        let parsed = parse_lock_headers(&[
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2030-01-01T00:00:00Z",
            ),
            ("x-amz-object-lock-legal-hold", "ON"),
        ])
        .unwrap();
        assert_eq!(
            parsed.retention,
            Some(RetentionSetting {
                mode: LockMode::Governance,
                retain_until_unix_millis: 1_893_456_000_000,
            })
        );
        assert_eq!(parsed.legal_hold, Some(true));
        assert!(parse_lock_headers(&[]).unwrap().is_empty());
        for bad in [
            vec![("x-amz-object-lock-mode", "GOVERNANCE")],
            vec![
                ("x-amz-object-lock-mode", "SOMETIMES"),
                (
                    "x-amz-object-lock-retain-until-date",
                    "2030-01-01T00:00:00Z",
                ),
            ],
            vec![
                ("x-amz-object-lock-mode", "COMPLIANCE"),
                ("x-amz-object-lock-retain-until-date", "tomorrow"),
            ],
            vec![("x-amz-object-lock-legal-hold", "YES")],
        ] {
            assert!(
                matches!(parse_lock_headers(&bad), Err(S3Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        assert!(has_integrity_header(&[("Content-MD5", "x")]));
        assert!(has_integrity_header(&[("x-amz-checksum-crc32", "x")]));
        assert!(has_integrity_header(&[(
            "x-amz-trailer",
            "x-amz-checksum-crc32"
        )]));
        assert!(!has_integrity_header(&[("x-amz-checksum-mode", "ENABLED")]));
    }
}
