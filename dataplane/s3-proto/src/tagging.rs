//! Object and bucket tags: the `Tagging` document of Put/GetObjectTagging and
//! Put/GetBucketTagging, the `x-amz-tagging` header, and the stored form of a tag set.
//!
//! Model: a tag set is an ordered list of (key, value) pairs with unique keys. S3's limits are
//! checked in one place, [`validate_tags`]: at most 10 tags on an object and 50 on a bucket
//! (more is `BadRequest` for objects and `InvalidTag` for buckets, as S3 answers), keys of 1–128
//! and values of 0–256 Unicode characters drawn from letters, digits, white space and
//! `+ - = . _ : / @`, no duplicate key (`InvalidTag`), and no key starting with the reserved
//! `aws:` prefix (`InvalidTag`).
//!
//! Stored form: the tag set is kept as a metadata attribute in the query-string form of the
//! `x-amz-tagging` header, each key and value percent-encoded with SigV4's `UriEncode` (so `&`,
//! `=`, `+` and spaces never collide with the separators); [`decode_stored_tags`] is its exact
//! inverse.

use crate::S3Error;
use crate::encoding::{parse_query, uri_encode};
use crate::xml::{XmlWriter, parse_document};

pub const OBJECT_MAX_TAGS: usize = 10;
pub const BUCKET_MAX_TAGS: usize = 50;
pub const TAG_KEY_MAX_CHARS: usize = 128;
pub const TAG_VALUE_MAX_CHARS: usize = 256;
/// A Tagging document of 50 tags at the character limits, escaped, stays far below this.
pub const TAGGING_BODY_LIMIT_BYTES: usize = 256 * 1024;

/// What carries the tag set: the limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagTarget {
    Object,
    Bucket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

fn allowed_character(character: char) -> bool {
    character.is_alphanumeric()
        || character.is_whitespace()
        || matches!(character, '+' | '-' | '=' | '.' | '_' | ':' | '/' | '@')
}

/// Checks S3's tag restrictions for a whole set.
pub fn validate_tags(tags: &[Tag], target: TagTarget) -> Result<(), S3Error> {
    match target {
        TagTarget::Object if tags.len() > OBJECT_MAX_TAGS => {
            return Err(S3Error::BadRequest(
                "Object tags cannot be greater than 10".to_string(),
            ));
        }
        TagTarget::Bucket if tags.len() > BUCKET_MAX_TAGS => {
            return Err(S3Error::InvalidTag(
                "Bucket tag count cannot be greater than 50".to_string(),
            ));
        }
        _ => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        let key_chars = tag.key.chars().count();
        if key_chars == 0 || !tag.key.chars().all(allowed_character) {
            return Err(S3Error::InvalidTag(
                "The TagKey you have provided is invalid".to_string(),
            ));
        }
        if key_chars > TAG_KEY_MAX_CHARS {
            return Err(S3Error::InvalidTag(
                "The TagKey you have provided is too long, max 128".to_string(),
            ));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(S3Error::InvalidTag(
                "Your TagKey cannot be prefixed with aws:".to_string(),
            ));
        }
        if !tag.value.chars().all(allowed_character) {
            return Err(S3Error::InvalidTag(
                "The TagValue you have provided is invalid".to_string(),
            ));
        }
        if tag.value.chars().count() > TAG_VALUE_MAX_CHARS {
            return Err(S3Error::InvalidTag(
                "The TagValue you have provided is too long, max 256".to_string(),
            ));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(S3Error::InvalidTag(
                "Cannot provide multiple Tags with the same key".to_string(),
            ));
        }
    }
    Ok(())
}

