//! Routing: every core operation from its method, path and query markers, both addressing
//! styles, S3's key decoding, validation errors, and 501 for recognised-but-unimplemented
//! subresources.

use cairn_s3_proto::endpoint::{
    CopySource, ListObjectsV1Params, ListObjectsV2Params, ListUploadsParams, ResponseOverrides,
    UnimplementedOperation, parse_copy_source, validate_bucket_name,
};
use cairn_s3_proto::range::ByteRange;
use cairn_s3_proto::xml::ListEncoding;
use cairn_s3_proto::{Endpoint, RequestHead, Router, S3Error};

fn router() -> Router {
    Router::new(["s3.localhost", "s3.example.com"])
}

fn route(method: &str, raw_path: &str, raw_query: &str) -> Result<Endpoint, S3Error> {
    router().parse(&RequestHead {
        method,
        raw_path,
        raw_query,
        host: Some("127.0.0.1:9000"),
        ..RequestHead::default()
    })
}

fn route_host(
    method: &str,
    host: &str,
    raw_path: &str,
    raw_query: &str,
) -> Result<Endpoint, S3Error> {
    router().parse(&RequestHead {
        method,
        raw_path,
        raw_query,
        host: Some(host),
        ..RequestHead::default()
    })
}

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn core_operations_path_style() {
    let bucket = || s("photos");
    let key = || s("2024/cat.jpg");
    let cases: Vec<(&str, &str, &str, Endpoint)> = vec![
        ("GET", "/", "", Endpoint::ListBuckets),
        (
            "PUT",
            "/photos",
            "",
            Endpoint::CreateBucket { bucket: bucket() },
        ),
        (
            "PUT",
            "/photos/",
            "",
            Endpoint::CreateBucket { bucket: bucket() },
        ),
        (
            "HEAD",
            "/photos",
            "",
            Endpoint::HeadBucket { bucket: bucket() },
        ),
        (
            "DELETE",
            "/photos",
            "",
            Endpoint::DeleteBucket { bucket: bucket() },
        ),
        (
            "GET",
            "/photos",
            "location",
            Endpoint::GetBucketLocation { bucket: bucket() },
        ),
        (
            "POST",
            "/photos",
            "delete",
            Endpoint::DeleteObjects { bucket: bucket() },
        ),
        (
            "POST",
            "/photos",
            "delete=",
            Endpoint::DeleteObjects { bucket: bucket() },
        ),
        (
            "PUT",
            "/photos/2024/cat.jpg",
            "",
            Endpoint::PutObject {
                bucket: bucket(),
                key: key(),
            },
        ),
        (
            "GET",
            "/photos/2024/cat.jpg",
            "",
            Endpoint::GetObject {
                bucket: bucket(),
                key: key(),
                version_id: None,
                part_number: None,
                overrides: ResponseOverrides::default(),
            },
        ),
        (
            "GET",
            "/photos/2024/cat.jpg",
            "partNumber=3&versionId=v1&response-content-type=text%2Fplain&response-content-disposition=attachment%3B%20filename%3D%22a%20b%22",
            Endpoint::GetObject {
                bucket: bucket(),
                key: key(),
                version_id: Some(s("v1")),
                part_number: Some(3),
                overrides: ResponseOverrides {
                    content_type: Some(s("text/plain")),
                    content_disposition: Some(s("attachment; filename=\"a b\"")),
                    ..ResponseOverrides::default()
                },
            },
        ),
        (
            "HEAD",
            "/photos/2024/cat.jpg",
            "",
            Endpoint::HeadObject {
                bucket: bucket(),
                key: key(),
                version_id: None,
                part_number: None,
            },
        ),
        (
            "DELETE",
            "/photos/2024/cat.jpg",
            "",
            Endpoint::DeleteObject {
                bucket: bucket(),
                key: key(),
                version_id: None,
            },
        ),
        (
            "POST",
            "/photos/2024/cat.jpg",
            "uploads",
            Endpoint::CreateMultipartUpload {
                bucket: bucket(),
                key: key(),
            },
        ),
        (
            "PUT",
            "/photos/2024/cat.jpg",
            "partNumber=2&uploadId=abc",
            Endpoint::UploadPart {
                bucket: bucket(),
                key: key(),
                upload_id: s("abc"),
                part_number: 2,
            },
        ),
        (
            "POST",
            "/photos/2024/cat.jpg",
            "uploadId=abc",
            Endpoint::CompleteMultipartUpload {
                bucket: bucket(),
                key: key(),
                upload_id: s("abc"),
            },
        ),
        (
            "DELETE",
            "/photos/2024/cat.jpg",
            "uploadId=abc",
            Endpoint::AbortMultipartUpload {
                bucket: bucket(),
                key: key(),
                upload_id: s("abc"),
            },
        ),
        (
            "GET",
            "/photos/2024/cat.jpg",
            "uploadId=abc&max-parts=5&part-number-marker=7",
            Endpoint::ListParts {
                bucket: bucket(),
                key: key(),
                upload_id: s("abc"),
                max_parts: 5,
                part_number_marker: 7,
            },
        ),
        (
            "GET",
            "/photos",
            "uploads&prefix=a&delimiter=%2F&key-marker=k&upload-id-marker=u&max-uploads=2000&encoding-type=url",
            Endpoint::ListMultipartUploads {
                bucket: bucket(),
                params: ListUploadsParams {
                    prefix: s("a"),
                    delimiter: Some(s("/")),
                    key_marker: s("k"),
                    upload_id_marker: s("u"),
                    max_uploads: 1000,
                    encoding: ListEncoding::Url,
                },
            },
        ),
        (
            "GET",
            "/photos",
            "list-type=2&prefix=a+b&delimiter=%2F&continuation-token=tok&start-after=x&max-keys=0&fetch-owner=true",
            Endpoint::ListObjectsV2 {
                bucket: bucket(),
                params: ListObjectsV2Params {
                    prefix: s("a b"),
                    delimiter: Some(s("/")),
                    continuation_token: Some(s("tok")),
                    start_after: Some(s("x")),
                    max_keys: 0,
                    encoding: ListEncoding::Raw,
                    fetch_owner: true,
                },
            },
        ),
        (
            "GET",
            "/photos",
            "marker=m&max-keys=10",
            Endpoint::ListObjectsV1 {
                bucket: bucket(),
                params: ListObjectsV1Params {
                    prefix: s(""),
                    delimiter: None,
                    marker: s("m"),
                    max_keys: 10,
                    encoding: ListEncoding::Raw,
                },
            },
        ),
    ];
    for (method, path, query, expected) in cases {
        assert_eq!(
            route(method, path, query),
            Ok(expected),
            "{method} {path}?{query}"
        );
    }
}

