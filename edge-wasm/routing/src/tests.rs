//! Exact decisions for each rule, and the records' round trips and golden bytes.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::abi::{self, AbiError};
use crate::*;

fn request(method: &str, host: &str, path: &str) -> RequestRecord {
    RequestRecord {
        method: method.to_string(),
        host: host.to_string(),
        path: path.to_string(),
        query: String::new(),
        client_region_hint: String::new(),
        headers: Vec::new(),
        policy: Policy {
            virtual_host_suffixes: vec!["s3.localhost".to_string()],
            default_region: "eu-west".to_string(),
            cache_ttl_ms: 2_000,
        },
        regions: vec![
            RegionEntry {
                name: "eu-west".to_string(),
                endpoint: "gw-eu".to_string(),
            },
            RegionEntry {
                name: "us-east".to_string(),
                endpoint: "gw-us".to_string(),
            },
        ],
        buckets: vec![
            BucketEntry {
                bucket: "photos".to_string(),
                region: Some("us-east".to_string()),
            },
            BucketEntry {
                bucket: "gone".to_string(),
                region: None,
            },
            BucketEntry {
                bucket: "orphan".to_string(),
                region: Some("ap-south".to_string()),
            },
        ],
    }
}

fn forward(
    region: &str,
    endpoint: &str,
    bucket: Option<&str>,
    key: &str,
    cacheable: bool,
    cache_ttl_ms: u32,
) -> Decision {
    Decision::Forward(Forward {
        region: region.to_string(),
        endpoint: endpoint.to_string(),
        bucket: bucket.map(ToString::to_string),
        key: key.to_string(),
        cacheable,
        cache_ttl_ms,
    })
}

fn reason(decision: &Decision) -> Option<RejectReason> {
    match decision {
        Decision::Reject(reject) => Some(reject.reason),
        _ => None,
    }
}

#[test]
fn path_style_get_of_an_object_goes_to_the_bucket_region_and_is_cacheable() {
    let decision = route(&request("GET", "127.0.0.1:8443", "/photos/a/b%20c.jpg"));
    assert_eq!(
        decision,
        forward("us-east", "gw-us", Some("photos"), "a/b c.jpg", true, 2_000)
    );
}

#[test]
fn virtual_host_style_names_the_bucket_in_the_host() {
    let decision = route(&request("GET", "photos.s3.localhost:8443", "/cat.jpg"));
    assert_eq!(
        decision,
        forward("us-east", "gw-us", Some("photos"), "cat.jpg", true, 2_000)
    );
    // A host that is not under a suffix is path style.
    let decision = route(&request("GET", "s3.localhost", "/photos/cat.jpg"));
    assert_eq!(
        decision,
        forward("us-east", "gw-us", Some("photos"), "cat.jpg", true, 2_000)
    );
}

#[test]
fn unknown_bucket_asks_the_host_for_its_region() {
    let decision = route(&request("PUT", "localhost", "/newbucket/key"));
    assert_eq!(
        decision,
        Decision::NeedBucketRegion {
            bucket: "newbucket".to_string()
        }
    );
}

#[test]
fn nonexistent_bucket_goes_to_the_hint_region_then_the_default_uncached() {
    let mut record = request("GET", "localhost", "/gone/key");
    assert_eq!(
        route(&record),
        forward("eu-west", "gw-eu", Some("gone"), "key", false, 0)
    );
    record.client_region_hint = "us-east".to_string();
    assert_eq!(
        route(&record),
        forward("us-east", "gw-us", Some("gone"), "key", false, 0)
    );
    // A hint naming no known region falls back to the default.
    record.client_region_hint = "mars".to_string();
    assert_eq!(
        route(&record),
        forward("eu-west", "gw-eu", Some("gone"), "key", false, 0)
    );
}

