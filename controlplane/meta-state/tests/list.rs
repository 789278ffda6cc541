//! ListObjectsV2 semantics: ordering, prefix, delimiter, start-after, continuation, max-keys.

mod common;

use std::collections::BTreeSet;

use cairn_meta_state::*;
use common::*;
use proptest::prelude::*;

use VersioningState::{Enabled, Unversioned};

fn harness_with(keys: &[&str]) -> Harness {
    let mut harness = Harness::with_bucket();
    for key in keys {
        harness.put(key, 1, Unversioned);
    }
    harness
}

fn request(prefix: &str, delimiter: &str, max_keys: u32) -> ListObjectsRequest {
    ListObjectsRequest {
        bucket: BUCKET.to_owned(),
        prefix: prefix.to_owned(),
        delimiter: delimiter.to_owned(),
        start_after: None,
        continuation_token: None,
        max_keys,
    }
}

fn list(state: &StateMachine, request: &ListObjectsRequest) -> ListObjectsPage {
    match state.query(&Query::ListObjects(request.clone())) {
        Ok(Response::ObjectList(page)) => page,
        other => panic!("unexpected {other:?}"),
    }
}

fn keys(page: &ListObjectsPage) -> Vec<&str> {
    page.contents
        .iter()
        .map(|entry| entry.key.as_str())
        .collect()
}

#[test]
fn keys_are_ordered_by_utf8_bytes() {
    let harness = harness_with(&["z", "é", "a/b", "B", "a", "\u{10FFFF}", "~"]);
    let page = list(&harness.state, &request("", "", 1000));
    assert_eq!(
        keys(&page),
        vec!["B", "a", "a/b", "z", "~", "é", "\u{10FFFF}"]
    );
    assert_eq!(page.key_count, 7);
    assert!(!page.is_truncated);
    assert_eq!(page.next_continuation_token, None);
    let entry = &page.contents[0];
    assert_eq!(entry.size_bytes, 1);
    assert_eq!(entry.etag, "9e107d9d372bb6826bd81d3542a419d6");
    assert_eq!(entry.last_modified_ms, 20_000);
    assert_eq!(entry.owner, OWNER);
}

#[test]
fn max_keys_zero_returns_an_empty_untruncated_page() {
    let harness = harness_with(&["a", "b"]);
    assert_eq!(
        list(&harness.state, &request("", "", 0)),
        ListObjectsPage::default()
    );
}

#[test]
fn max_keys_is_capped_at_one_thousand() {
    let mut harness = Harness::with_bucket();
    for index in 0..1001 {
        harness.state.apply(
            prepare(BUCKET, &format!("k{index:04}"), "", 0, Unversioned),
            10 + 2 * index,
        );
        harness.state.apply(
            commit(
                BUCKET,
                &format!("k{index:04}"),
                VersionId(10 + 2 * index),
                "",
                0,
            ),
            11 + 2 * index,
        );
    }
    let page = list(&harness.state, &request("", "", 5000));
    assert_eq!(page.key_count, 1000);
    assert!(page.is_truncated);
    assert_eq!(
        page.next_continuation_token,
        Some(ListPosition::AfterKey("k0999".to_owned()).to_token())
    );
}

#[test]
fn pagination_without_delimiter() {
    let harness = harness_with(&["a", "b", "c", "d", "e"]);
    let mut request = request("", "", 2);
    let first = list(&harness.state, &request);
    assert_eq!(keys(&first), vec!["a", "b"]);
    assert!(first.is_truncated);
    assert_eq!(first.next_continuation_token.as_deref(), Some("1k62"));
    request.continuation_token = first.next_continuation_token;
    let second = list(&harness.state, &request);
    assert_eq!(keys(&second), vec!["c", "d"]);
    assert!(second.is_truncated);
    request.continuation_token = second.next_continuation_token;
    let third = list(&harness.state, &request);
    assert_eq!(keys(&third), vec!["e"]);
    assert!(!third.is_truncated);
    assert_eq!(third.next_continuation_token, None);
    // A page that ends exactly at the last key is not truncated.
    let exact = list(&harness.state, &self::request("", "", 5));
    assert!(!exact.is_truncated);
}

