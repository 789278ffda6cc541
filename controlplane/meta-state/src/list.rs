//! ListObjectsV2 over the `current` index, with S3's exact semantics.
//!
//! Model: keys are ordered by their UTF-8 bytes (which for Rust `String` equals `Ord`). A page is
//! built by walking a cursor forward through the keys of one bucket that start with `prefix`:
//! - keys whose current version is a delete marker are invisible (and create no common prefix);
//! - with a delimiter, a key whose remainder after `prefix` contains it rolls up into the common
//!   prefix `prefix + remainder[..=delimiter]`, emitted once, counted as one entry, after which the
//!   cursor jumps past every key sharing it;
//! - `is_truncated` is true only when another visible entry exists after the page;
//! - the continuation token names the last entry returned (key or common prefix), so a page that
//!   ended on a common prefix resumes after all of that prefix's keys;
//! - `max_keys` is capped at [`MAX_LIST_KEYS`]; 0 yields an empty, untruncated page;
//! - `start_after` is ignored when a continuation token is given (as S3 does).
//!
//! The continuation token names a position in the key space, not in one instance, so a client that
//! merges P partitions sends the same token to every partition, merges their pages k-way, drops
//! duplicate common prefixes (one prefix can span partitions) and cuts the merged page at max-keys;
//! the last entry kept becomes the next token. A partition's own token resumes it alone, which is
//! how the client asks for a share of the page first and for more only where needed
//! (`cairn_raft::client::PagedMerge`).
//!
//! ListObjectVersions walks the same index (a key is in `current` exactly when it has a committed
//! version or delete marker) and lists every committed version of each key newest first (highest
//! commit index first), delete markers included, with the same delimiter roll-up. Its markers follow
//! S3: `key_marker` alone resumes after every version of that key, `key_marker` plus
//! `version_id_marker` resumes after that version; a common prefix that contains `key_marker` was
//! listed on an earlier page and is skipped.

use std::collections::btree_map;
use std::ops::Bound;

use crate::command::{
    ListObjectsPage, ListObjectsRequest, ListVersionsPage, ListVersionsRequest, ObjectSummary,
    VersionSummary,
};
use crate::error::MetaError;
use crate::machine::{MAX_LIST_KEYS, ObjectKey, StateMachine};
use crate::records::{ObjectRecord, TransactionState, VersionId};

/// Where a listing resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListPosition {
    /// After this key (exclusive).
    AfterKey(String),
    /// After every key that starts with this common prefix.
    AfterPrefix(String),
}

/// Leading character of a continuation token: its format version, so tokens can change later.
const TOKEN_FORMAT: char = '1';

impl ListPosition {
    /// Opaque ASCII token: format char, kind char, hex of the UTF-8 bytes.
    pub fn to_token(&self) -> String {
        let (kind, text) = match self {
            ListPosition::AfterKey(key) => ('k', key),
            ListPosition::AfterPrefix(prefix) => ('p', prefix),
        };
        let mut token = String::with_capacity(2 + text.len() * 2);
        token.push(TOKEN_FORMAT);
        token.push(kind);
        for byte in text.bytes() {
            token.push_str(&format!("{byte:02x}"));
        }
        token
    }

