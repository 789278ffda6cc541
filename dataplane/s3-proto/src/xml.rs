//! S3 XML: a minimal writer for response bodies, a bounded reader for request bodies, and the
//! typed documents of the core operations.
//!
//! Model: responses are built with [`XmlWriter`] in the element order of the S3 API reference, so
//! golden tests can compare exact bytes. Requests are read into a small element tree by quick-xml
//! under hard limits (body size, depth, element count) and then mapped to typed structs; anything
//! that is not well-formed, has a DOCTYPE, or lacks a required element is `MalformedXML`, and a
//! body over its limit is `MaxMessageLengthExceeded`, before any allocation proportional to it.
//! Element names are matched by local name, so a namespace (or its absence) does not matter.
//!
//! With `encoding-type=url`, S3 URL-encodes keys and prefixes in listings so that keys holding
//! characters XML 1.0 cannot carry survive; this module applies it in one place
//! ([`ListEncoding`]).

use quick_xml::events::Event;

use crate::S3Error;
use crate::checksum::ChecksumAlgorithm;
use crate::encoding::uri_encode;
use crate::time::format_iso8601_millis;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Appends XML text with the five predefined entities escaped; control characters that XML 1.0
/// allows (tab, newline, carriage return) become character references so that they survive
/// parsers that normalise whitespace, and the other C0 controls (illegal in XML 1.0, but legal in
/// S3 keys) are emitted as references too, as S3 does: clients that care ask for `encoding-type=url`.
fn escape_into(output: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '"' => output.push_str("&quot;"),
            '\'' => output.push_str("&apos;"),
            '\u{0}'..='\u{1f}' => {
                output.push_str(&format!("&#x{:X};", character as u32));
            }
            other => output.push(other),
        }
    }
}

/// A forward-only writer producing one document.
#[derive(Debug)]
pub struct XmlWriter {
    output: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter {
            output: String::from(XML_DECLARATION),
        }
    }

    pub fn open(&mut self, name: &str) {
        self.output.push('<');
        self.output.push_str(name);
        self.output.push('>');
    }

    /// Opens an element with attributes (values escaped).
    pub fn open_with_attributes(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.output.push('<');
        self.output.push_str(name);
        for (attribute, value) in attributes {
            self.output.push(' ');
            self.output.push_str(attribute);
            self.output.push_str("=\"");
            escape_into(&mut self.output, value);
            self.output.push('"');
        }
        self.output.push('>');
    }

    /// Opens the root element with the S3 namespace.
    pub fn open_root(&mut self, name: &str) {
        self.output.push('<');
        self.output.push_str(name);
        self.output.push_str(" xmlns=\"");
        self.output.push_str(S3_NAMESPACE);
        self.output.push_str("\">");
    }

    pub fn close(&mut self, name: &str) {
        self.output.push_str("</");
        self.output.push_str(name);
        self.output.push('>');
    }

    pub fn text_element(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.output, text);
        self.close(name);
    }

    pub fn optional_element(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.text_element(name, text);
        }
    }

    pub fn number_element(&mut self, name: &str, number: impl std::fmt::Display) {
        self.text_element(name, &number.to_string());
    }

    pub fn bool_element(&mut self, name: &str, value: bool) {
        self.text_element(name, if value { "true" } else { "false" });
    }

    pub fn time_element(&mut self, name: &str, unix_millis: i64) {
        self.text_element(name, &format_iso8601_millis(unix_millis));
    }

    pub fn finish(self) -> String {
        self.output
    }
}

// ---------------------------------------------------------------------------------------------
// Response documents
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

fn write_owner(writer: &mut XmlWriter, element: &str, owner: &Owner) {
    writer.open(element);
    writer.text_element("ID", &owner.id);
    writer.text_element("DisplayName", &owner.display_name);
    writer.close(element);
}

/// Checksums of an object or part as stored, in wire form (base64), by algorithm.
pub type Checksums = Vec<(ChecksumAlgorithm, String)>;

