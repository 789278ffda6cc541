//! Object lock (WORM): the attribute formats and the rules the state machine enforces.
//!
//! Model: a version is protected by its `retention` attribute (mode and retain-until time) and its
//! `legal-hold` attribute; a bucket's `object-lock` attribute says the bucket was created with
//! object lock and holds its default retention (the gateway applies the default to new versions).
//! The state machine refuses, whatever the gateway asks, to remove a protected version (DeleteObject
//! by version id, the replacement of a null version, any other path that discards a committed
//! version) and to weaken a retention: COMPLIANCE can only be extended, GOVERNANCE can be shortened
//! or removed only by a command wrapped in [`crate::Command::BypassGovernanceRetention`] (the
//! gateway wraps it after checking the caller's `x-amz-bypass-governance-retention`). Time is the
//! command's `now_ms`, as everywhere in the state machine.
//!
//! Formats (all integers big endian), version byte first so they can evolve:
//! - `retention`: `1, mode (1 GOVERNANCE, 2 COMPLIANCE), retain_until_ms u64`
//! - `legal-hold`: `1, status (0 OFF, 1 ON)`
//! - bucket `object-lock`: `1, default mode (0 none, 1 GOVERNANCE, 2 COMPLIANCE), unit (0 days,
//!   1 years), period u32`

use std::collections::BTreeMap;

/// Object attribute: retention mode and date.
pub const RETENTION_ATTRIBUTE: &str = "retention";
/// Object attribute: legal hold status.
pub const LEGAL_HOLD_ATTRIBUTE: &str = "legal-hold";
/// Bucket attribute: object lock enabled, with its default retention.
pub const OBJECT_LOCK_ATTRIBUTE: &str = "object-lock";

const FORMAT_VERSION: u8 = 1;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RetentionMode {
    Governance,
    Compliance,
}

impl RetentionMode {
    fn tag(self) -> u8 {
        match self {
            RetentionMode::Governance => 1,
            RetentionMode::Compliance => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(RetentionMode::Governance),
            2 => Some(RetentionMode::Compliance),
            _ => None,
        }
    }

    /// S3's name (`GOVERNANCE`, `COMPLIANCE`).
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// A version's retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: RetentionMode,
    pub retain_until_ms: u64,
}

impl Retention {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT_VERSION, self.mode.tag()];
        bytes.extend_from_slice(&self.retain_until_ms.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 10 || bytes[0] != FORMAT_VERSION {
            return None;
        }
        Some(Retention {
            mode: RetentionMode::from_tag(bytes[1])?,
            retain_until_ms: u64::from_be_bytes(bytes[2..10].try_into().ok()?),
        })
    }
}

/// Encodes a legal hold status.
pub fn encode_legal_hold(on: bool) -> Vec<u8> {
    vec![FORMAT_VERSION, u8::from(on)]
}

/// Decodes a legal hold status (`None`: malformed).
pub fn decode_legal_hold(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [FORMAT_VERSION, 0] => Some(false),
        [FORMAT_VERSION, 1] => Some(true),
        _ => None,
    }
}

/// The period of a default retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

/// A bucket's object lock configuration (object lock is enabled when the attribute exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ObjectLockConfiguration {
    pub default_retention: Option<(RetentionMode, RetentionPeriod)>,
}

impl ObjectLockConfiguration {
    pub fn encode(&self) -> Vec<u8> {
        let (mode, unit, period) = match self.default_retention {
            None => (0, 0, 0),
            Some((mode, RetentionPeriod::Days(days))) => (mode.tag(), 0, days),
            Some((mode, RetentionPeriod::Years(years))) => (mode.tag(), 1, years),
        };
        let mut bytes = vec![FORMAT_VERSION, mode, unit];
        bytes.extend_from_slice(&period.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 7 || bytes[0] != FORMAT_VERSION {
            return None;
        }
        let period = u32::from_be_bytes(bytes[3..7].try_into().ok()?);
        let default_retention = match bytes[1] {
            0 => None,
            tag => Some((
                RetentionMode::from_tag(tag)?,
                match bytes[2] {
                    0 => RetentionPeriod::Days(period),
                    1 => RetentionPeriod::Years(period),
                    _ => return None,
                },
            )),
        };
        Some(ObjectLockConfiguration { default_retention })
    }

    /// The retention a version created at `now_ms` gets by default (S3 counts a year as 365 days).
    pub fn default_retention_at(&self, now_ms: u64) -> Option<Retention> {
        let (mode, period) = self.default_retention?;
        let days = match period {
            RetentionPeriod::Days(days) => u64::from(days),
            RetentionPeriod::Years(years) => u64::from(years) * 365,
        };
        Some(Retention {
            mode,
            retain_until_ms: now_ms.saturating_add(days.saturating_mul(DAY_MS)),
        })
    }
}

/// Why a version cannot be removed or its protection weakened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockReason {
    LegalHold,
    Retention(RetentionMode),
}

fn retention_of(attributes: &BTreeMap<String, Vec<u8>>) -> Option<Retention> {
    // A malformed retention protects as COMPLIANCE forever rather than not at all.
    attributes.get(RETENTION_ATTRIBUTE).map(|bytes| {
        Retention::decode(bytes).unwrap_or(Retention {
            mode: RetentionMode::Compliance,
            retain_until_ms: u64::MAX,
        })
    })
}

/// Whether a version with `attributes` may be removed at `now_ms`.
pub fn removal_blocked(
    attributes: &BTreeMap<String, Vec<u8>>,
    now_ms: u64,
    bypass_governance: bool,
) -> Option<LockReason> {
    if let Some(bytes) = attributes.get(LEGAL_HOLD_ATTRIBUTE)
        && decode_legal_hold(bytes) != Some(false)
    {
        return Some(LockReason::LegalHold);
    }
    let retention = retention_of(attributes)?;
    if retention.retain_until_ms <= now_ms {
        return None;
    }
    match retention.mode {
        RetentionMode::Governance if bypass_governance => None,
        mode => Some(LockReason::Retention(mode)),
    }
}

