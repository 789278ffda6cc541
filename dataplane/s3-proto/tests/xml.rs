//! Golden tests of every response document (exact bytes) and the request-body parsers'
//! acceptance and rejection rules.

use cairn_s3_proto::S3Error;
use cairn_s3_proto::checksum::ChecksumAlgorithm;
use cairn_s3_proto::xml::*;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const NS: &str = " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
/// 2009-10-12T17:50:30.000Z
const T: i64 = 1_255_369_830_000;

fn owner() -> Owner {
    Owner {
        id: "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a".into(),
        display_name: "webfile".into(),
    }
}

const OWNER_XML: &str = "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>webfile</DisplayName>";

#[test]
fn list_buckets_golden() {
    let xml = list_buckets_xml(
        &owner(),
        &[
            BucketSummary {
                name: "photos".into(),
                creation_unix_millis: T,
                region: None,
            },
            BucketSummary {
                name: "logs".into(),
                creation_unix_millis: T + 1,
                region: Some("eu-west-1".into()),
            },
        ],
    );
    assert_eq!(
        xml,
        format!(
            "{HEAD}<ListAllMyBucketsResult{NS}><Owner>{OWNER_XML}</Owner><Buckets><Bucket><Name>photos</Name><CreationDate>2009-10-12T17:50:30.000Z</CreationDate></Bucket><Bucket><Name>logs</Name><CreationDate>2009-10-12T17:50:30.001Z</CreationDate><BucketRegion>eu-west-1</BucketRegion></Bucket></Buckets></ListAllMyBucketsResult>"
        )
    );
}

#[test]
fn location_constraint_golden() {
    assert_eq!(
        location_constraint_xml("us-east-1"),
        format!("{HEAD}<LocationConstraint{NS}/>")
    );
    assert_eq!(
        location_constraint_xml("eu-west-1"),
        format!("{HEAD}<LocationConstraint{NS}>eu-west-1</LocationConstraint>")
    );
}

fn object(key: &str) -> ObjectSummary {
    ObjectSummary {
        key: key.into(),
        last_modified_unix_millis: T,
        etag: "\"fba9dede5f27731c9771645a39863328\"".into(),
        size_bytes: 434_234,
        storage_class: "STANDARD".into(),
        owner: None,
        checksum_algorithms: vec![],
    }
}

#[test]
fn list_objects_v2_golden() {
    let page = ListingPage {
        bucket: "photos".into(),
        prefix: "2024/".into(),
        delimiter: Some("/".into()),
        max_keys: 2,
        encoding: ListEncoding::Raw,
        is_truncated: true,
        objects: vec![ObjectSummary {
            checksum_algorithms: vec![ChecksumAlgorithm::Crc32],
            ..object("2024/a&b.jpg")
        }],
        common_prefixes: vec!["2024/jan/".into()],
    };
    let xml = list_objects_v2_xml(&page, Some("tok1"), Some("tok2"), None);
    assert_eq!(
        xml,
        format!(
            "{HEAD}<ListBucketResult{NS}><Name>photos</Name><Prefix>2024/</Prefix><ContinuationToken>tok1</ContinuationToken><NextContinuationToken>tok2</NextContinuationToken><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><Contents><Key>2024/a&amp;b.jpg</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>2024/jan/</Prefix></CommonPrefixes></ListBucketResult>"
        )
    );
}

#[test]
fn list_objects_v2_url_encoding_golden() {
    let page = ListingPage {
        bucket: "photos".into(),
        prefix: "a b".into(),
        delimiter: Some("/".into()),
        max_keys: 1000,
        encoding: ListEncoding::Url,
        is_truncated: false,
        objects: vec![ObjectSummary {
            owner: Some(owner()),
            ..object("a b/c+d\u{1}é")
        }],
        common_prefixes: vec!["a b/x y/".into()],
    };
    let xml = list_objects_v2_xml(&page, None, None, Some("a b/0"));
    assert_eq!(
        xml,
        format!(
            "{HEAD}<ListBucketResult{NS}><Name>photos</Name><Prefix>a%20b</Prefix><StartAfter>a%20b/0</StartAfter><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><Contents><Key>a%20b/c%2Bd%01%C3%A9</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><Owner>{OWNER_XML}</Owner><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>a%20b/x%20y/</Prefix></CommonPrefixes></ListBucketResult>"
        )
    );
}