fn write_checksums(writer: &mut XmlWriter, checksums: &Checksums) {
    for (algorithm, value) in checksums {
        writer.text_element(algorithm.xml_element(), value);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSummary {
    pub name: String,
    pub creation_unix_millis: i64,
    pub region: Option<String>,
}

/// `GET /` → ListAllMyBucketsResult.
pub fn list_buckets_xml(owner: &Owner, buckets: &[BucketSummary]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ListAllMyBucketsResult");
    write_owner(&mut writer, "Owner", owner);
    writer.open("Buckets");
    for bucket in buckets {
        writer.open("Bucket");
        writer.text_element("Name", &bucket.name);
        writer.time_element("CreationDate", bucket.creation_unix_millis);
        writer.optional_element("BucketRegion", bucket.region.as_deref());
        writer.close("Bucket");
    }
    writer.close("Buckets");
    writer.close("ListAllMyBucketsResult");
    writer.finish()
}

/// GetBucketLocation. S3 answers an empty element for us-east-1 (the historical default).
pub fn location_constraint_xml(region: &str) -> String {
    let mut writer = XmlWriter::new();
    if region == "us-east-1" || region.is_empty() {
        writer.output.push_str("<LocationConstraint xmlns=\"");
        writer.output.push_str(S3_NAMESPACE);
        writer.output.push_str("\"/>");
    } else {
        writer.open_root("LocationConstraint");
        escape_into(&mut writer.output, region);
        writer.close("LocationConstraint");
    }
    writer.finish()
}

/// Whether listing keys and prefixes are sent raw or URL-encoded (`encoding-type=url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListEncoding {
    #[default]
    Raw,
    Url,
}

impl ListEncoding {
    fn apply<'a>(self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            ListEncoding::Raw => std::borrow::Cow::Borrowed(text),
            ListEncoding::Url => std::borrow::Cow::Owned(uri_encode(text, true)),
        }
    }

    fn write_optional(self, writer: &mut XmlWriter, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            writer.text_element(name, &self.apply(text));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub last_modified_unix_millis: i64,
    /// Quoted, as in the `ETag` header.
    pub etag: String,
    pub size_bytes: u64,
    pub storage_class: String,
    pub owner: Option<Owner>,
    pub checksum_algorithms: Vec<ChecksumAlgorithm>,
}

fn write_contents(writer: &mut XmlWriter, encoding: ListEncoding, objects: &[ObjectSummary]) {
    for object in objects {
        writer.open("Contents");
        writer.text_element("Key", &encoding.apply(&object.key));
        writer.time_element("LastModified", object.last_modified_unix_millis);
        writer.text_element("ETag", &object.etag);
        for algorithm in &object.checksum_algorithms {
            writer.text_element("ChecksumAlgorithm", algorithm.name());
        }
        writer.number_element("Size", object.size_bytes);
        if let Some(owner) = &object.owner {
            write_owner(writer, "Owner", owner);
        }
        writer.text_element("StorageClass", &object.storage_class);
        writer.close("Contents");
    }
}

fn write_common_prefixes(writer: &mut XmlWriter, encoding: ListEncoding, prefixes: &[String]) {
    for prefix in prefixes {
        writer.open("CommonPrefixes");
        writer.text_element("Prefix", &encoding.apply(prefix));
        writer.close("CommonPrefixes");
    }
}

/// The parts shared by both ListObjects versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListingPage {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: u32,
    pub encoding: ListEncoding,
    pub is_truncated: bool,
    pub objects: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
}

fn write_listing_head(writer: &mut XmlWriter, page: &ListingPage) {
    writer.text_element("Name", &page.bucket);
    writer.text_element("Prefix", &page.encoding.apply(&page.prefix));
}

fn write_listing_tail(writer: &mut XmlWriter, page: &ListingPage) {
    writer.number_element("MaxKeys", page.max_keys);
    page.encoding
        .write_optional(writer, "Delimiter", page.delimiter.as_deref());
    if page.encoding == ListEncoding::Url {
        writer.text_element("EncodingType", "url");
    }
    writer.bool_element("IsTruncated", page.is_truncated);
}