/// The body of PutObjectTagging / PutBucketTagging:
/// `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`, validated for `target`.
/// A `Tag` without `Key` or `Value`, or a document without `TagSet`, is `MalformedXML`.
pub fn parse_tagging(body: &[u8], target: TagTarget) -> Result<Vec<Tag>, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(S3Error::MalformedXml);
    }
    let root = parse_document(body, TAGGING_BODY_LIMIT_BYTES)?;
    if root.name != "Tagging" {
        return Err(S3Error::MalformedXml);
    }
    let tag_set = root.child("TagSet").ok_or(S3Error::MalformedXml)?;
    if tag_set.children.iter().any(|child| child.name != "Tag") {
        return Err(S3Error::MalformedXml);
    }
    let tags = tag_set
        .children_named("Tag")
        .map(|tag| {
            Ok(Tag {
                key: tag
                    .child_text("Key")
                    .ok_or(S3Error::MalformedXml)?
                    .to_string(),
                value: tag
                    .child_text("Value")
                    .ok_or(S3Error::MalformedXml)?
                    .to_string(),
            })
        })
        .collect::<Result<Vec<_>, S3Error>>()?;
    validate_tags(&tags, target)?;
    Ok(tags)
}

/// The GetObjectTagging / GetBucketTagging document.
pub fn tagging_xml(tags: &[Tag]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("Tagging");
    writer.open("TagSet");
    for tag in tags {
        writer.open("Tag");
        writer.text_element("Key", &tag.key);
        writer.text_element("Value", &tag.value);
        writer.close("Tag");
    }
    writer.close("TagSet");
    writer.close("Tagging");
    writer.finish()
}

/// The `x-amz-tagging` header of PutObject, CreateMultipartUpload and CopyObject: URL query
/// parameters (`k1=v1&k2=v2`, `+` is a space). A malformed encoding or a repeated key is
/// `InvalidArgument` as in S3; the limits are then those of an object's tag set.
pub fn parse_tagging_header(value: &str) -> Result<Vec<Tag>, S3Error> {
    let invalid = || {
        S3Error::InvalidArgument(
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.".to_string(),
        )
    };
    let pairs = parse_query(value.trim()).map_err(|_| invalid())?;
    let mut seen = std::collections::BTreeSet::new();
    let mut tags = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if !seen.insert(key.clone()) {
            return Err(invalid());
        }
        tags.push(Tag { key, value });
    }
    validate_tags(&tags, TagTarget::Object)?;
    Ok(tags)
}

