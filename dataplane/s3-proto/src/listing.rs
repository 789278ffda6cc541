//! The listing state machine behind ListObjects (v1 and v2) and ListMultipartUploads: prefix
//! filtering, delimiter grouping into common prefixes, the page limit, and resumable positions
//! (markers and opaque continuation tokens).
//!
//! Model: the caller streams entries in ascending key order (from the metadata service's merged
//! partition ranges) into [`ListingAccumulator::push`], which answers whether to go on, to skip
//! past a whole common prefix (the caller may seek instead of reading every key under it), or to
//! stop. [`ListingAccumulator::finish`] yields the page and, when truncated, the position to
//! resume from.
//!
//! Invariants: a page holds at most `max_entries` entries (objects plus common prefixes, as
//! S3 counts them); entries are in ascending order and unique; resuming from a position that
//! was a common prefix never repeats that prefix nor returns keys under it. Continuation tokens
//! carry a format version byte (STYLE item 10) and are opaque base64 to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::S3Error;

const TOKEN_FORMAT_VERSION: u8 = 1;
const TOKEN_KIND_OBJECT: u8 = b'o';
const TOKEN_KIND_COMMON_PREFIX: u8 = b'p';

/// Where a listing resumes: strictly after `key`; when `was_common_prefix`, also after every key
/// that starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    pub key: String,
    pub was_common_prefix: bool,
}

impl ResumePoint {
    /// A client-supplied v1 `marker` or v2 `start-after`: a plain key. S3 treats a marker that
    /// ends with the delimiter as the common prefix it names, so listings resumed from a v1
    /// `NextMarker` do not repeat it.
    pub fn from_marker(marker: &str, delimiter: Option<&str>) -> Option<ResumePoint> {
        if marker.is_empty() {
            return None;
        }
        let was_common_prefix =
            delimiter.is_some_and(|delimiter| !delimiter.is_empty() && marker.ends_with(delimiter));
        Some(ResumePoint {
            key: marker.to_string(),
            was_common_prefix,
        })
    }