/// ListObjectsV2 → ListBucketResult. `KeyCount` counts contents plus common prefixes, as S3 does.
pub fn list_objects_v2_xml(
    page: &ListingPage,
    continuation_token: Option<&str>,
    next_continuation_token: Option<&str>,
    start_after: Option<&str>,
) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ListBucketResult");
    write_listing_head(&mut writer, page);
    page.encoding
        .write_optional(&mut writer, "StartAfter", start_after);
    writer.optional_element("ContinuationToken", continuation_token);
    writer.optional_element("NextContinuationToken", next_continuation_token);
    writer.number_element("KeyCount", page.objects.len() + page.common_prefixes.len());
    write_listing_tail(&mut writer, page);
    write_contents(&mut writer, page.encoding, &page.objects);
    write_common_prefixes(&mut writer, page.encoding, &page.common_prefixes);
    writer.close("ListBucketResult");
    writer.finish()
}

/// ListObjects (v1) → ListBucketResult. `NextMarker` is only sent with a delimiter; without one
/// clients continue from the last key, as the API reference specifies.
pub fn list_objects_v1_xml(page: &ListingPage, marker: &str, next_marker: Option<&str>) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ListBucketResult");
    write_listing_head(&mut writer, page);
    writer.text_element("Marker", &page.encoding.apply(marker));
    page.encoding
        .write_optional(&mut writer, "NextMarker", next_marker);
    write_listing_tail(&mut writer, page);
    write_contents(&mut writer, page.encoding, &page.objects);
    write_common_prefixes(&mut writer, page.encoding, &page.common_prefixes);
    writer.close("ListBucketResult");
    writer.finish()
}

/// CopyObject → CopyObjectResult; UploadPartCopy → CopyPartResult (same shape).
pub fn copy_result_xml(
    root_element: CopyResultKind,
    etag: &str,
    last_modified_unix_millis: i64,
    checksums: &Checksums,
) -> String {
    let root = match root_element {
        CopyResultKind::Object => "CopyObjectResult",
        CopyResultKind::Part => "CopyPartResult",
    };
    let mut writer = XmlWriter::new();
    writer.open_root(root);
    writer.text_element("ETag", etag);
    writer.time_element("LastModified", last_modified_unix_millis);
    write_checksums(&mut writer, checksums);
    writer.close(root);
    writer.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyResultKind {
    Object,
    Part,
}

pub fn initiate_multipart_upload_xml(bucket: &str, key: &str, upload_id: &str) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("InitiateMultipartUploadResult");
    writer.text_element("Bucket", bucket);
    writer.text_element("Key", key);
    writer.text_element("UploadId", upload_id);
    writer.close("InitiateMultipartUploadResult");
    writer.finish()
}

