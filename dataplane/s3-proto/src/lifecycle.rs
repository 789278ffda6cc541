//! Lifecycle: the `LifecycleConfiguration` document of Put/GetBucketLifecycleConfiguration, its
//! validation, and the pure rule matching the lifecycle worker evaluates objects with.
//!
//! Model (S3's): a configuration holds 1–1000 rules, each with an optional unique `ID` (at most
//! 255 characters), `Status` `Enabled` or `Disabled`, a filter and at least one action. The
//! filter is either the legacy rule-level `Prefix` or a `Filter` holding nothing (every object),
//! one `Prefix`, one `Tag`, one `ObjectSizeGreaterThan`/`ObjectSizeLessThan`, or an `And` of a
//! prefix, tags (unique keys) and size bounds. Actions Cairn applies: `Expiration` (`Days`,
//! `Date` at midnight UTC, or `ExpiredObjectDeleteMarker`), `NoncurrentVersionExpiration`
//! (`NoncurrentDays`, optional `NewerNoncurrentVersions`) and `AbortIncompleteMultipartUpload`
//! (`DaysAfterInitiation`). Cairn has one storage class, so a rule with `Transition` or
//! `NoncurrentVersionTransition` is answered `501 NotImplemented` rather than accepted and never
//! applied.
//!
//! Stored form: the bucket attribute holds the canonical document [`lifecycle_configuration_xml`]
//! renders; [`decode_stored_configuration`] parses it back.

use crate::S3Error;
use crate::tagging::Tag;
use crate::time::CivilTime;
use crate::xml::{Element, XmlWriter, parse_document};

pub const LIFECYCLE_MAX_RULES: usize = 1000;
pub const LIFECYCLE_BODY_LIMIT_BYTES: usize = 64 * 1024;
pub const LIFECYCLE_RULE_ID_MAX_CHARS: usize = 255;
/// S3's bound on `NewerNoncurrentVersions`.
pub const LIFECYCLE_MAX_NEWER_NONCURRENT_VERSIONS: u32 = 100;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// How a rule selects objects, kept in the shape the client sent so GET returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleFilter {
    /// The rule-level `<Prefix>` of the original API.
    LegacyPrefix(String),
    /// `<Filter/>`: every object.
    All,
    Prefix(String),
    Tag(Tag),
    SizeGreaterThan(u64),
    SizeLessThan(u64),
    And {
        prefix: Option<String>,
        tags: Vec<Tag>,
        size_greater_than: Option<u64>,
        size_less_than: Option<u64>,
    },
}

impl LifecycleFilter {
    fn prefix(&self) -> &str {
        match self {
            LifecycleFilter::LegacyPrefix(prefix) | LifecycleFilter::Prefix(prefix) => prefix,
            LifecycleFilter::And {
                prefix: Some(prefix),
                ..
            } => prefix,
            _ => "",
        }
    }

    fn tags(&self) -> &[Tag] {
        match self {
            LifecycleFilter::Tag(tag) => std::slice::from_ref(tag),
            LifecycleFilter::And { tags, .. } => tags,
            _ => &[],
        }
    }

    fn size_bounds(&self) -> (Option<u64>, Option<u64>) {
        match self {
            LifecycleFilter::SizeGreaterThan(bound) => (Some(*bound), None),
            LifecycleFilter::SizeLessThan(bound) => (None, Some(*bound)),
            LifecycleFilter::And {
                size_greater_than,
                size_less_than,
                ..
            } => (*size_greater_than, *size_less_than),
            _ => (None, None),
        }
    }

    /// Whether the filter names tags (the caller must then read an object's tags to match it).
    pub fn has_tags(&self) -> bool {
        !self.tags().is_empty()
    }

    /// Whether the filter bounds the object size.
    pub fn has_size_bounds(&self) -> bool {
        self.size_bounds() != (None, None)
    }

    /// Whether a key alone can match (prefix only); the tag and size parts need the version.
    pub fn matches_key(&self, key: &str) -> bool {
        key.starts_with(self.prefix())
    }