#[test]
fn list_objects_v1_golden() {
    let page = ListingPage {
        bucket: "photos".into(),
        prefix: String::new(),
        delimiter: None,
        max_keys: 1000,
        encoding: ListEncoding::Raw,
        is_truncated: false,
        objects: vec![ObjectSummary {
            owner: Some(owner()),
            ..object("k<1>")
        }],
        common_prefixes: vec![],
    };
    assert_eq!(
        list_objects_v1_xml(&page, "", None),
        format!(
            "{HEAD}<ListBucketResult{NS}><Name>photos</Name><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>k&lt;1&gt;</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><Owner>{OWNER_XML}</Owner><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        )
    );
    let truncated = ListingPage {
        is_truncated: true,
        delimiter: Some("/".into()),
        objects: vec![],
        ..page
    };
    assert_eq!(
        list_objects_v1_xml(&truncated, "m", Some("n/")),
        format!(
            "{HEAD}<ListBucketResult{NS}><Name>photos</Name><Prefix></Prefix><Marker>m</Marker><NextMarker>n/</NextMarker><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated></ListBucketResult>"
        )
    );
}

#[test]
fn copy_results_golden() {
    let checksums = vec![(ChecksumAlgorithm::Crc32c, "crUfeA==".to_string())];
    assert_eq!(
        copy_result_xml(
            CopyResultKind::Object,
            "\"9b2cf535f27731c974343645a3985328\"",
            T,
            &vec![]
        ),
        format!(
            "{HEAD}<CopyObjectResult{NS}><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><LastModified>2009-10-12T17:50:30.000Z</LastModified></CopyObjectResult>"
        )
    );
    assert_eq!(
        copy_result_xml(CopyResultKind::Part, "\"e\"", T, &checksums),
        format!(
            "{HEAD}<CopyPartResult{NS}><ETag>&quot;e&quot;</ETag><LastModified>2009-10-12T17:50:30.000Z</LastModified><ChecksumCRC32C>crUfeA==</ChecksumCRC32C></CopyPartResult>"
        )
    );
}

#[test]
fn multipart_documents_golden() {
    assert_eq!(
        initiate_multipart_upload_xml("photos", "big file.bin", "VXBsb2FkIElE"),
        format!(
            "{HEAD}<InitiateMultipartUploadResult{NS}><Bucket>photos</Bucket><Key>big file.bin</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"
        )
    );
    assert_eq!(
        complete_multipart_upload_xml(
            "http://photos.s3.localhost/big",
            "photos",
            "big",
            "\"3858f62230ac3c915f300c664312c11f-9\"",
            &vec![]
        ),
        format!(
            "{HEAD}<CompleteMultipartUploadResult{NS}><Location>http://photos.s3.localhost/big</Location><Bucket>photos</Bucket><Key>big</Key><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag></CompleteMultipartUploadResult>"
        )
    );
    let parts = ListPartsPage {
        bucket: "photos".into(),
        key: "big".into(),
        upload_id: "u1".into(),
        initiator: owner(),
        owner: owner(),
        storage_class: "STANDARD".into(),
        part_number_marker: 1,
        next_part_number_marker: Some(3),
        max_parts: 2,
        is_truncated: true,
        parts: vec![PartSummary {
            part_number: 2,
            last_modified_unix_millis: T,
            etag: "\"7778aef83f66abc1fa1e8477f296d394\"".into(),
            size_bytes: 10_485_760,
            checksums: vec![],
        }],
    };
    assert_eq!(
        list_parts_xml(&parts),
        format!(
            "{HEAD}<ListPartsResult{NS}><Bucket>photos</Bucket><Key>big</Key><UploadId>u1</UploadId><Initiator>{OWNER_XML}</Initiator><Owner>{OWNER_XML}</Owner><StorageClass>STANDARD</StorageClass><PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated><Part><PartNumber>2</PartNumber><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>10485760</Size></Part></ListPartsResult>"
        )
    );
    let uploads = ListUploadsPage {
        bucket: "photos".into(),
        max_uploads: 3,
        uploads: vec![UploadSummary {
            key: "my movie.m2ts".into(),
            upload_id: "u2".into(),
            initiator: owner(),
            owner: owner(),
            storage_class: "STANDARD".into(),
            initiated_unix_millis: T,
        }],
        common_prefixes: vec!["dir/".into()],
        delimiter: Some("/".into()),
        ..ListUploadsPage::default()
    };
    assert_eq!(
        list_multipart_uploads_xml(&uploads),
        format!(
            "{HEAD}<ListMultipartUploadsResult{NS}><Bucket>photos</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix></Prefix><Delimiter>/</Delimiter><MaxUploads>3</MaxUploads><IsTruncated>false</IsTruncated><Upload><Key>my movie.m2ts</Key><UploadId>u2</UploadId><Initiator>{OWNER_XML}</Initiator><Owner>{OWNER_XML}</Owner><StorageClass>STANDARD</StorageClass><Initiated>2009-10-12T17:50:30.000Z</Initiated></Upload><CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListMultipartUploadsResult>"
        )
    );
}

#[test]
fn delete_result_golden() {
    let xml = delete_result_xml(
        &[DeletedObject {
            key: "sample1.txt".into(),
            version_id: None,
            delete_marker: None,
            delete_marker_version_id: None,
        }],
        &[DeleteFailure {
            key: "sample2.txt".into(),
            version_id: None,
            error: S3Error::AccessDenied,
        }],
    );
    assert_eq!(
        xml,
        format!(
            "{HEAD}<DeleteResult{NS}><Deleted><Key>sample1.txt</Key></Deleted><Error><Key>sample2.txt</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"
        )
    );
}

// --- request bodies ------------------------------------------------------------------------------

#[test]
fn create_bucket_configuration() {
    assert_eq!(parse_create_bucket_configuration(b""), Ok(None));
    assert_eq!(parse_create_bucket_configuration(b"  \n"), Ok(None));
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
   <LocationConstraint>eu-west-1</LocationConstraint>
</CreateBucketConfiguration>"#;
    assert_eq!(
        parse_create_bucket_configuration(body),
        Ok(Some("eu-west-1".into()))
    );
    assert_eq!(
        parse_create_bucket_configuration(b"<CreateBucketConfiguration/>"),
        Ok(None)
    );
    assert_eq!(
        parse_create_bucket_configuration(b"<Other/>"),
        Err(S3Error::MalformedXml)
    );
    assert_eq!(
        parse_create_bucket_configuration(b"not xml"),
        Err(S3Error::MalformedXml)
    );
    let huge = vec![b' '; CREATE_BUCKET_BODY_LIMIT_BYTES + 1];
    assert_eq!(parse_create_bucket_configuration(&huge), Ok(None));
    let mut huge_xml = b"<CreateBucketConfiguration>".to_vec();
    huge_xml.extend(std::iter::repeat_n(b'x', CREATE_BUCKET_BODY_LIMIT_BYTES));
    assert_eq!(
        parse_create_bucket_configuration(&huge_xml),
        Err(S3Error::MaxMessageLengthExceeded)
    );
}

#[test]
fn complete_multipart_upload_body() {
    let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"</ETag></Part>
  <Part><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag><PartNumber>2</PartNumber><ChecksumCRC32>i9aeUg==</ChecksumCRC32></Part>
  <!-- comments are fine -->
  <Part><PartNumber>5</PartNumber><ETag><![CDATA["acbd18db4cc2f85cedef654fccc4a4d8"]]></ETag></Part>
</CompleteMultipartUpload>"#;
    let parts = parse_complete_multipart_upload(body).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts[0],
        CompletedPart {
            part_number: 1,
            etag: "\"a54357aff0632cce46d942af68356b38\"".into(),
            checksums: vec![]
        }
    );
    assert_eq!(parts[1].etag, "\"0c78aef83f66abc1fa1e8477f296d394\"");
    assert_eq!(
        parts[1].checksums,
        vec![(ChecksumAlgorithm::Crc32, "i9aeUg==".to_string())]
    );
    assert_eq!(parts[2].part_number, 5);
    assert_eq!(parts[2].etag, "\"acbd18db4cc2f85cedef654fccc4a4d8\"");

    let out_of_order = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
    assert_eq!(
        parse_complete_multipart_upload(out_of_order),
        Err(S3Error::InvalidPartOrder)
    );
    let duplicate = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
    assert_eq!(
        parse_complete_multipart_upload(duplicate),
        Err(S3Error::InvalidPartOrder)
    );
    for garbage in [
        &b""[..],
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
        b"<CompleteMultipartUpload><Part></CompleteMultipartUpload></Part>",
        b"<Wrong><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Wrong>",
        b"<CompleteMultipartUpload/><Second/>",
        b"<!DOCTYPE x [<!ENTITY a \"b\">]><CompleteMultipartUpload/>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&unknown;</ETag></Part></CompleteMultipartUpload>",
        b"\xff\xfe<garbage",
    ] {
        assert_eq!(parse_complete_multipart_upload(garbage), Err(S3Error::MalformedXml), "{}", String::from_utf8_lossy(garbage));
    }
    let zero = b"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>";
    assert!(matches!(
        parse_complete_multipart_upload(zero),
        Err(S3Error::InvalidArgument(_))
    ));
    let deep = format!(
        "<CompleteMultipartUpload>{}{}</CompleteMultipartUpload>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert_eq!(
        parse_complete_multipart_upload(deep.as_bytes()),
        Err(S3Error::MalformedXml)
    );

    // 10,000 parts fit within the limit.
    let mut many = String::from("<CompleteMultipartUpload>");
    for part_number in 1..=10_000 {
        many.push_str(&format!("<Part><PartNumber>{part_number}</PartNumber><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag></Part>"));
    }
    many.push_str("</CompleteMultipartUpload>");
    assert_eq!(
        parse_complete_multipart_upload(many.as_bytes())
            .unwrap()
            .len(),
        10_000
    );
}

