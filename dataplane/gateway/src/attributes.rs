//! GetObjectAttributes: the attributes named by `x-amz-object-attributes` (ETag, Checksum,
//! ObjectParts, StorageClass, ObjectSize) of one version, without its body.
//!
//! ObjectParts is answered for multipart objects only (as S3), paged by `x-amz-max-parts`
//! (default and cap 1,000) and `x-amz-part-number-marker`; parts carry their number and size.

use cairn_meta_state::ChecksumAlgorithm;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::time::format_http_date;
use cairn_s3_proto::xml::XmlWriter;

use crate::bucket::owned_bucket;
use crate::object::{insert_version_id, read_record, version_selector};
use crate::server::{HttpResponse, RequestContext, xml_response};

const ATTRIBUTE_NAMES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];
const MAX_PARTS: u32 = 1000;

fn checksum_element(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
        ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
        ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
        ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
        ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
    }
}

fn number_header(context: &RequestContext<'_>, name: &str) -> Result<Option<u32>, S3Error> {
    context
        .header(name)
        .map(|text| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| S3Error::InvalidArgument(format!("Invalid {name}: {text}")))
        })
        .transpose()
}

pub async fn get_object_attributes(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let requested: Vec<String> = context
        .headers
        .iter()
        .filter(|(name, _)| *name == "x-amz-object-attributes")
        .flat_map(|(_, value)| value.split(','))
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    if requested.is_empty() {
        return Err(S3Error::InvalidRequest(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty".to_owned(),
        ));
    }
    if let Some(unknown) = requested
        .iter()
        .find(|name| !ATTRIBUTE_NAMES.contains(&name.as_str()))
    {
        return Err(S3Error::InvalidArgument(format!(
            "Invalid attribute name specified: {unknown}"
        )));
    }
    let wants = |name: &str| requested.iter().any(|candidate| candidate == name);
    let record = read_record(context, bucket, key, version_selector(version_id)?).await?;
    let mut writer = XmlWriter::new();
    writer.open_root("GetObjectAttributesOutput");
    if wants("ETag") {
        writer.text_element("ETag", &record.checksums.etag);
    }
    if wants("Checksum")
        && let Some(additional) = &record.checksums.additional
    {
        writer.open("Checksum");
        writer.text_element(
            checksum_element(additional.algorithm),
            &additional.value_base64,
        );
        writer.close("Checksum");
    }
    let parts = &record.erasure.parts;
    if wants("ObjectParts") && record.upload_id.is_some() {
        let max_parts = number_header(context, "x-amz-max-parts")?
            .unwrap_or(MAX_PARTS)
            .min(MAX_PARTS);
        let marker = number_header(context, "x-amz-part-number-marker")?.unwrap_or(0);
        // Sizes are the client's (plaintext) bytes, not the stored chunked ciphertext's.
        let encrypted = record
            .attributes
            .contains_key(cairn_sse::envelope::ATTRIBUTE_NAME);
        let sizes = crate::encryption::plaintext_part_lengths(parts, encrypted)?;
        let after: Vec<_> = parts
            .iter()
            .zip(sizes)
            .filter(|(part, _)| part.part_number > marker)
            .collect();
        let page = &after[..after.len().min(max_parts as usize)];
        let truncated = page.len() < after.len();
        writer.open("ObjectParts");
        writer.number_element("PartsCount", parts.len());
        writer.number_element("PartNumberMarker", marker);
        if let Some((last, _)) = page.last() {
            writer.number_element("NextPartNumberMarker", last.part_number);
        }
        writer.number_element("MaxParts", max_parts);
        writer.bool_element("IsTruncated", truncated);
        for (part, size_bytes) in page {
            writer.open("Part");
            writer.number_element("PartNumber", part.part_number);
            writer.number_element("Size", *size_bytes);
            writer.close("Part");
        }
        writer.close("ObjectParts");
    }
    if wants("StorageClass") {
        writer.text_element(
            "StorageClass",
            crate::list::storage_class_name(record.storage_class),
        );
    }
    if wants("ObjectSize") {
        writer.number_element("ObjectSize", record.size_bytes);
    }
    writer.close("GetObjectAttributesOutput");
    let mut response = xml_response(writer.finish());
    let last_modified_unix_seconds =
        (record.committed_at_ms.unwrap_or(record.created_at_ms) / 1000) as i64;
    if let Ok(value) = http::HeaderValue::from_str(&format_http_date(last_modified_unix_seconds)) {
        response.headers_mut().insert("last-modified", value);
    }
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}