#[test]
fn copy_operations_read_the_copy_source_header() {
    let head = RequestHead {
        method: "PUT",
        raw_path: "/dst/new%20key",
        raw_query: "",
        host: Some("localhost"),
        copy_source: Some("/src/old%20key%2Bplus?versionId=v9"),
        copy_source_range: None,
    };
    let source = CopySource {
        bucket: s("src"),
        key: s("old key+plus"),
        version_id: Some(s("v9")),
    };
    assert_eq!(
        router().parse(&head),
        Ok(Endpoint::CopyObject {
            bucket: s("dst"),
            key: s("new key"),
            source: source.clone()
        })
    );
    let part = RequestHead {
        raw_query: "uploadId=u&partNumber=1",
        copy_source_range: Some("bytes=0-99"),
        ..head
    };
    assert_eq!(
        router().parse(&part),
        Ok(Endpoint::UploadPartCopy {
            bucket: s("dst"),
            key: s("new key"),
            upload_id: s("u"),
            part_number: 1,
            source,
            source_range: Some(ByteRange {
                first_byte: 0,
                last_byte_inclusive: 99
            }),
        })
    );
    assert_eq!(
        parse_copy_source("src/a/b"),
        Ok(CopySource {
            bucket: s("src"),
            key: s("a/b"),
            version_id: None
        })
    );
    assert!(parse_copy_source("src").is_err());
    assert!(parse_copy_source("/src/").is_err());
    assert_eq!(
        parse_copy_source("/Bad_Bucket/key"),
        Err(S3Error::InvalidBucketName)
    );
    let bad_range = RequestHead {
        copy_source_range: Some("bytes=5-"),
        ..part
    };
    assert!(matches!(
        router().parse(&bad_range),
        Err(S3Error::InvalidArgument(_))
    ));
}