#[test]
fn delete_objects_body() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Quiet>true</Quiet>
  <Object><Key>sample1.txt</Key></Object>
  <Object><Key>a &amp; b &#x263A;</Key><VersionId>v2</VersionId></Object>
</Delete>"#;
    let request = parse_delete_objects(body).unwrap();
    assert!(request.quiet);
    assert_eq!(
        request.objects,
        vec![
            ObjectIdentifier {
                key: "sample1.txt".into(),
                version_id: None
            },
            ObjectIdentifier {
                key: "a & b ☺".into(),
                version_id: Some("v2".into())
            },
        ]
    );
    let not_quiet =
        parse_delete_objects(b"<Delete><Object><Key> spaced key </Key></Object></Delete>").unwrap();
    assert!(!not_quiet.quiet);
    assert_eq!(
        not_quiet.objects[0].key, " spaced key ",
        "keys are not trimmed"
    );
    for garbage in [
        &b"<Delete></Delete>"[..],
        b"<Delete><Object></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
        b"<Delete><Object><Key>a</Key></Object>",
    ] {
        assert_eq!(
            parse_delete_objects(garbage),
            Err(S3Error::MalformedXml),
            "{}",
            String::from_utf8_lossy(garbage)
        );
    }
    let mut too_many = String::from("<Delete>");
    for index in 0..1001 {
        too_many.push_str(&format!("<Object><Key>k{index}</Key></Object>"));
    }
    too_many.push_str("</Delete>");
    assert_eq!(
        parse_delete_objects(too_many.as_bytes()),
        Err(S3Error::MalformedXml)
    );
}