    /// Whether an object version (key, size, tags) is selected. Every tag of the filter must be
    /// on the object with the same value; the size bounds are strict, as S3's are.
    pub fn matches(&self, key: &str, size_bytes: u64, tags: &[Tag]) -> bool {
        let (greater_than, less_than) = self.size_bounds();
        self.matches_key(key)
            && greater_than.is_none_or(|bound| size_bytes > bound)
            && less_than.is_none_or(|bound| size_bytes < bound)
            && self.tags().iter().all(|wanted| tags.contains(wanted))
    }
}

/// The `Expiration` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    /// Current versions this many lifecycle days after their creation.
    Days(u32),
    /// Current versions from this instant on (midnight UTC, Unix milliseconds).
    Date(i64),
    /// Remove a delete marker that is the only version left of its key (`true`); `false` is
    /// accepted and does nothing, as on S3.
    ExpiredObjectDeleteMarker(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoncurrentVersionExpiration {
    pub noncurrent_days: u32,
    /// Keep this many newest noncurrent versions whatever their age.
    pub newer_noncurrent_versions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: Option<String>,
    pub enabled: bool,
    pub filter: LifecycleFilter,
    pub expiration: Option<Expiration>,
    pub noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
    pub abort_incomplete_upload_days: Option<u32>,
}

fn malformed() -> S3Error {
    S3Error::MalformedXml
}

fn positive_days(element: &Element, name: &str, action: &str) -> Result<u32, S3Error> {
    let text = element.child_text(name).ok_or_else(malformed)?.trim();
    match text.parse::<i64>() {
        Ok(days) if days > 0 && days <= i64::from(u32::MAX) => Ok(days as u32),
        Ok(_) => Err(S3Error::InvalidArgument(format!(
            "'{name}' for {action} action must be a positive integer"
        ))),
        Err(_) => Err(malformed()),
    }
}

fn size_bound(text: &str) -> Result<u64, S3Error> {
    text.trim().parse::<u64>().map_err(|_| malformed())
}

fn parse_tag(element: &Element) -> Result<Tag, S3Error> {
    let key = element.child_text("Key").ok_or_else(malformed)?.to_owned();
    let value = element.child_text("Value").unwrap_or("").to_owned();
    if key.is_empty() || key.chars().count() > crate::tagging::TAG_KEY_MAX_CHARS {
        return Err(S3Error::InvalidTag(
            "The TagKey you have provided is invalid".to_owned(),
        ));
    }
    if value.chars().count() > crate::tagging::TAG_VALUE_MAX_CHARS {
        return Err(S3Error::InvalidTag(
            "The TagValue you have provided is invalid".to_owned(),
        ));
    }
    Ok(Tag { key, value })
}

/// `2025-01-01T00:00:00Z`, `2025-01-01T00:00:00.000Z` or `2025-01-01`: Unix milliseconds.
fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    if text.len() < 10 || &text[4..5] != "-" || &text[7..8] != "-" {
        return None;
    }
    let (hour, minute, second) = if text.len() == 10 {
        (0, 0, 0)
    } else {
        if &text[10..11] != "T" || &text[13..14] != ":" || &text[16..17] != ":" {
            return None;
        }
        let rest = text.get(19..)?;
        let rest = rest
            .strip_prefix('.')
            .map(|fraction| fraction.trim_start_matches(|c: char| c.is_ascii_digit()))
            .unwrap_or(rest);
        if !matches!(rest, "Z" | "" | "+00:00") {
            return None;
        }
        (number(11..13)?, number(14..16)?, number(17..19)?)
    };
    let seconds = CivilTime {
        year: i64::from(number(0..4)?),
        month: number(5..7)?,
        day: number(8..10)?,
        hour,
        minute,
        second,
    }
    .to_unix_seconds()?;
    Some(seconds * 1000)
}