#[test]
fn virtual_host_style() {
    let get = |key: &str| Endpoint::GetObject {
        bucket: s("photos"),
        key: s(key),
        version_id: None,
        part_number: None,
        overrides: ResponseOverrides::default(),
    };
    assert_eq!(
        route_host("GET", "photos.s3.localhost:9000", "/cat.jpg", ""),
        Ok(get("cat.jpg"))
    );
    assert_eq!(
        route_host("GET", "PHOTOS.S3.LOCALHOST", "/cat.jpg", ""),
        Ok(get("cat.jpg"))
    );
    assert_eq!(
        route_host("GET", "photos.s3.example.com.", "/a/b", ""),
        Ok(get("a/b"))
    );
    // The key of a virtual-host request may itself start with the bucket's name.
    assert_eq!(
        route_host("GET", "photos.s3.localhost", "/photos/x", ""),
        Ok(get("photos/x"))
    );
    assert_eq!(
        route_host("GET", "photos.s3.localhost", "/", "list-type=2"),
        Ok(Endpoint::ListObjectsV2 {
            bucket: s("photos"),
            params: ListObjectsV2Params {
                max_keys: 1000,
                ..ListObjectsV2Params::default()
            }
        })
    );
    assert_eq!(
        route_host("PUT", "my.dotted.bucket.s3.localhost", "/", ""),
        Ok(Endpoint::CreateBucket {
            bucket: s("my.dotted.bucket")
        })
    );
    // The base domain itself and unknown hosts are path style.
    assert_eq!(
        route_host("GET", "s3.localhost:9000", "/", ""),
        Ok(Endpoint::ListBuckets)
    );
    assert_eq!(
        route_host("GET", "[::1]:9000", "/photos/cat.jpg", ""),
        Ok(get("cat.jpg"))
    );
    assert_eq!(
        route_host("GET", "elsewhere.test", "/photos/cat.jpg", ""),
        Ok(get("cat.jpg"))
    );
    assert_eq!(
        route_host("GET", "Bad_Name.s3.localhost", "/k", ""),
        Err(S3Error::InvalidBucketName)
    );
}

#[test]
fn keys_decode_exactly_as_s3_does() {
    let key_of = |raw_path: &str| match route("PUT", raw_path, "") {
        Ok(Endpoint::PutObject { key, .. }) => key,
        other => panic!("{raw_path}: {other:?}"),
    };
    assert_eq!(key_of("/b1b/with%20space"), "with space");
    assert_eq!(key_of("/b1b/plus+stays+plus"), "plus+stays+plus");
    assert_eq!(key_of("/b1b/encoded%2Bplus"), "encoded+plus");
    assert_eq!(key_of("/b1b/percent%25sign"), "percent%sign");
    assert_eq!(key_of("/b1b//leading//double//"), "/leading//double//");
    assert_eq!(key_of("/b1b/./dots/../kept"), "./dots/../kept");
    assert_eq!(key_of("/b1b/%E6%97%A5%E6%9C%AC/%C3%BC"), "日本/ü");
    assert_eq!(key_of("/b1b/raw-ünicode"), "raw-ünicode");
    assert_eq!(key_of("/b1b/a%2Fb"), "a/b");
    assert_eq!(
        route("PUT", "/b1b/bad%zzescape", ""),
        Err(S3Error::InvalidUri)
    );
    assert_eq!(
        route("PUT", "/b1b/not-utf8-%FF", ""),
        Err(S3Error::InvalidUri)
    );
    assert_eq!(route("PUT", "relative", ""), Err(S3Error::InvalidUri));
    // 1,024 bytes is the limit, counted in UTF-8 bytes.
    let longest = "k".repeat(1024);
    assert_eq!(key_of(&format!("/b1b/{longest}")), longest);
    assert_eq!(
        route("PUT", &format!("/b1b/{longest}k"), ""),
        Err(S3Error::KeyTooLongError)
    );
    let multibyte = "é".repeat(513);
    assert_eq!(
        route("PUT", &format!("/b1b/{multibyte}"), ""),
        Err(S3Error::KeyTooLongError)
    );
}