#[test]
fn versioning_configuration_parses_and_renders() {
    use cairn_s3_proto::xml::{
        VersioningConfiguration, VersioningStatus, parse_versioning_configuration,
        versioning_configuration_xml,
    };
    let body = br#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
    assert_eq!(
        parse_versioning_configuration(body),
        Ok(VersioningConfiguration {
            status: Some(VersioningStatus::Enabled),
            mfa_delete_enabled: false,
        })
    );
    let body = b"<VersioningConfiguration><Status>Suspended</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>";
    assert_eq!(
        parse_versioning_configuration(body),
        Ok(VersioningConfiguration {
            status: Some(VersioningStatus::Suspended),
            mfa_delete_enabled: true,
        })
    );
    for bad in [
        &b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>"[..],
        b"<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>",
        b"<VersioningConfiguration><MfaDelete>Maybe</MfaDelete></VersioningConfiguration>",
    ] {
        assert_eq!(
            parse_versioning_configuration(bad),
            Err(S3Error::IllegalVersioningConfiguration)
        );
    }
    assert_eq!(
        parse_versioning_configuration(b"<Versioning/>"),
        Err(S3Error::MalformedXml)
    );
    assert_eq!(
        parse_versioning_configuration(b""),
        Err(S3Error::MissingRequestBodyError)
    );
    assert_eq!(
        versioning_configuration_xml(None),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"
    );
    assert_eq!(
        versioning_configuration_xml(Some("Suspended")),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Suspended</Status></VersioningConfiguration>"
    );
}