fn parse_filter(element: &Element) -> Result<LifecycleFilter, S3Error> {
    let children: Vec<&Element> = element.children.iter().collect();
    if children.len() > 1 {
        return Err(malformed());
    }
    let Some(child) = children.first() else {
        return Ok(LifecycleFilter::All);
    };
    Ok(match child.name.as_str() {
        "Prefix" => LifecycleFilter::Prefix(child.text.clone()),
        "Tag" => LifecycleFilter::Tag(parse_tag(child)?),
        "ObjectSizeGreaterThan" => LifecycleFilter::SizeGreaterThan(size_bound(&child.text)?),
        "ObjectSizeLessThan" => LifecycleFilter::SizeLessThan(size_bound(&child.text)?),
        "And" => {
            let mut prefix = None;
            let mut tags: Vec<Tag> = Vec::new();
            let mut size_greater_than = None;
            let mut size_less_than = None;
            for part in &child.children {
                match part.name.as_str() {
                    "Prefix" if prefix.is_none() => prefix = Some(part.text.clone()),
                    "Tag" => {
                        let tag = parse_tag(part)?;
                        if tags.iter().any(|existing| existing.key == tag.key) {
                            return Err(S3Error::InvalidRequest(
                                "Duplicate Tag Keys are not allowed.".to_owned(),
                            ));
                        }
                        tags.push(tag);
                    }
                    "ObjectSizeGreaterThan" if size_greater_than.is_none() => {
                        size_greater_than = Some(size_bound(&part.text)?)
                    }
                    "ObjectSizeLessThan" if size_less_than.is_none() => {
                        size_less_than = Some(size_bound(&part.text)?)
                    }
                    _ => return Err(malformed()),
                }
            }
            if let (Some(greater), Some(less)) = (size_greater_than, size_less_than)
                && greater >= less
            {
                return Err(S3Error::InvalidArgument(
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan".to_owned(),
                ));
            }
            LifecycleFilter::And {
                prefix,
                tags,
                size_greater_than,
                size_less_than,
            }
        }
        _ => return Err(malformed()),
    })
}

fn parse_expiration(element: &Element) -> Result<Expiration, S3Error> {
    let days = element.child("Days");
    let date = element.child("Date");
    let marker = element.child("ExpiredObjectDeleteMarker");
    match (days, date, marker) {
        (Some(_), None, None) => Ok(Expiration::Days(positive_days(
            element,
            "Days",
            "Expiration",
        )?)),
        (None, Some(date), None) => {
            let millis = parse_date(&date.text).ok_or_else(|| {
                S3Error::InvalidArgument("Invalid date in Expiration action".to_owned())
            })?;
            if millis.rem_euclid(MILLIS_PER_DAY) != 0 {
                return Err(S3Error::InvalidArgument(
                    "'Date' must be at midnight GMT".to_owned(),
                ));
            }
            Ok(Expiration::Date(millis))
        }
        (None, None, Some(marker)) => match marker.text.trim() {
            "true" => Ok(Expiration::ExpiredObjectDeleteMarker(true)),
            "false" => Ok(Expiration::ExpiredObjectDeleteMarker(false)),
            _ => Err(malformed()),
        },
        _ => Err(malformed()),
    }
}