    pub fn from_token(token: &str) -> Result<Self, MetaError> {
        let mut chars = token.chars();
        let (Some(TOKEN_FORMAT), Some(kind)) = (chars.next(), chars.next()) else {
            return Err(MetaError::InvalidContinuationToken);
        };
        let hex = chars.as_str().as_bytes();
        if !hex.len().is_multiple_of(2) {
            return Err(MetaError::InvalidContinuationToken);
        }
        let nibble = |digit: u8| match digit {
            b'0'..=b'9' => Ok(digit - b'0'),
            b'a'..=b'f' => Ok(digit - b'a' + 10),
            _ => Err(MetaError::InvalidContinuationToken),
        };
        let bytes = hex
            .chunks_exact(2)
            .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Result<Vec<u8>, MetaError>>()?;
        let text = String::from_utf8(bytes).map_err(|_| MetaError::InvalidContinuationToken)?;
        match kind {
            'k' => Ok(ListPosition::AfterKey(text)),
            'p' if !text.is_empty() => Ok(ListPosition::AfterPrefix(text)),
            _ => Err(MetaError::InvalidContinuationToken),
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when no
/// such string exists (the prefix is empty or all `char::MAX`). Code-point order equals UTF-8 byte
/// order, so incrementing the last character that can be incremented is enough.
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if next == 0xD800 {
            // Skip the surrogate range, which no `char` occupies.
            next = 0xE000;
        }
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next key a listing looks at.
enum Cursor {
    /// This key or the first one after it.
    From(String),
    /// The first key after this one.
    After(String),
}

impl StateMachine {
    /// The `current` index from `cursor` on, starting in `bucket` (the caller stops at the
    /// bucket's or the prefix's end).
    fn current_from(
        &self,
        bucket: &str,
        cursor: Cursor,
    ) -> btree_map::Range<'_, ObjectKey, VersionId> {
        let lower = match cursor {
            Cursor::From(key) => Bound::Included((bucket.to_owned(), key)),
            Cursor::After(key) => Bound::Excluded((bucket.to_owned(), key)),
        };
        self.current.range((lower, Bound::Unbounded))
    }

    pub(crate) fn list_objects(
        &self,
        request: &ListObjectsRequest,
    ) -> Result<ListObjectsPage, MetaError> {
        if self.role.holds_everything() && !self.buckets.contains_key(&request.bucket) {
            return Err(MetaError::NoSuchBucket {
                bucket: request.bucket.clone(),
            });
        }
        let resume = match (&request.continuation_token, &request.start_after) {
            (Some(token), _) => Some(ListPosition::from_token(token)?),
            (None, Some(start_after)) => Some(ListPosition::AfterKey(start_after.clone())),
            (None, None) => None,
        };
        let max_keys = request.max_keys.min(MAX_LIST_KEYS) as usize;
        let mut page = ListObjectsPage::default();
        if max_keys == 0 {
            return Ok(page);
        }
        let bucket = &request.bucket;
        let prefix = &request.prefix;
        let delimiter = &request.delimiter;
        let prefix_start = Cursor::From(prefix.clone());
        let cursor = match resume {
            None => prefix_start,
            Some(ListPosition::AfterKey(key)) if key < *prefix => prefix_start,
            Some(ListPosition::AfterKey(key)) => Cursor::After(key),
            Some(ListPosition::AfterPrefix(common)) => match prefix_successor(&common) {
                Some(next) if next < *prefix => prefix_start,
                Some(next) => Cursor::From(next),
                None => return Ok(page),
            },
        };
        // One walk through `current` from the cursor; it seeks again only to jump past a common
        // prefix. The version records are looked up with one reused key (no allocation per key).
        let mut entries = self.current_from(bucket, cursor);
        let mut probe: (String, String, VersionId) = (bucket.clone(), String::new(), VersionId(0));
        while let Some(((found_bucket, key), version_id)) = entries.next() {
            // The walk never starts before `prefix`, so the first key without it ends the range.
            if found_bucket != bucket || !key.starts_with(prefix.as_str()) {
                break;
            }
            probe.1.clear();
            probe.1.push_str(key);
            probe.2 = *version_id;
            let record = &self.versions[&probe];
            if record.delete_marker {
                continue;
            }
            let rolled_up = (!delimiter.is_empty())
                .then(|| key[prefix.len()..].find(delimiter.as_str()))
                .flatten()
                .map(|position| key[..prefix.len() + position + delimiter.len()].to_owned());
            if page.contents.len() + page.common_prefixes.len() == max_keys {
                page.is_truncated = true;
                break;
            }
            match rolled_up {
                Some(common_prefix) => {
                    let next = prefix_successor(&common_prefix);
                    page.common_prefixes.push(common_prefix);
                    match next {
                        Some(next) => entries = self.current_from(bucket, Cursor::From(next)),
                        None => break,
                    }
                }
                None => {
                    page.contents.push(ObjectSummary {
                        key: key.clone(),
                        version_id: record.version_id,
                        null_version: record.null_version,
                        size_bytes: record.size_bytes,
                        etag: record.checksums.etag.clone(),
                        last_modified_ms: record.committed_at_ms.unwrap_or(record.created_at_ms),
                        storage_class: record.storage_class,
                        owner: record.owner.clone(),
                    });
                }
            }
        }
        page.key_count = (page.contents.len() + page.common_prefixes.len()) as u32;
        if page.is_truncated {
            // The token names the page's last entry: entries ascend, so it is the larger of the
            // last key and the last common prefix (a key never equals a common prefix).
            let last_key = page.contents.last().map(|object| &object.key);
            let last_prefix = page.common_prefixes.last();
            let last = if last_prefix > last_key {
                last_prefix.map(|prefix| ListPosition::AfterPrefix(prefix.clone()))
            } else {
                last_key.map(|key| ListPosition::AfterKey(key.clone()))
            };
            page.next_continuation_token = last.map(|position| position.to_token());
        }
        Ok(page)
    }
}

impl StateMachine {
    pub(crate) fn list_versions(
        &self,
        request: &ListVersionsRequest,
    ) -> Result<ListVersionsPage, MetaError> {
        if self.role.holds_everything() && !self.buckets.contains_key(&request.bucket) {
            return Err(MetaError::NoSuchBucket {
                bucket: request.bucket.clone(),
            });
        }
        let max_keys = request.max_keys.min(MAX_LIST_KEYS) as usize;
        let mut page = ListVersionsPage::default();
        if max_keys == 0 {
            return Ok(page);
        }
        let bucket = &request.bucket;
        let prefix = &request.prefix;
        let delimiter = &request.delimiter;
        let key_marker = request.key_marker.as_deref();
        // The version of the marker key after which listing resumes, if any.
        let mut version_marker = match (key_marker, request.version_id_marker) {
            (Some(key), Some(version_id)) if key >= prefix.as_str() => Some((key, version_id)),
            _ => None,
        };
        let cursor = match (key_marker, version_marker) {
            (Some(key), Some(_)) => Cursor::From(key.to_owned()),
            (Some(key), None) if key >= prefix.as_str() => Cursor::After(key.to_owned()),
            _ => Cursor::From(prefix.clone()),
        };
        let mut last: Option<(String, Option<VersionId>)> = None;
        // One walk through `current`, seeking again only to jump past a common prefix.
        let mut entries = self.current_from(bucket, cursor);
        'keys: while let Some(((found_bucket, key), current_version)) = entries.next() {
            if found_bucket != bucket || !key.starts_with(prefix.as_str()) {
                break;
            }
            let rolled_up = (!delimiter.is_empty())
                .then(|| key[prefix.len()..].find(delimiter.as_str()))
                .flatten()
                .map(|position| key[..prefix.len() + position + delimiter.len()].to_owned());
            if let Some(common_prefix) = rolled_up {
                let already_listed =
                    key_marker.is_some_and(|marker| marker.starts_with(common_prefix.as_str()));
                if !already_listed {
                    if page.versions.len() + page.common_prefixes.len() == max_keys {
                        page.is_truncated = true;
                        break;
                    }
                    page.common_prefixes.push(common_prefix.clone());
                    last = Some((common_prefix.clone(), None));
                }
                match prefix_successor(&common_prefix) {
                    Some(next) => entries = self.current_from(bucket, Cursor::From(next)),
                    None => break,
                }
                continue;
            }
            let mut versions: Vec<&ObjectRecord> = self
                .key_versions(bucket, key)
                .filter(|record| record.state == TransactionState::Committed)
                .collect();
            versions.sort_by_key(|record| std::cmp::Reverse(record.commit_log_index));
            let mut skip = 0;
            if let Some((marker_key, marker_version)) = version_marker.take()
                && marker_key == key
            {
                // An unknown version marker skips the whole key rather than repeating it.
                skip = versions
                    .iter()
                    .position(|record| record.s3_version_id() == marker_version)
                    .map_or(versions.len(), |position| position + 1);
            }
            for record in versions.into_iter().skip(skip) {
                if page.versions.len() + page.common_prefixes.len() == max_keys {
                    page.is_truncated = true;
                    break 'keys;
                }
                page.versions.push(VersionSummary {
                    key: key.clone(),
                    version_id: record.s3_version_id(),
                    null_version: record.null_version,
                    delete_marker: record.delete_marker,
                    is_latest: record.version_id == *current_version,
                    size_bytes: record.size_bytes,
                    etag: record.checksums.etag.clone(),
                    last_modified_ms: record.committed_at_ms.unwrap_or(record.created_at_ms),
                    storage_class: record.storage_class,
                    owner: record.owner.clone(),
                });
                last = Some((key.clone(), Some(record.s3_version_id())));
            }
        }
        if page.is_truncated
            && let Some((key, version_id)) = last
        {
            page.next_key_marker = Some(key);
            page.next_version_id_marker = version_id;
        }
        Ok(page)
    }
}