#[test]
fn create_bucket_goes_to_the_hint_region_whatever_the_table_says() {
    // "photos" lives in us-east; a CreateBucket for it signed for eu-west goes to eu-west
    // (which answers BucketAlreadyExists/OwnedByYou from the global bucket service).
    let mut record = request("PUT", "localhost", "/photos");
    record.client_region_hint = "eu-west".to_string();
    assert_eq!(
        route(&record),
        forward("eu-west", "gw-eu", Some("photos"), "", false, 0)
    );
    // An unknown bucket needs no lookup for it.
    let mut record = request("PUT", "localhost", "/brand-new");
    record.client_region_hint = "us-east".to_string();
    assert_eq!(
        route(&record),
        forward("us-east", "gw-us", Some("brand-new"), "", false, 0)
    );
    // A bucket configuration PUT (with a query) goes to the bucket's region.
    let mut record = request("PUT", "localhost", "/photos");
    record.query = "versioning".to_string();
    record.client_region_hint = "eu-west".to_string();
    assert_eq!(
        route(&record),
        forward("us-east", "gw-us", Some("photos"), "", false, 0)
    );
}

#[test]
fn list_buckets_goes_to_the_hint_region() {
    let mut record = request("GET", "localhost", "/");
    record.client_region_hint = "us-east".to_string();
    assert_eq!(
        route(&record),
        forward("us-east", "gw-us", None, "", false, 0)
    );
}

#[test]
fn a_bucket_in_a_region_this_edge_does_not_serve_is_rejected() {
    let decision = route(&request("GET", "localhost", "/orphan/key"));
    assert_eq!(reason(&decision), Some(RejectReason::RegionUnavailable));
    let mut record = request("GET", "localhost", "/");
    record.regions.clear();
    assert_eq!(
        reason(&route(&record)),
        Some(RejectReason::RegionUnavailable)
    );
}

#[test]
fn invalid_input_is_rejected_with_its_reason() {
    assert_eq!(
        reason(&route(&request("GET", "localhost", "/Bad_Bucket/key"))),
        Some(RejectReason::InvalidBucketName)
    );
    assert_eq!(
        reason(&route(&request("GET", "localhost", "/ab/key"))),
        Some(RejectReason::InvalidBucketName)
    );
    assert_eq!(
        reason(&route(&request("GET", "192.168.1.1.s3.localhost", "/k"))),
        Some(RejectReason::InvalidBucketName)
    );
    assert_eq!(
        reason(&route(&request("TRACE", "localhost", "/photos/key"))),
        Some(RejectReason::MethodNotAllowed)
    );
    assert_eq!(
        reason(&route(&request("GET", "localhost", "photos/key"))),
        Some(RejectReason::InvalidUri)
    );
    assert_eq!(
        reason(&route(&request("GET", "localhost", "/photos/bad%zz"))),
        Some(RejectReason::InvalidUri)
    );
    assert_eq!(
        reason(&route(&request("GET", "localhost", "/photos/bad%ff"))),
        Some(RejectReason::InvalidUri)
    );
}