    pub fn to_continuation_token(&self) -> String {
        let mut bytes = Vec::with_capacity(self.key.len() + 2);
        bytes.push(TOKEN_FORMAT_VERSION);
        bytes.push(if self.was_common_prefix {
            TOKEN_KIND_COMMON_PREFIX
        } else {
            TOKEN_KIND_OBJECT
        });
        bytes.extend_from_slice(self.key.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn from_continuation_token(token: &str) -> Result<ResumePoint, S3Error> {
        let invalid =
            || S3Error::InvalidArgument("The continuation token provided is incorrect".to_string());
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        let [version, kind, key @ ..] = bytes.as_slice() else {
            return Err(invalid());
        };
        if *version != TOKEN_FORMAT_VERSION {
            return Err(invalid());
        }
        let was_common_prefix = match *kind {
            TOKEN_KIND_OBJECT => false,
            TOKEN_KIND_COMMON_PREFIX => true,
            _ => return Err(invalid()),
        };
        let key = String::from_utf8(key.to_vec()).map_err(|_| invalid())?;
        Ok(ResumePoint {
            key,
            was_common_prefix,
        })
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Continue,
    /// Every further key starting with this prefix is irrelevant: the caller may seek past it.
    SkipPrefix(String),
    /// The page is complete (or no later key can match); stop reading.
    Stop,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPageEntries<T> {
    pub objects: Vec<(String, T)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Where the next page starts, when truncated.
    pub resume: Option<ResumePoint>,
}

#[derive(Debug)]
pub struct ListingAccumulator<T> {
    prefix: String,
    delimiter: Option<String>,
    max_entries: u32,
    resume_after: Option<ResumePoint>,
    objects: Vec<(String, T)>,
    common_prefixes: Vec<String>,
    last_entry: Option<ResumePoint>,
    is_truncated: bool,
    stopped: bool,
}

impl<T> ListingAccumulator<T> {
    /// `delimiter` of `None` or `Some("")` lists flat.
    pub fn new(
        prefix: &str,
        delimiter: Option<&str>,
        max_entries: u32,
        resume_after: Option<ResumePoint>,
    ) -> Self {
        ListingAccumulator {
            prefix: prefix.to_string(),
            delimiter: delimiter
                .filter(|delimiter| !delimiter.is_empty())
                .map(str::to_string),
            max_entries,
            resume_after,
            objects: Vec::new(),
            common_prefixes: Vec::new(),
            last_entry: None,
            is_truncated: false,
            stopped: max_entries == 0,
        }
    }

    fn entry_count(&self) -> usize {
        self.objects.len() + self.common_prefixes.len()
    }

    fn is_before_resume_point(&self, key: &str) -> bool {
        match &self.resume_after {
            None => false,
            Some(point) => {
                key <= point.key.as_str()
                    || (point.was_common_prefix && key.starts_with(&point.key))
            }
        }
    }

    /// Offers the next key (ascending order is the caller's contract; a key not greater than the
    /// previous one is ignored rather than corrupting the page).
    pub fn push(&mut self, key: &str, value: T) -> PushOutcome {
        if self.stopped {
            return PushOutcome::Stop;
        }
        if !key.starts_with(&self.prefix) {
            if key > self.prefix.as_str() {
                // Past every key with the prefix.
                self.stopped = true;
                return PushOutcome::Stop;
            }
            return PushOutcome::Continue;
        }
        if self.is_before_resume_point(key)
            || self.last_entry.as_ref().is_some_and(|last| {
                key <= last.key.as_str() || (last.was_common_prefix && key.starts_with(&last.key))
            })
        {
            return PushOutcome::Continue;
        }
        let common_prefix = self.delimiter.as_ref().and_then(|delimiter| {
            key[self.prefix.len()..]
                .find(delimiter.as_str())
                .map(|position| key[..self.prefix.len() + position + delimiter.len()].to_string())
        });
        if self.entry_count() >= self.max_entries as usize {
            self.is_truncated = true;
            self.stopped = true;
            return PushOutcome::Stop;
        }
        match common_prefix {
            Some(common_prefix) => {
                self.common_prefixes.push(common_prefix.clone());
                self.last_entry = Some(ResumePoint {
                    key: common_prefix.clone(),
                    was_common_prefix: true,
                });
                PushOutcome::SkipPrefix(common_prefix)
            }
            None => {
                self.objects.push((key.to_string(), value));
                self.last_entry = Some(ResumePoint {
                    key: key.to_string(),
                    was_common_prefix: false,
                });
                PushOutcome::Continue
            }
        }
    }

    pub fn finish(self) -> ListingPageEntries<T> {
        ListingPageEntries {
            resume: if self.is_truncated {
                self.last_entry
            } else {
                None
            },
            objects: self.objects,
            common_prefixes: self.common_prefixes,
            is_truncated: self.is_truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEYS: [&str; 9] = [
        "a",
        "b/1",
        "b/2",
        "b/c/3",
        "c",
        "d/",
        "d/x",
        "e+f",
        "photos/2024/cat.jpg",
    ];

    fn list(
        prefix: &str,
        delimiter: Option<&str>,
        max: u32,
        resume: Option<ResumePoint>,
    ) -> ListingPageEntries<()> {
        let mut accumulator = ListingAccumulator::new(prefix, delimiter, max, resume);
        for key in KEYS {
            if accumulator.push(key, ()) == PushOutcome::Stop {
                break;
            }
        }
        accumulator.finish()
    }

    fn keys(page: &ListingPageEntries<()>) -> Vec<&str> {
        page.objects.iter().map(|(key, _)| key.as_str()).collect()
    }

    #[test]
    fn delimiter_grouping() {
        let page = list("", Some("/"), 1000, None);
        assert_eq!(keys(&page), ["a", "c", "e+f"]);
        assert_eq!(page.common_prefixes, ["b/", "d/", "photos/"]);
        assert!(!page.is_truncated);
        let page = list("b/", Some("/"), 1000, None);
        assert_eq!(keys(&page), ["b/1", "b/2"]);
        assert_eq!(page.common_prefixes, ["b/c/"]);
        let flat = list("b", None, 1000, None);
        assert_eq!(keys(&flat), ["b/1", "b/2", "b/c/3"]);
        assert_eq!(
            list("", Some("/"), 0, None),
            ListingPageEntries {
                objects: vec![],
                common_prefixes: vec![],
                is_truncated: false,
                resume: None
            }
        );
    }

    #[test]
    fn pagination_resumes_without_repeats() {
        let mut collected: Vec<String> = Vec::new();
        let mut resume = None;
        loop {
            let page = list("", Some("/"), 2, resume.clone());
            let mut entries: Vec<String> = keys(&page).into_iter().map(str::to_string).collect();
            entries.extend(page.common_prefixes.iter().cloned());
            entries.sort();
            collected.extend(entries);
            match page.resume {
                Some(point) => {
                    // Through the opaque token, as a client would send it back.
                    resume = Some(
                        ResumePoint::from_continuation_token(&point.to_continuation_token())
                            .unwrap(),
                    );
                }
                None => break,
            }
        }
        assert_eq!(collected, ["a", "b/", "c", "d/", "e+f", "photos/"]);
    }

    #[test]
    fn markers_and_tokens() {
        let page = list(
            "",
            Some("/"),
            1000,
            ResumePoint::from_marker("b/", Some("/")),
        );
        assert_eq!(keys(&page), ["c", "e+f"]);
        assert_eq!(page.common_prefixes, ["d/", "photos/"]);
        let page = list("", None, 1000, ResumePoint::from_marker("b/1", None));
        assert_eq!(keys(&page)[0], "b/2");
        assert!(ResumePoint::from_continuation_token("garbage!").is_err());
        assert!(ResumePoint::from_continuation_token("").is_err());
        let point = ResumePoint {
            key: "ü/x".to_string(),
            was_common_prefix: true,
        };
        assert_eq!(
            ResumePoint::from_continuation_token(&point.to_continuation_token()),
            Ok(point)
        );
    }

    proptest! {
        #[test]
        fn paging_equals_one_big_page(
            mut all_keys in proptest::collection::btree_set("[ab/]{1,6}", 0..40),
            page_size in 1u32..7,
            use_delimiter in any::<bool>(),
        ) {
            let all_keys: Vec<String> = std::mem::take(&mut all_keys).into_iter().collect();
            let delimiter = use_delimiter.then_some("/");
            let run = |max: u32, resume: Option<ResumePoint>| {
                let mut accumulator = ListingAccumulator::new("a", delimiter, max, resume);
                for key in &all_keys {
                    if accumulator.push(key, ()) == PushOutcome::Stop {
                        break;
                    }
                }
                accumulator.finish()
            };
            let whole = run(u32::MAX, None);
            prop_assert!(!whole.is_truncated);
            let mut paged_objects = Vec::new();
            let mut paged_prefixes = Vec::new();
            let mut resume = None;
            for _ in 0..100 {
                let page = run(page_size, resume.clone());
                prop_assert!(page.objects.len() + page.common_prefixes.len() <= page_size as usize);
                paged_objects.extend(page.objects.iter().map(|(key, _)| key.clone()));
                paged_prefixes.extend(page.common_prefixes.iter().cloned());
                if !page.is_truncated { break; }
                resume = page.resume;
            }
            let whole_objects: Vec<String> = whole.objects.iter().map(|(key, _)| key.clone()).collect();
            prop_assert_eq!(paged_objects, whole_objects);
            prop_assert_eq!(paged_prefixes, whole.common_prefixes);
        }
    }
}
