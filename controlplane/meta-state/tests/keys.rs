//! The LMDB key encodings preserve the in-memory order and round-trip.

use cairn_meta_state::keys::*;
use cairn_meta_state::*;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Small alphabets with NUL, the escape byte's neighbours and multi-byte characters make
    // prefixes and ties common.
    proptest::collection::vec(
        prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('ÿ'),
            Just('é'),
            Just('\u{10FFFF}')
        ],
        0..5,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

#[test]
fn golden_object_version_key() {
    assert_eq!(
        object_version_key("b", "a\0c", VersionId(0x0102)),
        vec![
            2, b'b', 0, 1, b'a', 0, 0xFF, b'c', 0, 1, 0, 0, 0, 0, 0, 0, 1, 2
        ]
    );
    assert_eq!(
        decode_object_version_key(&object_version_key("b", "a\0c", VersionId(0x0102))),
        Ok(("b".to_owned(), "a\0c".to_owned(), VersionId(0x0102)))
    );
    assert!(
        object_version_key("b", "a", VersionId(1)).starts_with(&object_versions_prefix("b", "a"))
    );
    assert!(
        !object_version_key("b", "ab", VersionId(1)).starts_with(&object_versions_prefix("b", "a"))
    );
}

#[test]
fn malformed_keys_are_refused() {
    assert!(decode_bucket_key(&[]).is_err());
    assert!(decode_bucket_key(&[2, b'a', 0, 1]).is_err());
    assert!(decode_bucket_key(&[1, b'a', 0, 7]).is_err());
    assert!(decode_bucket_key(&[1, b'a', 0]).is_err());
    assert!(decode_bucket_key(&[1, b'a']).is_err());
    assert!(decode_bucket_key(&[1, 0xC3, 0, 1]).is_err());
    assert!(decode_bucket_key(&[1, b'a', 0, 1, 9]).is_err());
    assert_eq!(
        decode_bucket_key(&bucket_key("photos")),
        Ok("photos".to_owned())
    );
    assert!(decode_node_key(&[6, 1, 2]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn byte_order_equals_tuple_order(
        left in (text(), text(), any::<u64>()),
        right in (text(), text(), any::<u64>()),
        small_versions in any::<bool>(),
    ) {
        let (mut left, mut right) = (left, right);
        if small_versions {
            left.2 %= 3;
            right.2 %= 3;
        }
        let encode = |(bucket, key, version): &(String, String, u64)| {
            object_version_key(bucket, key, VersionId(*version))
        };
        prop_assert_eq!(encode(&left).cmp(&encode(&right)), left.cmp(&right));
        prop_assert_eq!(
            decode_object_version_key(&encode(&left)),
            Ok((left.0.clone(), left.1.clone(), VersionId(left.2)))
        );
        let upload = |(bucket, key, id): &(String, String, u64)| upload_key(bucket, key, UploadId(*id));
        prop_assert_eq!(upload(&left).cmp(&upload(&right)), left.cmp(&right));
        prop_assert_eq!(
            decode_upload_key(&upload(&left)),
            Ok((left.0.clone(), left.1.clone(), UploadId(left.2)))
        );
        let current = |tuple: &(String, String, u64)| current_key(&tuple.0, &tuple.1);
        prop_assert_eq!(
            current(&left).cmp(&current(&right)),
            (&left.0, &left.1).cmp(&(&right.0, &right.1))
        );
        prop_assert_eq!(decode_current_key(&current(&left)), Ok((left.0.clone(), left.1.clone())));
        prop_assert_eq!(bucket_key(&left.0).cmp(&bucket_key(&right.0)), left.0.cmp(&right.0));
        prop_assert_eq!(access_key_key(&left.1).cmp(&access_key_key(&right.1)), left.1.cmp(&right.1));
        prop_assert_eq!(
            token_key(&left.0, &left.1, &right.0).cmp(&token_key(&right.0, &right.1, &left.0)),
            (&left.0, &left.1, &right.0).cmp(&(&right.0, &right.1, &left.0))
        );
        let garbage = |tuple: &(String, String, u64)| GarbageId { log_index: tuple.2, sequence: tuple.0.len() as u32 };
        prop_assert_eq!(garbage_key(garbage(&left)).cmp(&garbage_key(garbage(&right))), garbage(&left).cmp(&garbage(&right)));
        prop_assert_eq!(decode_garbage_key(&garbage_key(garbage(&left))), Ok(garbage(&left)));
        prop_assert_eq!(node_key(NodeId(left.2)).cmp(&node_key(NodeId(right.2))), left.2.cmp(&right.2));
        prop_assert_eq!(decode_node_key(&node_key(NodeId(left.2))), Ok(NodeId(left.2)));
    }

    #[test]
    fn random_key_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = decode_bucket_key(&bytes);
        let _ = decode_object_version_key(&bytes);
        let _ = decode_current_key(&bytes);
        let _ = decode_upload_key(&bytes);
        let _ = decode_garbage_key(&bytes);
        let _ = decode_node_key(&bytes);
    }
}
