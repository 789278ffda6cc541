//! Property tests across modules: any key survives percent-encoding → routing, and XML
//! escaping → request-body parsing, unchanged.

use cairn_s3_proto::encoding::uri_encode;
use cairn_s3_proto::xml::{XmlWriter, parse_delete_objects};
use cairn_s3_proto::{Endpoint, RequestHead, Router};
use proptest::prelude::*;

fn key_strategy() -> impl Strategy<Value = String> {
    // Printable Unicode plus the awkward ASCII S3 allows in keys.
    "([ -~]|\\PC|\t|\r|\n|\u{1}){1,200}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_keys_route_back_to_themselves(key in key_strategy(), virtual_host in any::<bool>()) {
        prop_assume!(key.len() <= 1024);
        let router = Router::new(["s3.localhost"]);
        let encoded = uri_encode(&key, true);
        let (host, path) = if virtual_host {
            ("bucket.s3.localhost".to_string(), format!("/{encoded}"))
        } else {
            ("localhost:9000".to_string(), format!("/bucket/{encoded}"))
        };
        let endpoint = router
            .parse(&RequestHead { method: "PUT", raw_path: &path, raw_query: "", host: Some(&host), ..RequestHead::default() })
            .unwrap();
        prop_assert_eq!(endpoint, Endpoint::PutObject { bucket: "bucket".to_string(), key });
    }

    #[test]
    fn escaped_keys_parse_back_to_themselves(keys in proptest::collection::vec(key_strategy(), 1..20)) {
        let mut writer = XmlWriter::new();
        writer.open("Delete");
        for key in &keys {
            writer.open("Object");
            writer.text_element("Key", key);
            writer.close("Object");
        }
        writer.close("Delete");
        let parsed = parse_delete_objects(writer.finish().as_bytes()).unwrap();
        let parsed_keys: Vec<String> = parsed.objects.into_iter().map(|object| object.key).collect();
        prop_assert_eq!(parsed_keys, keys);
    }
}