fn parse_rule(rule: &Element) -> Result<LifecycleRule, S3Error> {
    const KNOWN: [&str; 10] = [
        "ID",
        "Prefix",
        "Filter",
        "Status",
        "Expiration",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
        "Transition",
        "NoncurrentVersionTransition",
        "Transitions",
    ];
    for child in &rule.children {
        if !KNOWN.contains(&child.name.as_str()) {
            return Err(malformed());
        }
        if child.name != "Transition"
            && child.name != "NoncurrentVersionTransition"
            && rule.children_named(&child.name).count() > 1
        {
            return Err(malformed());
        }
    }
    if rule.child("Transition").is_some() || rule.child("NoncurrentVersionTransition").is_some() {
        // One storage class: a transition could never be carried out.
        return Err(S3Error::NotImplemented);
    }
    let id = rule.child_text("ID").map(str::to_owned);
    if let Some(id) = &id
        && id.chars().count() > LIFECYCLE_RULE_ID_MAX_CHARS
    {
        return Err(S3Error::InvalidArgument(
            "ID length should not exceed allowed limit of 255".to_owned(),
        ));
    }
    let enabled = match rule.child_text("Status").map(str::trim) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(malformed()),
    };
    let filter = match (rule.child("Prefix"), rule.child("Filter")) {
        (Some(prefix), None) => LifecycleFilter::LegacyPrefix(prefix.text.clone()),
        (None, Some(filter)) => parse_filter(filter)?,
        _ => return Err(malformed()),
    };
    let expiration = rule.child("Expiration").map(parse_expiration).transpose()?;
    let noncurrent_version_expiration = rule
        .child("NoncurrentVersionExpiration")
        .map(|element| -> Result<_, S3Error> {
            let newer_noncurrent_versions = match element.child_text("NewerNoncurrentVersions") {
                None => None,
                Some(text) => match text.trim().parse::<i64>() {
                    Ok(count)
                        if (1..=i64::from(LIFECYCLE_MAX_NEWER_NONCURRENT_VERSIONS))
                            .contains(&count) =>
                    {
                        Some(count as u32)
                    }
                    Ok(_) => {
                        return Err(S3Error::InvalidArgument(
                            "NewerNoncurrentVersions must be between 1 and 100".to_owned(),
                        ));
                    }
                    Err(_) => return Err(malformed()),
                },
            };
            Ok(NoncurrentVersionExpiration {
                noncurrent_days: positive_days(
                    element,
                    "NoncurrentDays",
                    "NoncurrentVersionExpiration",
                )?,
                newer_noncurrent_versions,
            })
        })
        .transpose()?;
    let abort_incomplete_upload_days = rule
        .child("AbortIncompleteMultipartUpload")
        .map(|element| {
            positive_days(
                element,
                "DaysAfterInitiation",
                "AbortIncompleteMultipartUpload",
            )
        })
        .transpose()?;
    if expiration.is_none()
        && noncurrent_version_expiration.is_none()
        && abort_incomplete_upload_days.is_none()
    {
        return Err(S3Error::InvalidRequest(
            "At least one action needs to be specified in a rule".to_owned(),
        ));
    }
    if filter.has_tags() {
        if matches!(expiration, Some(Expiration::ExpiredObjectDeleteMarker(_))) {
            return Err(S3Error::InvalidRequest(
                "ExpiredObjectDeleteMarker cannot be specified with tags.".to_owned(),
            ));
        }
        if abort_incomplete_upload_days.is_some() {
            return Err(S3Error::InvalidRequest(
                "AbortIncompleteMultipartUpload cannot be specified with tags.".to_owned(),
            ));
        }
    }
    if filter.has_size_bounds() && abort_incomplete_upload_days.is_some() {
        return Err(S3Error::InvalidRequest(
            "AbortIncompleteMultipartUpload cannot be specified with an object size filter."
                .to_owned(),
        ));
    }
    Ok(LifecycleRule {
        id,
        enabled,
        filter,
        expiration,
        noncurrent_version_expiration,
        abort_incomplete_upload_days,
    })
}

/// Parses and validates a PutBucketLifecycleConfiguration body.
pub fn parse_lifecycle_configuration(body: &[u8]) -> Result<Vec<LifecycleRule>, S3Error> {
    let root = parse_document(body, LIFECYCLE_BODY_LIMIT_BYTES)?;
    if root.name != "LifecycleConfiguration" {
        return Err(malformed());
    }
    if root.children.iter().any(|child| child.name != "Rule") {
        return Err(malformed());
    }
    let rules = root
        .children_named("Rule")
        .map(parse_rule)
        .collect::<Result<Vec<_>, _>>()?;
    if rules.is_empty() || rules.len() > LIFECYCLE_MAX_RULES {
        return Err(malformed());
    }
    let mut ids = std::collections::BTreeSet::new();
    for id in rules.iter().filter_map(|rule| rule.id.as_deref()) {
        if !ids.insert(id) {
            return Err(S3Error::InvalidArgument(
                "Rule ID must be unique. Found same ID for more than one rule".to_owned(),
            ));
        }
    }
    Ok(rules)
}

fn write_tag(writer: &mut XmlWriter, tag: &Tag) {
    writer.open("Tag");
    writer.text_element("Key", &tag.key);
    writer.text_element("Value", &tag.value);
    writer.close("Tag");
}