#[test]
fn bucket_name_rules() {
    for good in [
        "abc",
        "my-bucket",
        "my.bucket.name",
        "a1b2c3",
        "123",
        &"a".repeat(63),
        "xn-ok",
    ] {
        assert_eq!(validate_bucket_name(good), Ok(()), "{good}");
    }
    for bad in [
        "ab",
        &"a".repeat(64),
        "MyBucket",
        "my_bucket",
        "-bucket",
        "bucket-",
        ".bucket",
        "bucket.",
        "my..bucket",
        "my.-bucket",
        "my-.bucket",
        "192.168.5.4",
        "xn--bucket",
        "sthree-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "bucket.mrap",
        "buck et",
        "bücket",
    ] {
        assert_eq!(
            validate_bucket_name(bad),
            Err(S3Error::InvalidBucketName),
            "{bad}"
        );
        assert_eq!(
            route("GET", &format!("/{}", bad.replace(' ', "%20")), ""),
            Err(S3Error::InvalidBucketName),
            "{bad}"
        );
    }
}

#[test]
fn versioning_endpoints() {
    assert_eq!(
        route("GET", "/b1b", "versioning"),
        Ok(Endpoint::GetBucketVersioning {
            bucket: "b1b".into()
        })
    );
    assert_eq!(
        route("PUT", "/b1b", "versioning"),
        Ok(Endpoint::PutBucketVersioning {
            bucket: "b1b".into()
        })
    );
    assert_eq!(
        route("DELETE", "/b1b", "versioning"),
        Err(S3Error::MethodNotAllowed)
    );
    assert_eq!(
        route(
            "GET",
            "/b1b",
            "versions&prefix=a%2Fb&delimiter=%2F&key-marker=k&version-id-marker=null&max-keys=5000&encoding-type=url"
        ),
        Ok(Endpoint::ListObjectVersions {
            bucket: "b1b".into(),
            params: cairn_s3_proto::endpoint::ListVersionsParams {
                prefix: "a/b".into(),
                delimiter: Some("/".into()),
                key_marker: "k".into(),
                version_id_marker: "null".into(),
                max_keys: 1000,
                encoding: cairn_s3_proto::xml::ListEncoding::Url,
            },
        })
    );
    assert!(matches!(
        route("GET", "/b1b", "versions&max-keys=-1"),
        Err(S3Error::InvalidArgument(_))
    ));
    assert_eq!(
        route("GET", "/b1b", "versions").unwrap().operation_name(),
        "ListObjectVersions"
    );
}

#[test]
fn tagging_subresources_route_to_their_operations() {
    assert_eq!(
        route("GET", "/b1b", "tagging").unwrap(),
        Endpoint::GetBucketTagging {
            bucket: "b1b".into()
        }
    );
    assert_eq!(
        route("PUT", "/b1b", "tagging").unwrap(),
        Endpoint::PutBucketTagging {
            bucket: "b1b".into()
        }
    );
    assert_eq!(
        route("DELETE", "/b1b", "tagging").unwrap(),
        Endpoint::DeleteBucketTagging {
            bucket: "b1b".into()
        }
    );
    assert_eq!(
        route("GET", "/b1b/a/key", "tagging&versionId=v1").unwrap(),
        Endpoint::GetObjectTagging {
            bucket: "b1b".into(),
            key: "a/key".into(),
            version_id: Some("v1".into())
        }
    );
    assert_eq!(
        route("PUT", "/b1b/k", "tagging").unwrap(),
        Endpoint::PutObjectTagging {
            bucket: "b1b".into(),
            key: "k".into(),
            version_id: None
        }
    );
    assert_eq!(
        route("DELETE", "/b1b/k", "tagging").unwrap(),
        Endpoint::DeleteObjectTagging {
            bucket: "b1b".into(),
            key: "k".into(),
            version_id: None
        }
    );
    assert_eq!(
        route("POST", "/b1b/k", "tagging"),
        Err(S3Error::MethodNotAllowed)
    );
    assert_eq!(
        route("POST", "/b1b", "tagging"),
        Err(S3Error::MethodNotAllowed)
    );
}