pub fn complete_multipart_upload_xml(
    location: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    checksums: &Checksums,
) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("CompleteMultipartUploadResult");
    writer.text_element("Location", location);
    writer.text_element("Bucket", bucket);
    writer.text_element("Key", key);
    writer.text_element("ETag", etag);
    write_checksums(&mut writer, checksums);
    writer.close("CompleteMultipartUploadResult");
    writer.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSummary {
    pub part_number: u32,
    pub last_modified_unix_millis: i64,
    pub etag: String,
    pub size_bytes: u64,
    pub checksums: Checksums,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPartsPage {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: String,
    pub part_number_marker: u32,
    pub next_part_number_marker: Option<u32>,
    pub max_parts: u32,
    pub is_truncated: bool,
    pub parts: Vec<PartSummary>,
}

pub fn list_parts_xml(page: &ListPartsPage) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ListPartsResult");
    writer.text_element("Bucket", &page.bucket);
    writer.text_element("Key", &page.key);
    writer.text_element("UploadId", &page.upload_id);
    write_owner(&mut writer, "Initiator", &page.initiator);
    write_owner(&mut writer, "Owner", &page.owner);
    writer.text_element("StorageClass", &page.storage_class);
    writer.number_element("PartNumberMarker", page.part_number_marker);
    if let Some(next) = page.next_part_number_marker {
        writer.number_element("NextPartNumberMarker", next);
    }
    writer.number_element("MaxParts", page.max_parts);
    writer.bool_element("IsTruncated", page.is_truncated);
    for part in &page.parts {
        writer.open("Part");
        writer.number_element("PartNumber", part.part_number);
        writer.time_element("LastModified", part.last_modified_unix_millis);
        writer.text_element("ETag", &part.etag);
        writer.number_element("Size", part.size_bytes);
        write_checksums(&mut writer, &part.checksums);
        writer.close("Part");
    }
    writer.close("ListPartsResult");
    writer.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    pub key: String,
    pub upload_id: String,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: String,
    pub initiated_unix_millis: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUploadsPage {
    pub bucket: String,
    pub key_marker: String,
    pub upload_id_marker: String,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_uploads: u32,
    pub encoding: ListEncoding,
    pub is_truncated: bool,
    pub uploads: Vec<UploadSummary>,
    pub common_prefixes: Vec<String>,
}

pub fn list_multipart_uploads_xml(page: &ListUploadsPage) -> String {
    let encoding = page.encoding;
    let mut writer = XmlWriter::new();
    writer.open_root("ListMultipartUploadsResult");
    writer.text_element("Bucket", &page.bucket);
    writer.text_element("KeyMarker", &encoding.apply(&page.key_marker));
    writer.text_element("UploadIdMarker", &page.upload_id_marker);
    encoding.write_optional(
        &mut writer,
        "NextKeyMarker",
        page.next_key_marker.as_deref(),
    );
    writer.optional_element("NextUploadIdMarker", page.next_upload_id_marker.as_deref());
    writer.text_element("Prefix", &encoding.apply(&page.prefix));
    encoding.write_optional(&mut writer, "Delimiter", page.delimiter.as_deref());
    writer.number_element("MaxUploads", page.max_uploads);
    if encoding == ListEncoding::Url {
        writer.text_element("EncodingType", "url");
    }
    writer.bool_element("IsTruncated", page.is_truncated);
    for upload in &page.uploads {
        writer.open("Upload");
        writer.text_element("Key", &encoding.apply(&upload.key));
        writer.text_element("UploadId", &upload.upload_id);
        write_owner(&mut writer, "Initiator", &upload.initiator);
        write_owner(&mut writer, "Owner", &upload.owner);
        writer.text_element("StorageClass", &upload.storage_class);
        writer.time_element("Initiated", upload.initiated_unix_millis);
        writer.close("Upload");
    }
    write_common_prefixes(&mut writer, encoding, &page.common_prefixes);
    writer.close("ListMultipartUploadsResult");
    writer.finish()
}

/// GetBucketVersioning → VersioningConfiguration. A bucket whose versioning was never set answers
/// an empty element, as S3 does; `MfaDelete` is never sent (Cairn does not support it).
pub fn versioning_configuration_xml(status: Option<&str>) -> String {
    let mut writer = XmlWriter::new();
    match status {
        None => {
            writer.output.push_str("<VersioningConfiguration xmlns=\"");
            writer.output.push_str(S3_NAMESPACE);
            writer.output.push_str("\"/>");
        }
        Some(status) => {
            writer.open_root("VersioningConfiguration");
            writer.text_element("Status", status);
            writer.close("VersioningConfiguration");
        }
    }
    writer.finish()
}

/// One entry of a ListObjectVersions page: a version (`etag` present) or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    /// `null` for the null version.
    pub version_id: String,
    pub is_latest: bool,
    pub last_modified_unix_millis: i64,
    /// `None` for a delete marker; quoted otherwise.
    pub etag: Option<String>,
    pub size_bytes: u64,
    pub storage_class: String,
    pub owner: Owner,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListVersionsPage {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: String,
    pub version_id_marker: String,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    pub max_keys: u32,
    pub encoding: ListEncoding,
    pub is_truncated: bool,
    /// Versions and delete markers interleaved in S3 order (key ascending, newest first).
    pub entries: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
}

/// ListObjectVersions → ListVersionsResult. Versions and delete markers keep their relative
/// order (S3 interleaves `Version` and `DeleteMarker` elements in listing order).
pub fn list_object_versions_xml(page: &ListVersionsPage) -> String {
    let encoding = page.encoding;
    let mut writer = XmlWriter::new();
    writer.open_root("ListVersionsResult");
    writer.text_element("Name", &page.bucket);
    writer.text_element("Prefix", &encoding.apply(&page.prefix));
    writer.text_element("KeyMarker", &encoding.apply(&page.key_marker));
    writer.text_element("VersionIdMarker", &page.version_id_marker);
    encoding.write_optional(
        &mut writer,
        "NextKeyMarker",
        page.next_key_marker.as_deref(),
    );
    writer.optional_element(
        "NextVersionIdMarker",
        page.next_version_id_marker.as_deref(),
    );
    writer.number_element("MaxKeys", page.max_keys);
    encoding.write_optional(&mut writer, "Delimiter", page.delimiter.as_deref());
    if encoding == ListEncoding::Url {
        writer.text_element("EncodingType", "url");
    }
    writer.bool_element("IsTruncated", page.is_truncated);
    for entry in &page.entries {
        let element = if entry.etag.is_some() {
            "Version"
        } else {
            "DeleteMarker"
        };
        writer.open(element);
        writer.text_element("Key", &encoding.apply(&entry.key));
        writer.text_element("VersionId", &entry.version_id);
        writer.bool_element("IsLatest", entry.is_latest);
        writer.time_element("LastModified", entry.last_modified_unix_millis);
        if let Some(etag) = &entry.etag {
            writer.text_element("ETag", etag);
            writer.number_element("Size", entry.size_bytes);
            write_owner(&mut writer, "Owner", &entry.owner);
            writer.text_element("StorageClass", &entry.storage_class);
        } else {
            write_owner(&mut writer, "Owner", &entry.owner);
        }
        writer.close(element);
    }
    write_common_prefixes(&mut writer, encoding, &page.common_prefixes);
    writer.close("ListVersionsResult");
    writer.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedObject {
    pub key: String,
    pub version_id: Option<String>,
    pub delete_marker: Option<bool>,
    pub delete_marker_version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub version_id: Option<String>,
    pub error: S3Error,
}

/// DeleteObjects → DeleteResult. In quiet mode the caller passes no `deleted` entries.
pub fn delete_result_xml(deleted: &[DeletedObject], failures: &[DeleteFailure]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("DeleteResult");
    for object in deleted {
        writer.open("Deleted");
        writer.text_element("Key", &object.key);
        writer.optional_element("VersionId", object.version_id.as_deref());
        if let Some(marker) = object.delete_marker {
            writer.bool_element("DeleteMarker", marker);
        }
        writer.optional_element(
            "DeleteMarkerVersionId",
            object.delete_marker_version_id.as_deref(),
        );
        writer.close("Deleted");
    }
    for failure in failures {
        writer.open("Error");
        writer.text_element("Key", &failure.key);
        writer.optional_element("VersionId", failure.version_id.as_deref());
        writer.text_element("Code", failure.error.code());
        writer.text_element("Message", &failure.error.to_string());
        writer.close("Error");
    }
    writer.close("DeleteResult");
    writer.finish()
}

// ---------------------------------------------------------------------------------------------
// Request documents
// ---------------------------------------------------------------------------------------------

/// Body limits. S3 caps DeleteObjects at 1,000 keys of up to 1,024 bytes and a multipart
/// completion at 10,000 parts; the byte limits leave room for XML overhead and escaping.
pub const CREATE_BUCKET_BODY_LIMIT_BYTES: usize = 64 * 1024;
pub const VERSIONING_BODY_LIMIT_BYTES: usize = 64 * 1024;
pub const DELETE_OBJECTS_BODY_LIMIT_BYTES: usize = 2 * 1024 * 1024;
pub const COMPLETE_MULTIPART_BODY_LIMIT_BYTES: usize = 4 * 1024 * 1024;
pub const DELETE_OBJECTS_MAX_KEYS: usize = 1000;
pub const MULTIPART_MAX_PARTS: u32 = 10_000;
const MAX_DEPTH: usize = 8;
const MAX_ELEMENTS: usize = 200_000;

/// One element of a parsed request document: local name, direct children, the concatenated
/// text directly inside it, and its attributes by local name (`xsi:type` is `type`).
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
    pub(crate) attributes: Vec<(String, String)>,
}

impl Element {
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.as_str())
    }

    pub(crate) fn attribute(&self, local_name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name == local_name)
            .map(|(_, value)| value.as_str())
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