const TREE: &[&str] = &[
    "photos",
    "photos/2023/a.jpg",
    "photos/2023/b.jpg",
    "photos/2024/c.jpg",
    "photos/x.jpg",
    "photosynthesis",
    "videos/v.mp4",
];

#[test]
fn delimiter_with_prefix_rolls_up_common_prefixes() {
    let harness = harness_with(TREE);
    let page = list(&harness.state, &request("photos/", "/", 1000));
    assert_eq!(keys(&page), vec!["photos/x.jpg"]);
    assert_eq!(page.common_prefixes, vec!["photos/2023/", "photos/2024/"]);
    assert_eq!(page.key_count, 3);
    assert!(!page.is_truncated);

    let page = list(&harness.state, &request("", "/", 1000));
    assert_eq!(keys(&page), vec!["photos", "photosynthesis"]);
    assert_eq!(page.common_prefixes, vec!["photos/", "videos/"]);

    // A prefix that is not a "directory".
    let page = list(&harness.state, &request("photo", "/", 1000));
    assert_eq!(keys(&page), vec!["photos", "photosynthesis"]);
    assert_eq!(page.common_prefixes, vec!["photos/"]);

    // A multi-character delimiter.
    let page = list(&harness.state, &request("", "os/", 1000));
    assert_eq!(page.common_prefixes, vec!["photos/", "videos/"]);
}