#[test]
fn lifecycle_routes_by_method() {
    let bucket = || "b1b".to_string();
    assert_eq!(
        route("GET", "/b1b", "lifecycle"),
        Ok(Endpoint::GetBucketLifecycle { bucket: bucket() })
    );
    assert_eq!(
        route("PUT", "/b1b", "lifecycle"),
        Ok(Endpoint::PutBucketLifecycle { bucket: bucket() })
    );
    assert_eq!(
        route("DELETE", "/b1b", "lifecycle"),
        Ok(Endpoint::DeleteBucketLifecycle { bucket: bucket() })
    );
    assert_eq!(
        route("POST", "/b1b", "lifecycle"),
        Err(S3Error::MethodNotAllowed)
    );
}

#[test]
fn replication_routes_by_method() {
    let bucket = || "b1b".to_string();
    assert_eq!(
        route("GET", "/b1b", "replication"),
        Ok(Endpoint::GetBucketReplication { bucket: bucket() })
    );
    assert_eq!(
        route("PUT", "/b1b", "replication"),
        Ok(Endpoint::PutBucketReplication { bucket: bucket() })
    );
    assert_eq!(
        route("DELETE", "/b1b", "replication"),
        Ok(Endpoint::DeleteBucketReplication { bucket: bucket() })
    );
    assert_eq!(
        route("POST", "/b1b", "replication"),
        Err(S3Error::MethodNotAllowed)
    );
}

#[test]
fn unimplemented_subresources_answer_not_implemented() {
    use UnimplementedOperation as Op;
    let cases: Vec<(&str, &str, &str, Op)> = vec![
        ("POST", "/b1b/key", "restore", Op::RestoreObject),
        (
            "POST",
            "/b1b/key",
            "select&select-type=2",
            Op::SelectObjectContent,
        ),
        ("GET", "/b1b/key", "torrent", Op::GetObjectTorrent),
        (
            "GET",
            "/b1b",
            "website",
            Op::OtherBucketSubresource("website"),
        ),
        (
            "DELETE",
            "/b1b",
            "ownershipControls",
            Op::OtherBucketSubresource("ownershipControls"),
        ),
    ];
    for (method, path, query, operation) in cases {
        let endpoint = route(method, path, query)
            .unwrap_or_else(|error| panic!("{method} {path}?{query}: {error:?}"));
        match &endpoint {
            Endpoint::NotImplemented {
                operation: found, ..
            } => assert_eq!(*found, operation, "{method} {path}?{query}"),
            other => panic!("{method} {path}?{query} routed to {other:?}"),
        }
        assert_eq!(endpoint.require_implemented(), Err(S3Error::NotImplemented));
        assert_eq!(S3Error::NotImplemented.http_status(), 501);
    }
}

#[test]
fn parameter_and_method_errors() {
    assert_eq!(route("PUT", "/", ""), Err(S3Error::MethodNotAllowed));
    assert_eq!(
        route("PATCH", "/b1b/key", ""),
        Err(S3Error::MethodNotAllowed)
    );
    assert_eq!(
        route("POST", "/b1b/key", ""),
        Err(S3Error::MethodNotAllowed)
    );
    for query in [
        "max-keys=-1",
        "max-keys=abc",
        "list-type=2&encoding-type=base64",
        "list-type=3",
    ] {
        assert!(
            matches!(
                route("GET", "/b1b", query),
                Err(S3Error::InvalidArgument(_))
            ),
            "{query}"
        );
    }
    for query in [
        "partNumber=0&uploadId=u",
        "partNumber=10001&uploadId=u",
        "partNumber=x&uploadId=u",
        "uploadId=u",
    ] {
        assert!(
            matches!(
                route("PUT", "/b1b/key", query),
                Err(S3Error::InvalidArgument(_))
            ),
            "{query}"
        );
    }
    assert!(matches!(
        route("PUT", "/b1b/key", "partNumber=1"),
        Err(S3Error::InvalidRequest(_))
    ));
    assert!(matches!(
        route("GET", "/b1b/key", "partNumber=0"),
        Err(S3Error::InvalidArgument(_))
    ));
    assert_eq!(route("GET", "/b1b", "prefix=%zz"), Err(S3Error::InvalidUri));
}