#[test]
fn list_versions_result_is_golden() {
    use cairn_s3_proto::xml::{ListVersionsPage, Owner, VersionEntry, list_object_versions_xml};
    let owner = Owner {
        id: "o".into(),
        display_name: "o".into(),
    };
    let page = ListVersionsPage {
        bucket: "b".into(),
        prefix: "a b".into(),
        delimiter: Some("/".into()),
        key_marker: String::new(),
        version_id_marker: String::new(),
        next_key_marker: Some("a b/k".into()),
        next_version_id_marker: Some("null".into()),
        max_keys: 2,
        encoding: ListEncoding::Url,
        is_truncated: true,
        entries: vec![
            VersionEntry {
                key: "a b".into(),
                version_id: "0000000000000009".into(),
                is_latest: true,
                last_modified_unix_millis: 0,
                etag: None,
                size_bytes: 0,
                storage_class: String::new(),
                owner: owner.clone(),
            },
            VersionEntry {
                key: "a b".into(),
                version_id: "null".into(),
                is_latest: false,
                last_modified_unix_millis: 1000,
                etag: Some("\"e\"".into()),
                size_bytes: 3,
                storage_class: "STANDARD".into(),
                owner,
            },
        ],
        common_prefixes: vec!["a b/".into()],
    };
    assert_eq!(
        list_object_versions_xml(&page),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>a%20b</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><NextKeyMarker>a%20b/k</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><DeleteMarker><Key>a%20b</Key><VersionId>0000000000000009</VersionId><IsLatest>true</IsLatest><LastModified>1970-01-01T00:00:00.000Z</LastModified><Owner><ID>o</ID><DisplayName>o</DisplayName></Owner></DeleteMarker><Version><Key>a%20b</Key><VersionId>null</VersionId><IsLatest>false</IsLatest><LastModified>1970-01-01T00:00:01.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><Owner><ID>o</ID><DisplayName>o</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version><CommonPrefixes><Prefix>a%20b/</Prefix></CommonPrefixes></ListVersionsResult>"
    );
}