#[test]
fn continuation_across_common_prefixes() {
    let harness = harness_with(TREE);
    let mut request = request("photos/", "/", 1);
    let mut pages = Vec::new();
    loop {
        let page = list(&harness.state, &request);
        pages.push((
            keys(&page).join(","),
            page.common_prefixes.join(","),
            page.is_truncated,
        ));
        match page.next_continuation_token {
            Some(token) => request.continuation_token = Some(token),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![
            (String::new(), "photos/2023/".to_owned(), true),
            (String::new(), "photos/2024/".to_owned(), true),
            ("photos/x.jpg".to_owned(), String::new(), false),
        ]
    );
    // The token after a common prefix names the prefix, not its last key.
    let first = list(&harness.state, &self::request("photos/", "/", 1));
    assert_eq!(
        first.next_continuation_token,
        Some(ListPosition::AfterPrefix("photos/2023/".to_owned()).to_token())
    );
}

#[test]
fn start_after_semantics() {
    let harness = harness_with(TREE);
    let mut request = request("photos/", "/", 1000);
    // Inside a common prefix: the prefix still appears because b.jpg sorts after start-after.
    request.start_after = Some("photos/2023/a.jpg".to_owned());
    let page = list(&harness.state, &request);
    assert_eq!(page.common_prefixes, vec!["photos/2023/", "photos/2024/"]);
    // Before the prefix: the whole prefix is listed.
    request.start_after = Some("a".to_owned());
    assert_eq!(list(&harness.state, &request).key_count, 3);
    // After every key of the prefix: nothing.
    request.start_after = Some("photos/zzz".to_owned());
    assert_eq!(list(&harness.state, &request), ListObjectsPage::default());
    // A continuation token takes precedence over start-after.
    request.start_after = Some("photos/zzz".to_owned());
    request.continuation_token =
        Some(ListPosition::AfterPrefix("photos/2023/".to_owned()).to_token());
    let page = list(&harness.state, &request);
    assert_eq!(page.common_prefixes, vec!["photos/2024/"]);
    assert_eq!(keys(&page), vec!["photos/x.jpg"]);
}

#[test]
fn delete_markers_are_invisible_and_do_not_truncate() {
    let mut harness = Harness::with_bucket();
    for key in ["a", "b", "c", "dir/x"] {
        harness.put(key, 1, Enabled);
    }
    harness.ok(delete("b", VersionSelector::Current, Enabled));
    harness.ok(delete("c", VersionSelector::Current, Enabled));
    harness.ok(delete("dir/x", VersionSelector::Current, Enabled));
    let first = list(&harness.state, &request("", "/", 1));
    assert_eq!(keys(&first), vec!["a"]);
    // Only delete markers follow "a": the page is complete.
    assert!(!first.is_truncated);
    assert!(first.common_prefixes.is_empty());
    harness.put("d", 1, Enabled);
    let first = list(&harness.state, &request("", "/", 1));
    assert!(first.is_truncated);
    let mut next = request("", "/", 1);
    next.continuation_token = first.next_continuation_token;
    assert_eq!(keys(&list(&harness.state, &next)), vec!["d"]);
}

#[test]
fn invalid_continuation_tokens_are_refused() {
    let harness = harness_with(&["a"]);
    for token in ["", "1", "2k61", "1x61", "1k6", "1kzz", "1kff", "1p"] {
        let mut request = request("", "", 10);
        request.continuation_token = Some(token.to_owned());
        assert_eq!(
            harness.state.query(&Query::ListObjects(request)),
            Err(MetaError::InvalidContinuationToken),
            "{token:?}"
        );
    }
}

#[test]
fn prefix_successor_is_the_least_upper_bound() {
    assert_eq!(prefix_successor("a/"), Some("a0".to_owned()));
    assert_eq!(prefix_successor("a\u{D7FF}"), Some("a\u{E000}".to_owned()));
    assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".to_owned()));
    assert_eq!(prefix_successor("\u{10FFFF}"), None);
    assert_eq!(prefix_successor(""), None);
}

/// The reference: every entry of the listing at once, from a plain scan.
fn reference_listing(
    live_keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: &str,
    start_after: &str,
) -> Vec<(bool, String)> {
    let mut entries = BTreeSet::new();
    for key in live_keys {
        if !key.starts_with(prefix) || key.as_str() <= start_after {
            continue;
        }
        let rest = &key[prefix.len()..];
        match (!delimiter.is_empty())
            .then(|| rest.find(delimiter))
            .flatten()
        {
            Some(position) => entries.insert((
                key[..prefix.len() + position + delimiter.len()].to_owned(),
                true,
            )),
            None => entries.insert((key.clone(), false)),
        };
    }
    entries
        .into_iter()
        .map(|(text, is_prefix)| (is_prefix, text))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Paging through any key set with any prefix, delimiter, start-after and page size yields the
    /// reference listing in order, in pages of at most max-keys, truncated exactly when more follow.
    #[test]
    fn pages_concatenate_to_the_reference_listing(
        written in proptest::collection::vec(("[ab/é]{1,4}", any::<bool>()), 0..24),
        prefix in "[ab/]{0,2}",
        delimiter in prop_oneof![Just(String::new()), Just("/".to_owned()), Just("b/".to_owned())],
        start_after in "[ab/]{0,3}",
        max_keys in 1u32..5,
    ) {
        let mut state = StateMachine::new(Role::Combined);
        let apply = |state: &mut StateMachine, command: Command| {
            let log_index = state.last_applied_index() + 1;
            let output = state.apply(command, log_index);
            assert!(output.is_ok(), "{output:?}");
        };
        apply(&mut state, create_bucket(BUCKET, OWNER));
        let mut live_keys = BTreeSet::new();
        for (key, deleted) in &written {
            apply(&mut state, prepare(BUCKET, key, "", 1, Enabled));
            let version_id = VersionId(state.last_applied_index());
            apply(&mut state, commit(BUCKET, key, version_id, "", 1));
            live_keys.insert(key.clone());
            if *deleted {
                apply(&mut state, delete(key, VersionSelector::Current, Enabled));
                live_keys.remove(key);
            }
        }
        let expected = reference_listing(&live_keys, &prefix, &delimiter, &start_after);
        let mut request = request(&prefix, &delimiter, max_keys);
        request.start_after = Some(start_after.clone());
        let mut listed = Vec::new();
        loop {
            let page = list(&state, &request);
            let count = page.contents.len() + page.common_prefixes.len();
            prop_assert!(count <= max_keys as usize);
            prop_assert_eq!(page.key_count as usize, count);
            let mut entries: Vec<(bool, String)> = page
                .contents
                .iter()
                .map(|entry| (false, entry.key.clone()))
                .chain(page.common_prefixes.iter().map(|prefix| (true, prefix.clone())))
                .collect();
            entries.sort_by(|left, right| left.1.cmp(&right.1));
            listed.extend(entries);
            prop_assert_eq!(page.is_truncated, page.next_continuation_token.is_some());
            if page.is_truncated {
                prop_assert_eq!(count, max_keys as usize);
                prop_assert!(listed.len() < expected.len());
            }
            match page.next_continuation_token {
                Some(token) => request.continuation_token = Some(token),
                None => break,
            }
        }
        prop_assert_eq!(listed, expected);
    }
}

fn list_versions(state: &StateMachine, request: &ListVersionsRequest) -> ListVersionsPage {
    match state.query(&Query::ListVersions(request.clone())) {
        Ok(Response::VersionList(page)) => page,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn list_versions_newest_first_with_markers_and_prefixes() {
    let mut harness = Harness::with_bucket();
    let a1 = harness.put("a", 1, Enabled).version_id;
    let a2 = harness.put("a", 2, Enabled).version_id;
    let Response::Deleted {
        delete_marker: Some(marker),
        ..
    } = harness.ok(delete("a", VersionSelector::Current, Enabled))
    else {
        panic!("a marker")
    };
    let b1 = harness.put("b", 4, Enabled).version_id;
    harness.put("dir/x", 5, Enabled);
    // A PREPARING version is not listed.
    harness.ok(prepare(BUCKET, "b", "pending", 9, Enabled));

    let full = list_versions(
        &harness.state,
        &ListVersionsRequest {
            bucket: BUCKET.to_owned(),
            delimiter: "/".to_owned(),
            max_keys: 1000,
            ..Default::default()
        },
    );
    let summary: Vec<(&str, VersionId, bool, bool)> = full
        .versions
        .iter()
        .map(|entry| {
            (
                entry.key.as_str(),
                entry.version_id,
                entry.is_latest,
                entry.delete_marker,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", marker.version_id, true, true),
            ("a", a2, false, false),
            ("a", a1, false, false),
            ("b", b1, true, false),
        ]
    );
    assert_eq!(full.common_prefixes, vec!["dir/"]);
    assert!(!full.is_truncated);

    // Pages of two: markers name the last version listed, then the common prefix.
    let mut request = ListVersionsRequest {
        bucket: BUCKET.to_owned(),
        delimiter: "/".to_owned(),
        max_keys: 2,
        ..Default::default()
    };
    let first = list_versions(&harness.state, &request);
    assert_eq!(first.versions.len(), 2);
    assert!(first.is_truncated);
    assert_eq!(first.next_key_marker.as_deref(), Some("a"));
    assert_eq!(first.next_version_id_marker, Some(a2));
    request.key_marker = first.next_key_marker;
    request.version_id_marker = first.next_version_id_marker;
    let second = list_versions(&harness.state, &request);
    let ids: Vec<VersionId> = second
        .versions
        .iter()
        .map(|entry| entry.version_id)
        .collect();
    assert_eq!(ids, vec![a1, b1]);
    assert!(second.is_truncated);
    request.key_marker = second.next_key_marker;
    request.version_id_marker = second.next_version_id_marker;
    let third = list_versions(&harness.state, &request);
    assert!(third.versions.is_empty());
    assert_eq!(third.common_prefixes, vec!["dir/"]);
    assert!(!third.is_truncated);

    // A key marker alone skips every version of that key.
    request.key_marker = Some("a".to_owned());
    request.version_id_marker = None;
    request.max_keys = 1000;
    let after_a = list_versions(&harness.state, &request);
    assert_eq!(after_a.versions.len(), 1);
    assert_eq!(after_a.versions[0].key, "b");
    // A marker inside a common prefix means the prefix was already listed.
    request.key_marker = Some("dir/x".to_owned());
    assert_eq!(
        list_versions(&harness.state, &request),
        ListVersionsPage::default()
    );

    // Every page size concatenates to the full listing.
    for max_keys in 1..=6 {
        let mut request = ListVersionsRequest {
            bucket: BUCKET.to_owned(),
            delimiter: "/".to_owned(),
            max_keys,
            ..Default::default()
        };
        let mut versions = Vec::new();
        let mut prefixes = Vec::new();
        loop {
            let page = list_versions(&harness.state, &request);
            assert!(page.versions.len() + page.common_prefixes.len() <= max_keys as usize);
            versions.extend(page.versions);
            prefixes.extend(page.common_prefixes);
            if !page.is_truncated {
                break;
            }
            request.key_marker = page.next_key_marker;
            request.version_id_marker = page.next_version_id_marker;
        }
        assert_eq!(versions, full.versions, "max_keys {max_keys}");
        assert_eq!(prefixes, full.common_prefixes, "max_keys {max_keys}");
    }
}

/// A version (key, Some((version id, delete marker, is latest))) or a common prefix (prefix, None).
type VersionEntry = (String, Option<(VersionId, bool, bool)>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Paging ListObjectVersions with any page size yields, in order, every committed version and
    /// delete marker of every key newest first, with the same delimiter roll-up as ListObjectsV2.
    #[test]
    fn version_pages_concatenate_to_the_reference_listing(
        operations in proptest::collection::vec(("[ab/]{1,3}", 0u8..4, any::<prop::sample::Index>()), 0..30),
        prefix in "[ab/]{0,2}",
        delimiter in prop_oneof![Just(String::new()), Just("/".to_owned())],
        max_keys in 1u32..5,
    ) {
        let mut state = StateMachine::new(Role::Combined);
        let apply = |state: &mut StateMachine, command: Command| {
            let log_index = state.last_applied_index() + 1;
            state.apply(command, log_index)
        };
        apply(&mut state, create_bucket(BUCKET, OWNER));
        // The model: each key's committed versions and markers, oldest first.
        let mut model: std::collections::BTreeMap<String, Vec<(VersionId, bool)>> = Default::default();
        for (key, kind, pick) in &operations {
            match kind {
                0 | 1 => {
                    apply(&mut state, prepare(BUCKET, key, "", 1, Enabled));
                    let version_id = VersionId(state.last_applied_index());
                    apply(&mut state, commit(BUCKET, key, version_id, "", 1));
                    model.entry(key.clone()).or_default().push((version_id, false));
                }
                2 => {
                    let output = apply(&mut state, delete(key, VersionSelector::Current, Enabled));
                    let Ok(Response::Deleted { delete_marker: Some(marker), .. }) = output.result else {
                        panic!("a marker: {output:?}")
                    };
                    model.entry(key.clone()).or_default().push((marker.version_id, true));
                }
                _ => {
                    let Some(versions) = model.get_mut(key) else { continue };
                    let (version_id, _) = versions.remove(pick.index(versions.len()));
                    let output = apply(&mut state, delete(key, VersionSelector::Id(version_id), Enabled));
                    prop_assert!(output.is_ok());
                    if versions.is_empty() {
                        model.remove(key);
                    }
                }
            }
        }
        let mut expected: Vec<VersionEntry> = Vec::new();
        for (key, versions) in &model {
            if !key.starts_with(&prefix) {
                continue;
            }
            let rolled = (!delimiter.is_empty())
                .then(|| key[prefix.len()..].find(&delimiter))
                .flatten()
                .map(|position| key[..prefix.len() + position + delimiter.len()].to_owned());
            match rolled {
                Some(common) => {
                    if expected.last().map(|(text, _)| text) != Some(&common) {
                        expected.push((common, None));
                    }
                }
                None => {
                    for (position, (version_id, marker)) in versions.iter().rev().enumerate() {
                        expected.push((key.clone(), Some((*version_id, *marker, position == 0))));
                    }
                }
            }
        }
        let mut request = ListVersionsRequest {
            bucket: BUCKET.to_owned(),
            prefix: prefix.clone(),
            delimiter: delimiter.clone(),
            max_keys,
            ..Default::default()
        };
        let mut listed = Vec::new();
        loop {
            let page = list_versions(&state, &request);
            prop_assert!(page.versions.len() + page.common_prefixes.len() <= max_keys as usize);
            let mut entries: Vec<VersionEntry> = page
                .versions
                .iter()
                .map(|entry| {
                    (entry.key.clone(), Some((entry.version_id, entry.delete_marker, entry.is_latest)))
                })
                .chain(page.common_prefixes.iter().map(|common| (common.clone(), None)))
                .collect();
            // Within a page, versions and prefixes interleave by key; the sort is stable, so a
            // key's versions keep their newest-first order.
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            listed.extend(entries);
            if !page.is_truncated {
                prop_assert!(page.next_key_marker.is_none());
                break;
            }
            prop_assert!(listed.len() < expected.len());
            request.key_marker = page.next_key_marker;
            request.version_id_marker = page.next_version_id_marker;
        }
        prop_assert_eq!(listed, expected);
    }
}