#[test]
fn endpoint_accessors() {
    let endpoint = route("GET", "/b1b/key", "uploadId=u").unwrap();
    assert_eq!(endpoint.operation_name(), "ListParts");
    assert_eq!(endpoint.bucket(), Some("b1b"));
    assert_eq!(Endpoint::ListBuckets.bucket(), None);
    // Metrics index operations by position: every name appears once.
    let names: std::collections::BTreeSet<_> =
        cairn_s3_proto::endpoint::OPERATION_NAMES.iter().collect();
    assert_eq!(names.len(), cairn_s3_proto::endpoint::OPERATION_NAMES.len());
    assert_eq!(
        route("PUT", "/b1b/key", "").unwrap().operation_name(),
        "PutObject"
    );
    assert_eq!(Endpoint::ListBuckets.operation_index(), 0);
    // Browser-based uploads: POST on the bucket, authorised as PutObject.
    let post = route("POST", "/b1b", "").unwrap();
    assert_eq!(
        post,
        Endpoint::PostObject {
            bucket: "b1b".into()
        }
    );
    assert_eq!(post.operation_name(), "PostObject");
    assert_eq!(post.policy_action(), "s3:PutObject");
    assert_eq!(post.bucket(), Some("b1b"));
    assert_eq!(post.key(), None);
}

#[test]
fn object_lock_and_bucket_encryption_routes() {
    let key = |version_id: Option<&str>| {
        (
            String::from("b1b"),
            String::from("key"),
            version_id.map(str::to_owned),
        )
    };
    let cases: Vec<(&str, &str, &str, Endpoint, &str)> = vec![
        (
            "GET",
            "/b1b",
            "object-lock",
            Endpoint::GetObjectLockConfiguration {
                bucket: "b1b".into(),
            },
            "s3:GetBucketObjectLockConfiguration",
        ),
        (
            "PUT",
            "/b1b",
            "object-lock",
            Endpoint::PutObjectLockConfiguration {
                bucket: "b1b".into(),
            },
            "s3:PutBucketObjectLockConfiguration",
        ),
        (
            "GET",
            "/b1b",
            "encryption",
            Endpoint::GetBucketEncryption {
                bucket: "b1b".into(),
            },
            "s3:GetEncryptionConfiguration",
        ),
        (
            "PUT",
            "/b1b",
            "encryption",
            Endpoint::PutBucketEncryption {
                bucket: "b1b".into(),
            },
            "s3:PutEncryptionConfiguration",
        ),
        (
            "DELETE",
            "/b1b",
            "encryption",
            Endpoint::DeleteBucketEncryption {
                bucket: "b1b".into(),
            },
            "s3:PutEncryptionConfiguration",
        ),
        (
            "GET",
            "/b1b/key",
            "retention&versionId=7",
            {
                let (bucket, key, version_id) = key(Some("7"));
                Endpoint::GetObjectRetention {
                    bucket,
                    key,
                    version_id,
                }
            },
            "s3:GetObjectRetention",
        ),
        (
            "PUT",
            "/b1b/key",
            "retention",
            {
                let (bucket, key, version_id) = key(None);
                Endpoint::PutObjectRetention {
                    bucket,
                    key,
                    version_id,
                }
            },
            "s3:PutObjectRetention",
        ),
        (
            "GET",
            "/b1b/key",
            "legal-hold",
            {
                let (bucket, key, version_id) = key(None);
                Endpoint::GetObjectLegalHold {
                    bucket,
                    key,
                    version_id,
                }
            },
            "s3:GetObjectLegalHold",
        ),
        (
            "PUT",
            "/b1b/key",
            "legal-hold&versionId=9",
            {
                let (bucket, key, version_id) = key(Some("9"));
                Endpoint::PutObjectLegalHold {
                    bucket,
                    key,
                    version_id,
                }
            },
            "s3:PutObjectLegalHold",
        ),
    ];
    for (method, path, query, expected, action) in cases {
        let endpoint = route(method, path, query).unwrap();
        assert_eq!(endpoint, expected, "{method} {path}?{query}");
        assert_eq!(endpoint.policy_action(), action);
        assert_eq!(endpoint.bucket(), Some("b1b"));
    }
    assert_eq!(
        route("DELETE", "/b1b", "object-lock"),
        Err(S3Error::MethodNotAllowed)
    );
    assert_eq!(
        route("DELETE", "/b1b/key", "retention"),
        Err(S3Error::MethodNotAllowed)
    );
}
