//! Conditional request evaluation (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`) in the order of RFC 9110 §13.2.2, which is also what S3 documents:
//!
//! 1. `If-Match` present and false → 412; when present, `If-Unmodified-Since` is not consulted.
//! 2. otherwise `If-Unmodified-Since` (a valid date) and the object is newer → 412.
//! 3. `If-None-Match` present and it matches → 304 for GET/HEAD, 412 for other methods; when
//!    present, `If-Modified-Since` is not consulted.
//! 4. otherwise, for GET/HEAD, `If-Modified-Since` (a valid date) and the object is not newer → 304.
//!
//! Invalid dates are ignored (RFC 9110). `If-Match` uses the strong comparison and
//! `If-None-Match` the weak one; both accept `*` and comma-separated lists, and S3 also accepts
//! unquoted ETags, so quotes are optional here. Timestamps are whole seconds since the epoch,
//! the resolution of HTTP dates, so a sub-second `Last-Modified` must be truncated by the caller.

use crate::S3Error;
use crate::time::parse_http_date;

/// The four conditional headers as received (raw values).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConditionalHeaders<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionOutcome {
    Proceed,
    NotModified,
    PreconditionFailed,
}

impl ConditionOutcome {
    /// `Err(NotModified)` / `Err(PreconditionFailed)` for the gateway's `?`.
    pub fn into_result(self) -> Result<(), S3Error> {
        match self {
            ConditionOutcome::Proceed => Ok(()),
            ConditionOutcome::NotModified => Err(S3Error::NotModified),
            ConditionOutcome::PreconditionFailed => Err(S3Error::PreconditionFailed),
        }
    }
}

fn opaque_tag(entity_tag: &str) -> (&str, bool) {
    let trimmed = entity_tag.trim();
    let (weak, rest) = match trimmed.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let unquoted = rest
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(rest);
    (unquoted, weak)
}

/// Whether an `If-Match`/`If-None-Match` list matches the current ETag.
fn list_matches(header_value: &str, current_etag: &str, weak_comparison: bool) -> bool {
    let (current, current_weak) = opaque_tag(current_etag);
    header_value.split(',').any(|candidate| {
        let candidate = candidate.trim();
        if candidate == "*" {
            return true;
        }
        let (tag, candidate_weak) = opaque_tag(candidate);
        tag == current && (weak_comparison || (!candidate_weak && !current_weak))
    })
}

/// Evaluates the conditions against an existing object. `is_get_or_head` selects 304 versus 412
/// for a matching `If-None-Match` and whether `If-Modified-Since` applies at all.
pub fn evaluate_conditions(
    headers: &ConditionalHeaders<'_>,
    current_etag: &str,
    last_modified_unix_seconds: i64,
    is_get_or_head: bool,
) -> ConditionOutcome {
    if let Some(if_match) = headers.if_match {
        if !list_matches(if_match, current_etag, false) {
            return ConditionOutcome::PreconditionFailed;
        }
    } else if let Some(since) = headers.if_unmodified_since.and_then(parse_http_date)
        && last_modified_unix_seconds > since
    {
        return ConditionOutcome::PreconditionFailed;
    }
    if let Some(if_none_match) = headers.if_none_match {
        if list_matches(if_none_match, current_etag, true) {
            return if is_get_or_head {
                ConditionOutcome::NotModified
            } else {
                ConditionOutcome::PreconditionFailed
            };
        }
    } else if is_get_or_head
        && let Some(since) = headers.if_modified_since.and_then(parse_http_date)
        && last_modified_unix_seconds <= since
    {
        return ConditionOutcome::NotModified;
    }
    ConditionOutcome::Proceed
}

/// Evaluates the `x-amz-copy-source-if-*` conditions of CopyObject and UploadPartCopy against
/// the source. They follow the same precedence as GET's (a matching `if-none-match` hides
/// `if-modified-since`, a matching `if-match` hides `if-unmodified-since`), and every failure,
/// including the cases where a GET would answer 304, is `PreconditionFailed` (412): a copy has
/// nothing to answer "not modified" with.
pub fn evaluate_copy_source_conditions(
    headers: &ConditionalHeaders<'_>,
    source_etag: &str,
    source_last_modified_unix_seconds: i64,
) -> Result<(), S3Error> {
    match evaluate_conditions(
        headers,
        source_etag,
        source_last_modified_unix_seconds,
        true,
    ) {
        ConditionOutcome::Proceed => Ok(()),
        ConditionOutcome::NotModified | ConditionOutcome::PreconditionFailed => {
            Err(S3Error::PreconditionFailed)
        }
    }
}