/// The stored form of a tag set (see the module header).
pub fn encode_stored_tags(tags: &[Tag]) -> Vec<u8> {
    tags.iter()
        .map(|tag| {
            format!(
                "{}={}",
                uri_encode(&tag.key, false),
                uri_encode(&tag.value, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Reads a stored tag set back. A value that is not one (never written by
/// [`encode_stored_tags`]) is an internal error: the caller logs it and answers 500.
pub fn decode_stored_tags(stored: &[u8]) -> Result<Vec<Tag>, S3Error> {
    let text = std::str::from_utf8(stored).map_err(|_| S3Error::InternalError)?;
    Ok(parse_query(text)
        .map_err(|_| S3Error::InternalError)?
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(tags: &[(&str, &str)]) -> Vec<u8> {
        let mut body =
            String::from("<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>");
        for (key, value) in tags {
            body.push_str(&format!(
                "<Tag><Key>{key}</Key><Value>{value}</Value></Tag>"
            ));
        }
        body.push_str("</TagSet></Tagging>");
        body.into_bytes()
    }

    #[test]
    fn parses_and_renders_a_tag_set() {
        let tags = parse_tagging(
            &document(&[("project", "cairn"), ("a b", "x=y@z"), ("empty", "")]),
            TagTarget::Object,
        )
        .unwrap();
        assert_eq!(
            tags,
            vec![
                Tag::new("project", "cairn"),
                Tag::new("a b", "x=y@z"),
                Tag::new("empty", "")
            ]
        );
        let xml = tagging_xml(&tags);
        assert!(
            xml.contains("<Tag><Key>a b</Key><Value>x=y@z</Value></Tag>"),
            "{xml}"
        );
        assert_eq!(
            parse_tagging(xml.as_bytes(), TagTarget::Bucket).unwrap(),
            tags
        );
        assert_eq!(
            parse_tagging(&document(&[]), TagTarget::Object).unwrap(),
            vec![]
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        for body in [
            &b""[..],
            b"<Tagging/>",
            b"<Other><TagSet/></Other>",
            b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
            b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
            b"<Tagging><TagSet><Bogus/></TagSet></Tagging>",
            b"<Tagging><TagSet>",
        ] {
            assert_eq!(
                parse_tagging(body, TagTarget::Object),
                Err(S3Error::MalformedXml),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn limits_are_enforced_with_s3_codes() {
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let many_refs: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(matches!(
            parse_tagging(&document(&many_refs), TagTarget::Object),
            Err(S3Error::BadRequest(_))
        ));
        assert!(parse_tagging(&document(&many_refs[..10]), TagTarget::Object).is_ok());
        assert!(parse_tagging(&document(&many_refs), TagTarget::Bucket).is_ok());
        let fifty_one: Vec<Tag> = (0..51).map(|i| Tag::new(format!("k{i}"), "v")).collect();
        assert!(matches!(
            validate_tags(&fifty_one, TagTarget::Bucket),
            Err(S3Error::InvalidTag(_))
        ));
        assert!(validate_tags(&fifty_one[..50], TagTarget::Bucket).is_ok());

        // Characters, not bytes: 128 three-byte characters are a valid key, 129 are not.
        let key_128 = "é".repeat(128);
        let key_129 = "é".repeat(129);
        assert!(validate_tags(&[Tag::new(key_128, "v")], TagTarget::Object).is_ok());
        assert!(matches!(
            validate_tags(&[Tag::new(key_129, "v")], TagTarget::Object),
            Err(S3Error::InvalidTag(message)) if message.contains("too long")
        ));
        assert!(validate_tags(&[Tag::new("k", "ü".repeat(256))], TagTarget::Object).is_ok());
        assert!(matches!(
            validate_tags(&[Tag::new("k", "v".repeat(257))], TagTarget::Object),
            Err(S3Error::InvalidTag(_))
        ));
        for bad in [
            vec![Tag::new("", "v")],
            vec![Tag::new("aws:secret", "v")],
            vec![Tag::new("AWS:secret", "v")],
            vec![Tag::new("k", "v"), Tag::new("k", "w")],
            vec![Tag::new("k*", "v")],
            vec![Tag::new("k", "v<")],
        ] {
            assert!(
                matches!(
                    validate_tags(&bad, TagTarget::Object),
                    Err(S3Error::InvalidTag(_))
                ),
                "{bad:?}"
            );
        }
        assert!(
            validate_tags(
                &[Tag::new("a+b-c=d.e_f:g/h@i j", "日本語 +-=._:/@")],
                TagTarget::Object
            )
            .is_ok()
        );
    }

    #[test]
    fn header_form_decodes_and_refuses_duplicates() {
        assert_eq!(
            parse_tagging_header("a=1&b%20c=x+y&empty=&bare").unwrap(),
            vec![
                Tag::new("a", "1"),
                Tag::new("b c", "x y"),
                Tag::new("empty", ""),
                Tag::new("bare", "")
            ]
        );
        assert!(matches!(
            parse_tagging_header("a=1&a=2"),
            Err(S3Error::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_tagging_header("a=%ZZ"),
            Err(S3Error::InvalidArgument(_))
        ));
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(matches!(
            parse_tagging_header(&eleven.join("&")),
            Err(S3Error::BadRequest(_))
        ));
        assert!(matches!(
            parse_tagging_header("aws:x=1"),
            Err(S3Error::InvalidTag(_))
        ));
    }

    #[test]
    fn stored_form_round_trips_separators() {
        let tags = vec![
            Tag::new("a&b=c", "x+y z"),
            Tag::new("ключ", ""),
            Tag::new("p/q@r", "%41"),
        ];
        let stored = encode_stored_tags(&tags);
        assert_eq!(decode_stored_tags(&stored).unwrap(), tags);
        assert_eq!(decode_stored_tags(b"").unwrap(), vec![]);
        assert_eq!(encode_stored_tags(&[]), Vec::<u8>::new());
    }
}