pub(crate) fn parse_document(body: &[u8], limit_bytes: usize) -> Result<Element, S3Error> {
    if body.len() > limit_bytes {
        return Err(S3Error::MaxMessageLengthExceeded);
    }
    let malformed = |_| S3Error::MalformedXml;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut element_count = 0usize;
    loop {
        let event = reader.read_event().map_err(|_| S3Error::MalformedXml)?;
        // `<a/>` closes at once; `<a>` waits for its `</a>`.
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_none() => {
                element_count += 1;
                if stack.len() >= MAX_DEPTH || element_count > MAX_ELEMENTS {
                    return Err(S3Error::MalformedXml);
                }
                let name = std::str::from_utf8(start.local_name().as_ref())
                    .map_err(|_| S3Error::MalformedXml)?
                    .to_string();
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|_| S3Error::MalformedXml)?;
                    let attribute_name = std::str::from_utf8(attribute.key.local_name().as_ref())
                        .map_err(|_| S3Error::MalformedXml)?
                        .to_string();
                    let value = attribute
                        .unescape_value()
                        .map_err(|_| S3Error::MalformedXml)?
                        .into_owned();
                    attributes.push((attribute_name, value));
                }
                let element = Element {
                    name,
                    attributes,
                    ..Element::default()
                };
                if is_empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or(S3Error::MalformedXml)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                // XML 1.0 end-of-line handling only: the XML 1.1 rules would also turn U+0085 and
                // U+2028 into newlines, altering keys that contain them.
                let decoded = text.xml10_content().map_err(|_| S3Error::MalformedXml)?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&decoded),
                    None if decoded.trim().is_empty() => {}
                    None => return Err(S3Error::MalformedXml),
                }
            }
            Event::CData(data) => {
                let decoded = data.decode().map_err(|_| S3Error::MalformedXml)?;
                stack
                    .last_mut()
                    .ok_or(S3Error::MalformedXml)?
                    .text
                    .push_str(&decoded);
            }
            Event::GeneralRef(reference) => {
                let character = match reference.resolve_char_ref().map_err(malformed)? {
                    Some(character) => character,
                    None => {
                        let name = reference.decode().map_err(|_| S3Error::MalformedXml)?;
                        predefined_entity(&name).ok_or(S3Error::MalformedXml)?
                    }
                };
                stack
                    .last_mut()
                    .ok_or(S3Error::MalformedXml)?
                    .text
                    .push(character);
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            // A DOCTYPE can declare entities; S3 bodies never need one, so it is refused.
            Event::DocType(_) => return Err(S3Error::MalformedXml),
            Event::Eof => break,
            // A second root element.
            Event::Start(_) | Event::Empty(_) => return Err(S3Error::MalformedXml),
        }
    }
    if !stack.is_empty() {
        return Err(S3Error::MalformedXml);
    }
    root.ok_or(S3Error::MalformedXml)
}