/// Evaluates the conditions when the object does not exist: `If-Match` can never hold (412),
/// while `If-None-Match: *` holds (this is the conditional-create case).
pub fn evaluate_conditions_absent(headers: &ConditionalHeaders<'_>) -> ConditionOutcome {
    if headers.if_match.is_some() {
        ConditionOutcome::PreconditionFailed
    } else {
        ConditionOutcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_http_date;

    const ETAG: &str = "\"9b2cf535f27731c974343645a3985328\"";
    const MODIFIED: i64 = 1_700_000_000;

    fn evaluate(headers: ConditionalHeaders<'_>, get: bool) -> ConditionOutcome {
        evaluate_conditions(&headers, ETAG, MODIFIED, get)
    }

    #[test]
    fn precedence_table() {
        let before = format_http_date(MODIFIED - 10);
        let after = format_http_date(MODIFIED + 10);
        let exact = format_http_date(MODIFIED);
        let other = "\"0000\"";
        let other_then_current = format!("{other}, {ETAG}");
        let weak_current = format!("W/{ETAG}");
        use ConditionOutcome::*;
        let none = ConditionalHeaders::default();
        let cases: Vec<(ConditionalHeaders<'_>, bool, ConditionOutcome)> = vec![
            (none, true, Proceed),
            (
                ConditionalHeaders {
                    if_match: Some(ETAG),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_match: Some("9b2cf535f27731c974343645a3985328"),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_match: Some("*"),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_match: Some(other),
                    ..none
                },
                true,
                PreconditionFailed,
            ),
            (
                ConditionalHeaders {
                    if_match: Some(&other_then_current),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_match: Some(&weak_current),
                    ..none
                },
                true,
                PreconditionFailed,
            ),
            // If-Match true wins over a failing If-Unmodified-Since (S3 documents this case).
            (
                ConditionalHeaders {
                    if_match: Some(ETAG),
                    if_unmodified_since: Some(&before),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_unmodified_since: Some(&before),
                    ..none
                },
                true,
                PreconditionFailed,
            ),
            (
                ConditionalHeaders {
                    if_unmodified_since: Some(&exact),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_unmodified_since: Some("not a date"),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_none_match: Some(ETAG),
                    ..none
                },
                true,
                NotModified,
            ),
            (
                ConditionalHeaders {
                    if_none_match: Some(&weak_current),
                    ..none
                },
                true,
                NotModified,
            ),
            (
                ConditionalHeaders {
                    if_none_match: Some(ETAG),
                    ..none
                },
                false,
                PreconditionFailed,
            ),
            (
                ConditionalHeaders {
                    if_none_match: Some("*"),
                    ..none
                },
                false,
                PreconditionFailed,
            ),
            (
                ConditionalHeaders {
                    if_none_match: Some(other),
                    ..none
                },
                true,
                Proceed,
            ),
            // If-None-Match false (it matches) and If-Modified-Since true → 304 (S3 documents this).
            (
                ConditionalHeaders {
                    if_none_match: Some(ETAG),
                    if_modified_since: Some(&before),
                    ..none
                },
                true,
                NotModified,
            ),
            // If-None-Match present and not matching: If-Modified-Since is not consulted.
            (
                ConditionalHeaders {
                    if_none_match: Some(other),
                    if_modified_since: Some(&after),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_modified_since: Some(&after),
                    ..none
                },
                true,
                NotModified,
            ),
            (
                ConditionalHeaders {
                    if_modified_since: Some(&exact),
                    ..none
                },
                true,
                NotModified,
            ),
            (
                ConditionalHeaders {
                    if_modified_since: Some(&before),
                    ..none
                },
                true,
                Proceed,
            ),
            (
                ConditionalHeaders {
                    if_modified_since: Some(&after),
                    ..none
                },
                false,
                Proceed,
            ),
            // 412 from If-Match is decided before 304 from If-None-Match.
            (
                ConditionalHeaders {
                    if_match: Some(other),
                    if_none_match: Some(ETAG),
                    ..none
                },
                true,
                PreconditionFailed,
            ),
        ];
        for (index, (headers, get, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                evaluate(headers, get),
                expected,
                "case {index}: {headers:?}"
            );
        }
    }

    #[test]
    fn absent_object() {
        let none = ConditionalHeaders::default();
        assert_eq!(evaluate_conditions_absent(&none), ConditionOutcome::Proceed);
        assert_eq!(
            evaluate_conditions_absent(&ConditionalHeaders {
                if_match: Some("*"),
                ..none
            }),
            ConditionOutcome::PreconditionFailed
        );
        assert_eq!(
            evaluate_conditions_absent(&ConditionalHeaders {
                if_none_match: Some("*"),
                ..none
            }),
            ConditionOutcome::Proceed
        );
        assert_eq!(
            ConditionOutcome::NotModified.into_result(),
            Err(S3Error::NotModified)
        );
    }

    #[test]
    fn copy_source_conditions_fail_with_412_only() {
        let before = format_http_date(MODIFIED - 10);
        let after = format_http_date(MODIFIED + 10);
        let none = ConditionalHeaders::default();
        let copy = |headers| evaluate_copy_source_conditions(&headers, ETAG, MODIFIED);
        assert_eq!(copy(none), Ok(()));
        // Where GET answers 304, a copy refuses with 412.
        let unchanged_since_after = ConditionalHeaders {
            if_modified_since: Some(&after),
            ..none
        };
        assert_eq!(
            copy(unchanged_since_after),
            Err(S3Error::PreconditionFailed)
        );
        let same_etag = ConditionalHeaders {
            if_none_match: Some(ETAG),
            ..none
        };
        assert_eq!(copy(same_etag), Err(S3Error::PreconditionFailed));
        assert_eq!(
            copy(ConditionalHeaders {
                if_modified_since: Some(&before),
                ..none
            }),
            Ok(())
        );
        // AWS's documented pairs: if-match true wins over if-unmodified-since false, and
        // if-none-match false with if-modified-since true fails.
        assert_eq!(
            copy(ConditionalHeaders {
                if_match: Some(ETAG),
                if_unmodified_since: Some(&before),
                ..none
            }),
            Ok(())
        );
        assert_eq!(
            copy(ConditionalHeaders {
                if_none_match: Some(ETAG),
                if_modified_since: Some(&before),
                ..none
            }),
            Err(S3Error::PreconditionFailed)
        );
        assert_eq!(
            copy(ConditionalHeaders {
                if_match: Some("\"other\""),
                ..none
            }),
            Err(S3Error::PreconditionFailed)
        );
    }
}