/// Whether changing a version's `name` attribute to `value` is allowed at `now_ms`: retention can
/// always be set or extended; shortening, removing or downgrading an active one needs the
/// governance bypass and is never allowed for COMPLIANCE. Legal holds and other attributes are
/// free to change (a legal hold is removable by permission, not by time).
pub fn attribute_change_blocked(
    attributes: &BTreeMap<String, Vec<u8>>,
    name: &str,
    value: Option<&[u8]>,
    now_ms: u64,
    bypass_governance: bool,
) -> Option<LockReason> {
    if name != RETENTION_ATTRIBUTE {
        return None;
    }
    let current = retention_of(attributes)?;
    if current.retain_until_ms <= now_ms {
        return None;
    }
    let new = match value {
        None => None,
        Some(bytes) => Some(Retention::decode(bytes)?),
    };
    let weakens = match new {
        None => true,
        Some(new) => new.retain_until_ms < current.retain_until_ms || new.mode < current.mode,
    };
    if !weakens {
        return None;
    }
    match current.mode {
        RetentionMode::Governance if bypass_governance => None,
        mode => Some(LockReason::Retention(mode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(retention: Option<Retention>, hold: Option<bool>) -> BTreeMap<String, Vec<u8>> {
        let mut attributes = BTreeMap::new();
        if let Some(retention) = retention {
            attributes.insert(RETENTION_ATTRIBUTE.to_owned(), retention.encode());
        }
        if let Some(hold) = hold {
            attributes.insert(LEGAL_HOLD_ATTRIBUTE.to_owned(), encode_legal_hold(hold));
        }
        attributes
    }

    const GOVERNANCE: Retention = Retention {
        mode: RetentionMode::Governance,
        retain_until_ms: 1_000,
    };
    const COMPLIANCE: Retention = Retention {
        mode: RetentionMode::Compliance,
        retain_until_ms: 1_000,
    };

    #[test]
    fn formats_round_trip() {
        assert_eq!(Retention::decode(&COMPLIANCE.encode()), Some(COMPLIANCE));
        assert_eq!(hex(&COMPLIANCE.encode()), "010200000000000003e8");
        assert_eq!(decode_legal_hold(&encode_legal_hold(true)), Some(true));
        let configuration = ObjectLockConfiguration {
            default_retention: Some((RetentionMode::Governance, RetentionPeriod::Years(2))),
        };
        assert_eq!(hex(&configuration.encode()), "01010100000002");
        assert_eq!(
            ObjectLockConfiguration::decode(&configuration.encode()),
            Some(configuration)
        );
        assert_eq!(
            configuration
                .default_retention_at(5)
                .unwrap()
                .retain_until_ms,
            5 + 730 * DAY_MS
        );
        assert_eq!(
            ObjectLockConfiguration::decode(&[1, 3, 0, 0, 0, 0, 1]),
            None
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn removal_rules() {
        assert_eq!(removal_blocked(&with(None, None), 0, false), None);
        assert_eq!(
            removal_blocked(&with(Some(GOVERNANCE), None), 999, false),
            Some(LockReason::Retention(RetentionMode::Governance))
        );
        assert_eq!(
            removal_blocked(&with(Some(GOVERNANCE), None), 999, true),
            None
        );
        assert_eq!(
            removal_blocked(&with(Some(COMPLIANCE), None), 999, true),
            Some(LockReason::Retention(RetentionMode::Compliance))
        );
        // Expired retention no longer protects.
        assert_eq!(
            removal_blocked(&with(Some(COMPLIANCE), None), 1_000, false),
            None
        );
        // A legal hold protects regardless of retention and bypass.
        assert_eq!(
            removal_blocked(&with(None, Some(true)), 0, true),
            Some(LockReason::LegalHold)
        );
        assert_eq!(removal_blocked(&with(None, Some(false)), 0, false), None);
    }

    #[test]
    fn retention_can_be_extended_but_not_weakened() {
        let compliance = with(Some(COMPLIANCE), None);
        let longer = Retention {
            retain_until_ms: 2_000,
            ..COMPLIANCE
        };
        let shorter = Retention {
            retain_until_ms: 500,
            ..COMPLIANCE
        };
        let name = RETENTION_ATTRIBUTE;
        assert_eq!(
            attribute_change_blocked(&compliance, name, Some(&longer.encode()), 10, false),
            None
        );
        for value in [Some(shorter.encode()), None, Some(GOVERNANCE.encode())] {
            assert_eq!(
                attribute_change_blocked(&compliance, name, value.as_deref(), 10, true),
                Some(LockReason::Retention(RetentionMode::Compliance)),
            );
        }
        let governance = with(Some(GOVERNANCE), None);
        assert_eq!(
            attribute_change_blocked(&governance, name, None, 10, false),
            Some(LockReason::Retention(RetentionMode::Governance))
        );
        assert_eq!(
            attribute_change_blocked(&governance, name, None, 10, true),
            None
        );
        // GOVERNANCE to COMPLIANCE is a strengthening.
        assert_eq!(
            attribute_change_blocked(&governance, name, Some(&COMPLIANCE.encode()), 10, false),
            None
        );
        // After expiry anything goes; legal holds are not time-bound.
        assert_eq!(
            attribute_change_blocked(&compliance, name, None, 1_000, false),
            None
        );
        assert_eq!(
            attribute_change_blocked(
                &with(None, Some(true)),
                LEGAL_HOLD_ATTRIBUTE,
                None,
                0,
                false
            ),
            None
        );
    }
}