/// The GetBucketLifecycleConfiguration body (and the stored form).
pub fn lifecycle_configuration_xml(rules: &[LifecycleRule]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("LifecycleConfiguration");
    for rule in rules {
        writer.open("Rule");
        writer.optional_element("ID", rule.id.as_deref());
        match &rule.filter {
            LifecycleFilter::LegacyPrefix(prefix) => writer.text_element("Prefix", prefix),
            filter => {
                writer.open("Filter");
                match filter {
                    LifecycleFilter::Prefix(prefix) => writer.text_element("Prefix", prefix),
                    LifecycleFilter::Tag(tag) => write_tag(&mut writer, tag),
                    LifecycleFilter::SizeGreaterThan(bound) => {
                        writer.number_element("ObjectSizeGreaterThan", bound)
                    }
                    LifecycleFilter::SizeLessThan(bound) => {
                        writer.number_element("ObjectSizeLessThan", bound)
                    }
                    LifecycleFilter::And {
                        prefix,
                        tags,
                        size_greater_than,
                        size_less_than,
                    } => {
                        writer.open("And");
                        writer.optional_element("Prefix", prefix.as_deref());
                        for tag in tags {
                            write_tag(&mut writer, tag);
                        }
                        if let Some(bound) = size_greater_than {
                            writer.number_element("ObjectSizeGreaterThan", bound);
                        }
                        if let Some(bound) = size_less_than {
                            writer.number_element("ObjectSizeLessThan", bound);
                        }
                        writer.close("And");
                    }
                    LifecycleFilter::All | LifecycleFilter::LegacyPrefix(_) => {}
                }
                writer.close("Filter");
            }
        }
        writer.text_element("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        if let Some(expiration) = &rule.expiration {
            writer.open("Expiration");
            match expiration {
                Expiration::Days(days) => writer.number_element("Days", days),
                Expiration::Date(millis) => writer.time_element("Date", *millis),
                Expiration::ExpiredObjectDeleteMarker(flag) => {
                    writer.bool_element("ExpiredObjectDeleteMarker", *flag)
                }
            }
            writer.close("Expiration");
        }
        if let Some(noncurrent) = &rule.noncurrent_version_expiration {
            writer.open("NoncurrentVersionExpiration");
            writer.number_element("NoncurrentDays", noncurrent.noncurrent_days);
            if let Some(count) = noncurrent.newer_noncurrent_versions {
                writer.number_element("NewerNoncurrentVersions", count);
            }
            writer.close("NoncurrentVersionExpiration");
        }
        if let Some(days) = rule.abort_incomplete_upload_days {
            writer.open("AbortIncompleteMultipartUpload");
            writer.number_element("DaysAfterInitiation", days);
            writer.close("AbortIncompleteMultipartUpload");
        }
        writer.close("Rule");
    }
    writer.close("LifecycleConfiguration");
    writer.finish()
}

/// The stored form of a configuration (see the module header).
pub fn encode_stored_configuration(rules: &[LifecycleRule]) -> Vec<u8> {
    lifecycle_configuration_xml(rules).into_bytes()
}

/// Reads a stored configuration back; a value [`encode_stored_configuration`] did not write is
/// an internal error.
pub fn decode_stored_configuration(stored: &[u8]) -> Result<Vec<LifecycleRule>, S3Error> {
    parse_lifecycle_configuration(stored).map_err(|_| S3Error::InternalError)
}