/// CreateBucket's optional body. `Ok(None)` for an empty body or no `LocationConstraint`.
pub fn parse_create_bucket_configuration(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(|byte| byte.is_ascii_whitespace()) {
        return Ok(None);
    }
    let root = parse_document(body, CREATE_BUCKET_BODY_LIMIT_BYTES)?;
    if root.name != "CreateBucketConfiguration" {
        return Err(S3Error::MalformedXml);
    }
    Ok(root
        .child_text("LocationConstraint")
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// As the client sent it (usually quoted).
    pub etag: String,
    pub checksums: Checksums,
}

/// CompleteMultipartUpload's body. Parts must be strictly ascending (`InvalidPartOrder`), numbered
/// 1..=10,000, and at least one must be present.
pub fn parse_complete_multipart_upload(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let root = parse_document(body, COMPLETE_MULTIPART_BODY_LIMIT_BYTES)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::MalformedXml);
    }
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let part_number: u32 = part
            .child_text("PartNumber")
            .and_then(|text| text.trim().parse().ok())
            .ok_or(S3Error::MalformedXml)?;
        if !(1..=MULTIPART_MAX_PARTS).contains(&part_number) {
            return Err(S3Error::InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive".to_string(),
            ));
        }
        let etag = part
            .child_text("ETag")
            .ok_or(S3Error::MalformedXml)?
            .trim()
            .to_string();
        let checksums = ChecksumAlgorithm::ALL
            .into_iter()
            .filter_map(|algorithm| {
                part.child_text(algorithm.xml_element())
                    .map(|value| (algorithm, value.trim().to_string()))
            })
            .collect();
        if let Some(previous) = parts
            .last()
            .map(|previous: &CompletedPart| previous.part_number)
            && previous >= part_number
        {
            return Err(S3Error::InvalidPartOrder);
        }
        parts.push(CompletedPart {
            part_number,
            etag,
            checksums,
        });
    }
    if parts.is_empty() {
        return Err(S3Error::MalformedXml);
    }
    Ok(parts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentifier {
    pub key: String,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    pub quiet: bool,
    pub objects: Vec<ObjectIdentifier>,
}

/// DeleteObjects' body: 1..=1,000 `Object` entries, each with a `Key`.
pub fn parse_delete_objects(body: &[u8]) -> Result<DeleteRequest, S3Error> {
    let root = parse_document(body, DELETE_OBJECTS_BODY_LIMIT_BYTES)?;
    if root.name != "Delete" {
        return Err(S3Error::MalformedXml);
    }
    let quiet = match root.child_text("Quiet").map(str::trim) {
        None => false,
        Some(text) if text.eq_ignore_ascii_case("true") => true,
        Some(text) if text.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(S3Error::MalformedXml),
    };
    let objects = root
        .children_named("Object")
        .map(|object| {
            Ok(ObjectIdentifier {
                key: object
                    .child_text("Key")
                    .ok_or(S3Error::MalformedXml)?
                    .to_string(),
                version_id: object.child_text("VersionId").map(str::to_string),
            })
        })
        .collect::<Result<Vec<_>, S3Error>>()?;
    if objects.is_empty() || objects.len() > DELETE_OBJECTS_MAX_KEYS {
        return Err(S3Error::MalformedXml);
    }
    Ok(DeleteRequest { quiet, objects })
}

/// A `Status` of PutBucketVersioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersioningStatus {
    Enabled,
    Suspended,
}