#[test]
fn only_plain_whole_object_gets_are_cacheable() {
    let uncacheable = |mutate: &dyn Fn(&mut RequestRecord)| {
        let mut record = request("GET", "localhost", "/photos/key");
        mutate(&mut record);
        match route(&record) {
            Decision::Forward(forward) => !forward.cacheable && forward.cache_ttl_ms == 0,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(uncacheable(&|record| record.method = "HEAD".to_string()));
    assert!(uncacheable(&|record| record.method = "PUT".to_string()));
    assert!(uncacheable(
        &|record| record.query = "versionId=3".to_string()
    ));
    assert!(uncacheable(&|record| record.path = "/photos".to_string()));
    assert!(uncacheable(&|record| record.path = "/photos/".to_string()));
    for name in ["range", "if-none-match", "if-match", "If-Modified-Since"] {
        assert!(uncacheable(&|record| record
            .headers
            .push((name.to_string(), "x".to_string()))));
    }
    assert!(uncacheable(&|record| record.headers.push((
        "cache-control".to_string(),
        "max-age=10, no-store".to_string()
    ))));
}

#[test]
fn no_cache_forces_revalidation() {
    for value in ["no-cache", "max-age=0", "No-Cache, private"] {
        let mut record = request("GET", "localhost", "/photos/key");
        record
            .headers
            .push(("cache-control".to_string(), value.to_string()));
        assert_eq!(
            route(&record),
            forward("us-east", "gw-us", Some("photos"), "key", true, 0),
            "{value}"
        );
    }
}

#[test]
fn records_round_trip() {
    let mut record = request("GET", "photos.s3.localhost", "/k");
    record.query = "a=b".to_string();
    record.client_region_hint = "us-east".to_string();
    record
        .headers
        .push(("range".to_string(), "bytes=0-1".to_string()));
    let bytes = abi::encode_request(&record);
    assert_eq!(abi::decode_request(&bytes), Ok(record));
    let decisions = [
        forward("us-east", "gw-us", Some("photos"), "k", true, 7),
        forward("us-east", "gw-us", None, "", false, 0),
        Decision::Reject(Reject {
            reason: RejectReason::InvalidUri,
            message: "m".to_string(),
        }),
        Decision::NeedBucketRegion {
            bucket: "b".to_string(),
        },
    ];
    for decision in decisions {
        let bytes = abi::encode_decision(&decision);
        assert_eq!(abi::decode_decision(&bytes), Ok(decision));
    }
    for reason in RejectReason::ALL {
        assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
    }
}

#[test]
fn decision_record_golden_bytes_version_1() {
    let bytes = abi::encode_decision(&Decision::NeedBucketRegion {
        bucket: "abc".to_string(),
    });
    assert_eq!(bytes, [1, 0, 0, 0, 2, 3, 0, 0, 0, b'a', b'b', b'c']);
    let bytes = abi::encode_decision(&Decision::Reject(Reject {
        reason: RejectReason::MethodNotAllowed,
        message: String::new(),
    }));
    assert_eq!(bytes, [1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0]);
    let bytes = abi::encode_decision(&forward("r", "e", Some("b"), "k", true, 258));
    assert_eq!(
        bytes,
        [
            1, 0, 0, 0, 0, 1, 0, 0, 0, b'r', 1, 0, 0, 0, b'e', 1, 1, 0, 0, 0, b'b', 1, 0, 0, 0,
            b'k', 1, 2, 1, 0, 0
        ]
    );
}

#[test]
fn request_record_golden_bytes_version_1() {
    let record = RequestRecord {
        method: "GET".to_string(),
        path: "/".to_string(),
        buckets: vec![BucketEntry {
            bucket: "b".to_string(),
            region: None,
        }],
        ..RequestRecord::default()
    };
    let bytes = abi::encode_request(&record);
    let mut expected: Vec<u8> = vec![1, 0, 0, 0];
    expected.extend([3, 0, 0, 0, b'G', b'E', b'T']); // method
    expected.extend([0, 0, 0, 0]); // host
    expected.extend([1, 0, 0, 0, b'/']); // path
    expected.extend([0, 0, 0, 0]); // query
    expected.extend([0, 0, 0, 0]); // client region hint
    expected.extend([0, 0, 0, 0]); // headers
    expected.extend([0, 0, 0, 0]); // virtual host suffixes
    expected.extend([0, 0, 0, 0]); // default region
    expected.extend([0, 0, 0, 0]); // cache ttl
    expected.extend([0, 0, 0, 0]); // regions
    expected.extend([1, 0, 0, 0, 1, 0, 0, 0, b'b', 0, 0, 0, 0, 0]); // buckets
    assert_eq!(bytes, expected);
}

#[test]
fn malformed_records_are_refused_not_panicked_on() {
    let bytes = abi::encode_request(&request("GET", "localhost", "/photos/key"));
    for cut in 0..bytes.len() {
        let decision = abi::decode_decision(&route_record(&bytes[..cut])).unwrap();
        assert_eq!(reason(&decision), Some(RejectReason::MalformedRecord));
    }
    let mut other_version = bytes.clone();
    other_version[0] = 2;
    assert_eq!(
        abi::decode_request(&other_version),
        Err(AbiError::UnsupportedVersion(2))
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(abi::decode_request(&trailing), Err(AbiError::TrailingBytes));
    // A forged huge count does not allocate.
    let mut forged = vec![1, 0, 0, 0];
    for _ in 0..5 {
        forged.extend([0, 0, 0, 0]);
    }
    forged.extend([0xff, 0xff, 0xff, 0xff]);
    assert_eq!(abi::decode_request(&forged), Err(AbiError::Truncated));
    // The full record routes.
    let decision = abi::decode_decision(&route_record(&bytes)).unwrap();
    assert_eq!(
        decision,
        forward("us-east", "gw-us", Some("photos"), "key", true, 2_000)
    );
}