/// Whether `created_ms + days` lifecycle days have passed at `now_ms`. S3 counts whole days from
/// the next midnight UTC; Cairn counts from the creation instant so that a scaled day (the
/// worker's test option) works the same way.
pub fn days_elapsed(created_ms: u64, days: u32, day_length_ms: u64, now_ms: u64) -> bool {
    created_ms.saturating_add(u64::from(days).saturating_mul(day_length_ms)) <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Vec<LifecycleRule>, S3Error> {
        parse_lifecycle_configuration(xml.as_bytes())
    }

    fn wrap(rules: &str) -> String {
        format!(
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>"
        )
    }

    #[test]
    fn parses_renders_and_round_trips_every_filter_and_action() {
        let xml = wrap(concat!(
            "<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>",
            "<Expiration><Days>30</Days></Expiration></Rule>",
            "<Rule><Prefix>tmp/</Prefix><Status>Disabled</Status>",
            "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>",
            "<Rule><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>",
            "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>",
            "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays>",
            "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
            "<Rule><Filter/><Status>Enabled</Status>",
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>",
            "</AbortIncompleteMultipartUpload></Rule>",
        ));
        let rules = parse(&xml).unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].expiration, Some(Expiration::Days(30)));
        assert_eq!(
            rules[1].filter,
            LifecycleFilter::LegacyPrefix("tmp/".into())
        );
        assert_eq!(
            rules[1].expiration,
            Some(Expiration::Date(1_893_456_000_000))
        );
        assert!(!rules[1].enabled);
        assert_eq!(
            rules[2].noncurrent_version_expiration,
            Some(NoncurrentVersionExpiration {
                noncurrent_days: 2,
                newer_noncurrent_versions: Some(3)
            })
        );
        assert_eq!(rules[3].filter, LifecycleFilter::All);
        assert_eq!(rules[3].abort_incomplete_upload_days, Some(7));
        let stored = encode_stored_configuration(&rules);
        assert_eq!(decode_stored_configuration(&stored).unwrap(), rules);
        let rendered = lifecycle_configuration_xml(&rules);
        assert!(rendered.contains("<Date>2030-01-01T00:00:00.000Z</Date>"));
        assert!(rendered.contains("<Prefix>tmp/</Prefix><Status>Disabled</Status>"));
    }

    #[test]
    fn filters_match_prefix_tags_and_size() {
        let filter = LifecycleFilter::And {
            prefix: Some("a/".into()),
            tags: vec![Tag::new("k", "v")],
            size_greater_than: Some(10),
            size_less_than: Some(100),
        };
        let tags = [Tag::new("other", "x"), Tag::new("k", "v")];
        assert!(filter.matches("a/b", 50, &tags));
        assert!(!filter.matches("b/b", 50, &tags));
        assert!(!filter.matches("a/b", 10, &tags));
        assert!(!filter.matches("a/b", 100, &tags));
        assert!(!filter.matches("a/b", 50, &[Tag::new("k", "w")]));
        assert!(LifecycleFilter::All.matches("anything", 0, &[]));
        assert!(LifecycleFilter::LegacyPrefix(String::new()).matches("x", 0, &[]));
    }

    #[test]
    fn invalid_configurations_get_aws_errors() {
        let code = |rules: &str| parse(&wrap(rules)).unwrap_err().code();
        let expire = "<Expiration><Days>1</Days></Expiration>";
        assert_eq!(code(""), "MalformedXML");
        assert_eq!(
            code(
                "<Rule><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"
            ),
            "MalformedXML"
        );
        assert_eq!(
            code(&format!("<Rule><Status>Enabled</Status>{expire}</Rule>")),
            "MalformedXML"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Prefix/><Filter/><Status>Enabled</Status>{expire}</Rule>"
            )),
            "MalformedXML"
        );
        assert_eq!(
            code("<Rule><Filter/><Status>Enabled</Status></Rule>"),
            "InvalidRequest"
        );
        assert_eq!(
            code(
                "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>"
            ),
            "InvalidArgument"
        );
        assert_eq!(
            code(
                "<Rule><Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration></Rule>"
            ),
            "InvalidArgument"
        );
        assert_eq!(
            code(
                "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
            ),
            "MalformedXML"
        );
        assert_eq!(
            code(&format!(
                "<Rule><ID>x</ID><Filter/><Status>Enabled</Status>{expire}</Rule><Rule><ID>x</ID><Filter/><Status>Enabled</Status>{expire}</Rule>"
            )),
            "InvalidArgument"
        );
        assert_eq!(
            code(&format!(
                "<Rule><ID>{}</ID><Filter/><Status>Enabled</Status>{expire}</Rule>",
                "i".repeat(256)
            )),
            "InvalidArgument"
        );
        assert_eq!(
            code(
                "<Rule><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
            ),
            "InvalidRequest"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></And></Filter><Status>Enabled</Status>{expire}</Rule>"
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>{expire}</Rule>"
            )),
            "MalformedXML"
        );
        assert_eq!(
            code(
                "<Rule><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
            ),
            "InvalidArgument"
        );
        assert_eq!(
            code(
                "<Rule><Filter/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"
            ),
            "NotImplemented"
        );
        let many: String = (0..1001)
            .map(|_| format!("<Rule><Filter/><Status>Enabled</Status>{expire}</Rule>"))
            .collect();
        // 1001 rules do not fit the body limit (nor the attribute limit) in the first place.
        assert_eq!(code(&many), "MaxMessageLengthExceeded");
    }

    #[test]
    fn days_count_from_creation_in_lifecycle_days() {
        assert!(!days_elapsed(1_000, 2, 500, 1_999));
        assert!(days_elapsed(1_000, 2, 500, 2_000));
        assert!(days_elapsed(0, u32::MAX, u64::MAX, u64::MAX));
    }
}