/// PutBucketVersioning's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersioningConfiguration {
    /// Absent leaves the state unchanged (S3 accepts a body with only `MfaDelete`).
    pub status: Option<VersioningStatus>,
    /// `MfaDelete` is `Enabled`.
    pub mfa_delete_enabled: bool,
}

/// PutBucketVersioning's body: `Status` Enabled|Suspended and `MfaDelete` Enabled|Disabled, both
/// optional; any other value is `IllegalVersioningConfigurationException`, as in S3.
pub fn parse_versioning_configuration(body: &[u8]) -> Result<VersioningConfiguration, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(S3Error::MissingRequestBodyError);
    }
    let root = parse_document(body, VERSIONING_BODY_LIMIT_BYTES)?;
    if root.name != "VersioningConfiguration" {
        return Err(S3Error::MalformedXml);
    }
    let status = match root.child_text("Status").map(str::trim) {
        None => None,
        Some("Enabled") => Some(VersioningStatus::Enabled),
        Some("Suspended") => Some(VersioningStatus::Suspended),
        Some(_) => return Err(S3Error::IllegalVersioningConfiguration),
    };
    let mfa_delete_enabled = match root.child_text("MfaDelete").map(str::trim) {
        None | Some("Disabled") => false,
        Some("Enabled") => true,
        Some(_) => return Err(S3Error::IllegalVersioningConfiguration),
    };
    Ok(VersioningConfiguration {
        status,
        mfa_delete_enabled,
    })
}
