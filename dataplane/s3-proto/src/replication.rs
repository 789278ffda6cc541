//! Replication: the `ReplicationConfiguration` document of Put/GetBucketReplication, its
//! validation, and the rule matching the gateway (which events to queue) and the replicator
//! (where to copy them) share.
//!
//! Model (S3's): a configuration has a `Role` (kept and returned; Cairn has no IAM roles, the
//! replicator acts as the source bucket's owner) and 1–1000 rules. A rule has an optional unique
//! `ID` (at most 255 characters; one is generated when absent, as S3 does), `Status`
//! `Enabled`/`Disabled` and a `Destination` whose `Bucket` is `arn:aws:s3:::NAME`. Two schema
//! versions: the original one selects keys with a rule-level `Prefix` and replicates delete
//! markers; the current one has a `Filter` (nothing, a `Prefix`, or an `And` with a `Prefix`),
//! needs a `Priority` and a `DeleteMarkerReplication` status per rule, and the highest priority
//! rule matching a key wins per destination bucket.
//!
//! Not implemented (answered `501 NotImplemented` rather than accepted and never honoured): tag
//! filters, `ExistingObjectReplication`, `SourceSelectionCriteria`, S3 RTC (`ReplicationTime`,
//! `Metrics`), `EncryptionConfiguration`, `AccessControlTranslation`, a destination storage
//! class other than `STANDARD`.
//!
//! Stored form: the bucket attribute holds the canonical document
//! [`replication_configuration_xml`] renders; [`decode_stored_replication`] parses it back.

use crate::S3Error;
use crate::xml::{Element, XmlWriter, parse_document};

pub const REPLICATION_MAX_RULES: usize = 1000;
pub const REPLICATION_BODY_LIMIT_BYTES: usize = 128 * 1024;
pub const REPLICATION_RULE_ID_MAX_CHARS: usize = 255;
const BUCKET_ARN_PREFIX: &str = "arn:aws:s3:::";

/// How a rule selects keys, kept in the shape the client sent so GET returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationFilter {
    /// The rule-level `<Prefix>` of the original schema.
    LegacyPrefix(String),
    /// `<Filter/>`: every key.
    All,
    Prefix(String),
    /// `<Filter><And><Prefix>…</Prefix></And></Filter>`.
    AndPrefix(String),
}

impl ReplicationFilter {
    pub fn prefix(&self) -> &str {
        match self {
            ReplicationFilter::LegacyPrefix(prefix)
            | ReplicationFilter::Prefix(prefix)
            | ReplicationFilter::AndPrefix(prefix) => prefix,
            ReplicationFilter::All => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRule {
    pub id: String,
    /// Absent in the original schema.
    pub priority: Option<u32>,
    pub enabled: bool,
    pub filter: ReplicationFilter,
    /// The destination bucket's name (the ARN without `arn:aws:s3:::`).
    pub destination_bucket: String,
    /// `STANDARD` when given.
    pub destination_storage_class: Option<String>,
    /// `DeleteMarkerReplication/Status`; `None` in the original schema, which replicates them.
    pub delete_marker_replication: Option<bool>,
}

impl ReplicationRule {
    pub fn replicates_delete_markers(&self) -> bool {
        self.delete_marker_replication.unwrap_or(true)
    }

    pub fn matches_key(&self, key: &str) -> bool {
        key.starts_with(self.filter.prefix())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfiguration {
    pub role: String,
    pub rules: Vec<ReplicationRule>,
}

impl ReplicationConfiguration {
    /// The rules that apply to `key`: per destination bucket, the enabled matching rule of the
    /// highest priority (the first listed among equals).
    pub fn rules_for_key(&self, key: &str) -> Vec<&ReplicationRule> {
        let mut chosen: Vec<&ReplicationRule> = Vec::new();
        for rule in self
            .rules
            .iter()
            .filter(|rule| rule.enabled && rule.matches_key(key))
        {
            match chosen
                .iter_mut()
                .find(|existing| existing.destination_bucket == rule.destination_bucket)
            {
                Some(existing) => {
                    if rule.priority.unwrap_or(0) > existing.priority.unwrap_or(0) {
                        *existing = rule;
                    }
                }
                None => chosen.push(rule),
            }
        }
        chosen
    }

    /// Whether a new version of `key` is to be replicated.
    pub fn replicates_object(&self, key: &str) -> bool {
        !self.rules_for_key(key).is_empty()
    }

    /// Whether a delete marker on `key` is to be replicated.
    pub fn replicates_delete_marker(&self, key: &str) -> bool {
        self.rules_for_key(key)
            .iter()
            .any(|rule| rule.replicates_delete_markers())
    }

    /// Destination bucket names, each once, in rule order.
    pub fn destination_buckets(&self) -> Vec<&str> {
        let mut buckets: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if !buckets.contains(&rule.destination_bucket.as_str()) {
                buckets.push(&rule.destination_bucket);
            }
        }
        buckets
    }
}

fn malformed() -> S3Error {
    S3Error::MalformedXml
}

fn status(element: &Element) -> Result<bool, S3Error> {
    match element.child_text("Status").map(str::trim) {
        Some("Enabled") => Ok(true),
        Some("Disabled") => Ok(false),
        _ => Err(malformed()),
    }
}

/// An optional feature container: accepted when absent or `Disabled`, 501 when enabled.
fn refuse_enabled(rule: &Element, name: &str) -> Result<(), S3Error> {
    match rule.child(name) {
        None => Ok(()),
        Some(element) if element.child("Status").is_some() => {
            if status(element)? {
                Err(S3Error::NotImplemented)
            } else {
                Ok(())
            }
        }
        Some(_) => Err(S3Error::NotImplemented),
    }
}

fn parse_filter(filter: &Element) -> Result<ReplicationFilter, S3Error> {
    if filter.children.len() > 1 {
        return Err(malformed());
    }
    let Some(child) = filter.children.first() else {
        return Ok(ReplicationFilter::All);
    };
    match child.name.as_str() {
        "Prefix" => Ok(ReplicationFilter::Prefix(child.text.clone())),
        "Tag" => Err(S3Error::NotImplemented),
        "And" => {
            let mut prefix = None;
            for part in &child.children {
                match part.name.as_str() {
                    "Prefix" if prefix.is_none() => prefix = Some(part.text.clone()),
                    "Tag" => return Err(S3Error::NotImplemented),
                    _ => return Err(malformed()),
                }
            }
            Ok(ReplicationFilter::AndPrefix(prefix.unwrap_or_default()))
        }
        _ => Err(malformed()),
    }
}

fn parse_destination(destination: &Element) -> Result<(String, Option<String>), S3Error> {
    for child in &destination.children {
        match child.name.as_str() {
            "Bucket" | "StorageClass" | "Account" => {}
            "AccessControlTranslation" | "EncryptionConfiguration" => {
                return Err(S3Error::NotImplemented);
            }
            "ReplicationTime" | "Metrics" => {
                if status(child)? {
                    return Err(S3Error::NotImplemented);
                }
            }
            _ => return Err(malformed()),
        }
        if destination.children_named(&child.name).count() > 1 {
            return Err(malformed());
        }
    }
    let arn = destination
        .child_text("Bucket")
        .ok_or_else(malformed)?
        .trim();
    let bucket = arn
        .strip_prefix(BUCKET_ARN_PREFIX)
        .filter(|name| !name.is_empty() && !name.contains(['/', ':']))
        .ok_or_else(|| S3Error::InvalidArgument("Invalid destination bucket ARN".to_owned()))?;
    let storage_class = destination
        .child_text("StorageClass")
        .map(|text| text.trim().to_owned());
    if storage_class
        .as_deref()
        .is_some_and(|class| class != "STANDARD")
    {
        // One storage class.
        return Err(S3Error::NotImplemented);
    }
    Ok((bucket.to_owned(), storage_class))
}

fn parse_rule(rule: &Element, index: usize) -> Result<ReplicationRule, S3Error> {
    const KNOWN: [&str; 10] = [
        "ID",
        "Priority",
        "Prefix",
        "Filter",
        "Status",
        "Destination",
        "DeleteMarkerReplication",
        "ExistingObjectReplication",
        "SourceSelectionCriteria",
        "StorageClass",
    ];
    for child in &rule.children {
        if !KNOWN.contains(&child.name.as_str()) || rule.children_named(&child.name).count() > 1 {
            return Err(malformed());
        }
    }
    refuse_enabled(rule, "ExistingObjectReplication")?;
    if let Some(criteria) = rule.child("SourceSelectionCriteria") {
        for child in &criteria.children {
            if status(child)? {
                return Err(S3Error::NotImplemented);
            }
        }
    }
    let id = match rule.child_text("ID") {
        Some(id) if id.chars().count() > REPLICATION_RULE_ID_MAX_CHARS => {
            return Err(S3Error::InvalidArgument(
                "ID length should not exceed allowed limit of 255".to_owned(),
            ));
        }
        Some(id) if !id.is_empty() => id.to_owned(),
        // S3 generates an id; a deterministic one keeps the stored document canonical.
        _ => format!("rule-{}", index + 1),
    };
    let enabled = status(rule)?;
    let filter = match (rule.child("Prefix"), rule.child("Filter")) {
        (Some(prefix), None) => ReplicationFilter::LegacyPrefix(prefix.text.clone()),
        (None, Some(filter)) => parse_filter(filter)?,
        _ => return Err(malformed()),
    };
    let current_schema = !matches!(filter, ReplicationFilter::LegacyPrefix(_));
    let priority = rule
        .child_text("Priority")
        .map(|text| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| S3Error::InvalidArgument("Invalid Priority".to_owned()))
        })
        .transpose()?;
    let delete_marker_replication = rule
        .child("DeleteMarkerReplication")
        .map(status)
        .transpose()?;
    if current_schema {
        if delete_marker_replication.is_none() {
            return Err(S3Error::InvalidRequest(
                "DeleteMarkerReplication must be specified for this version of Cross Region Replication configuration schema.".to_owned(),
            ));
        }
        if priority.is_none() {
            return Err(S3Error::InvalidRequest(
                "Priority must be specified for this version of Cross Region Replication configuration schema.".to_owned(),
            ));
        }
    } else if priority.is_some() || delete_marker_replication.is_some() {
        return Err(S3Error::InvalidRequest(
            "Priority and DeleteMarkerReplication need a Filter (the rule-level Prefix is the original schema)."
                .to_owned(),
        ));
    }
    let destination = rule.child("Destination").ok_or_else(malformed)?;
    let (destination_bucket, destination_storage_class) = parse_destination(destination)?;
    Ok(ReplicationRule {
        id,
        priority,
        enabled,
        filter,
        destination_bucket,
        destination_storage_class,
        delete_marker_replication,
    })
}

/// Parses and validates a PutBucketReplication body (what needs no other bucket: the source's
/// versioning and the destinations' existence are the gateway's checks).
pub fn parse_replication_configuration(body: &[u8]) -> Result<ReplicationConfiguration, S3Error> {
    let root = parse_document(body, REPLICATION_BODY_LIMIT_BYTES)?;
    if root.name != "ReplicationConfiguration" {
        return Err(malformed());
    }
    if root
        .children
        .iter()
        .any(|child| child.name != "Rule" && child.name != "Role")
        || root.children_named("Role").count() != 1
    {
        return Err(malformed());
    }
    let role = root
        .child_text("Role")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let rules = root
        .children_named("Rule")
        .enumerate()
        .map(|(index, rule)| parse_rule(rule, index))
        .collect::<Result<Vec<_>, _>>()?;
    if rules.is_empty() || rules.len() > REPLICATION_MAX_RULES {
        return Err(malformed());
    }
    let legacy = rules
        .iter()
        .filter(|rule| matches!(rule.filter, ReplicationFilter::LegacyPrefix(_)))
        .count();
    if legacy != 0 && legacy != rules.len() {
        return Err(S3Error::InvalidRequest(
            "Rules of the original schema (rule-level Prefix) and of the current one (Filter) cannot be mixed".to_owned(),
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut priorities = std::collections::BTreeSet::new();
    for rule in &rules {
        if !ids.insert(rule.id.as_str()) {
            return Err(S3Error::InvalidArgument(
                "Rule Id must be unique".to_owned(),
            ));
        }
        if let Some(priority) = rule.priority
            && !priorities.insert(priority)
        {
            return Err(S3Error::InvalidRequest(
                "Found two rules with same priority".to_owned(),
            ));
        }
    }
    Ok(ReplicationConfiguration { role, rules })
}

/// The GetBucketReplication body (and the stored form).
pub fn replication_configuration_xml(configuration: &ReplicationConfiguration) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ReplicationConfiguration");
    writer.text_element("Role", &configuration.role);
    for rule in &configuration.rules {
        writer.open("Rule");
        writer.text_element("ID", &rule.id);
        if let Some(priority) = rule.priority {
            writer.number_element("Priority", priority);
        }
        match &rule.filter {
            ReplicationFilter::LegacyPrefix(prefix) => writer.text_element("Prefix", prefix),
            ReplicationFilter::All => {
                writer.open("Filter");
                writer.close("Filter");
            }
            ReplicationFilter::Prefix(prefix) => {
                writer.open("Filter");
                writer.text_element("Prefix", prefix);
                writer.close("Filter");
            }
            ReplicationFilter::AndPrefix(prefix) => {
                writer.open("Filter");
                writer.open("And");
                writer.text_element("Prefix", prefix);
                writer.close("And");
                writer.close("Filter");
            }
        }
        writer.text_element("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        writer.open("Destination");
        writer.text_element(
            "Bucket",
            &format!("{BUCKET_ARN_PREFIX}{}", rule.destination_bucket),
        );
        writer.optional_element("StorageClass", rule.destination_storage_class.as_deref());
        writer.close("Destination");
        if let Some(enabled) = rule.delete_marker_replication {
            writer.open("DeleteMarkerReplication");
            writer.text_element("Status", if enabled { "Enabled" } else { "Disabled" });
            writer.close("DeleteMarkerReplication");
        }
        writer.close("Rule");
    }
    writer.close("ReplicationConfiguration");
    writer.finish()
}

pub fn encode_stored_replication(configuration: &ReplicationConfiguration) -> Vec<u8> {
    replication_configuration_xml(configuration).into_bytes()
}

/// Reads a stored configuration back; a value [`encode_stored_replication`] did not write is an
/// internal error.
pub fn decode_stored_replication(stored: &[u8]) -> Result<ReplicationConfiguration, S3Error> {
    parse_replication_configuration(stored).map_err(|_| S3Error::InternalError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rules: &str) -> Result<ReplicationConfiguration, S3Error> {
        parse_replication_configuration(
            format!(
                "<ReplicationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Role>arn:aws:iam::1:role/r</Role>{rules}</ReplicationConfiguration>"
            )
            .as_bytes(),
        )
    }

    const DESTINATION: &str = "<Destination><Bucket>arn:aws:s3:::dest</Bucket></Destination>";

    fn current_rule(id: &str, priority: u32, prefix: &str, delete_markers: &str) -> String {
        format!(
            "<Rule><ID>{id}</ID><Priority>{priority}</Priority><Filter><Prefix>{prefix}</Prefix></Filter><Status>Enabled</Status>{DESTINATION}<DeleteMarkerReplication><Status>{delete_markers}</Status></DeleteMarkerReplication></Rule>"
        )
    }

    #[test]
    fn a_current_schema_rule_parses_matches_and_round_trips() {
        let configuration = parse(&current_rule("r1", 1, "logs/", "Enabled")).unwrap();
        assert_eq!(configuration.role, "arn:aws:iam::1:role/r");
        let rule = &configuration.rules[0];
        assert_eq!(rule.destination_bucket, "dest");
        assert_eq!(rule.filter, ReplicationFilter::Prefix("logs/".to_owned()));
        assert!(configuration.replicates_object("logs/a"));
        assert!(!configuration.replicates_object("other"));
        assert!(configuration.replicates_delete_marker("logs/a"));
        let stored = encode_stored_replication(&configuration);
        assert_eq!(decode_stored_replication(&stored).unwrap(), configuration);
    }

    #[test]
    fn the_original_schema_replicates_delete_markers_and_generates_ids() {
        let configuration = parse(&format!(
            "<Rule><Prefix></Prefix><Status>Enabled</Status>{DESTINATION}</Rule>"
        ))
        .unwrap();
        assert_eq!(configuration.rules[0].id, "rule-1");
        assert!(configuration.replicates_delete_marker("anything"));
        let stored = encode_stored_replication(&configuration);
        assert_eq!(decode_stored_replication(&stored).unwrap(), configuration);
    }

    #[test]
    fn the_highest_priority_rule_wins_per_destination() {
        let configuration = parse(&format!(
            "{}{}",
            current_rule("low", 1, "", "Enabled"),
            current_rule("high", 2, "a", "Disabled")
        ))
        .unwrap();
        let chosen = configuration.rules_for_key("abc");
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].id, "high");
        assert!(!configuration.replicates_delete_marker("abc"));
        assert!(configuration.replicates_delete_marker("zzz"));
    }

    #[test]
    fn disabled_rules_replicate_nothing() {
        let configuration = parse(&format!(
            "<Rule><ID>x</ID><Priority>1</Priority><Filter/><Status>Disabled</Status>{DESTINATION}<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication></Rule>"
        ))
        .unwrap();
        assert!(!configuration.replicates_object("a"));
    }

    #[test]
    fn invalid_documents_get_s3_errors() {
        let code = |rules: &str| parse(rules).unwrap_err().code();
        assert_eq!(code(""), "MalformedXML");
        assert_eq!(
            parse_replication_configuration(
                b"<ReplicationConfiguration><Rule/></ReplicationConfiguration>"
            )
            .unwrap_err()
            .code(),
            "MalformedXML"
        );
        assert_eq!(
            code("<Rule><Status>Enabled</Status></Rule>"),
            "MalformedXML"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Priority>1</Priority><Filter/><Status>Enabled</Status>{DESTINATION}</Rule>"
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Filter/><Status>Enabled</Status>{DESTINATION}<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication></Rule>"
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(&format!(
                "{}{}",
                current_rule("a", 1, "", "Enabled"),
                current_rule("a", 2, "", "Enabled")
            )),
            "InvalidArgument"
        );
        assert_eq!(
            code(&format!(
                "{}{}",
                current_rule("a", 1, "", "Enabled"),
                current_rule("b", 1, "", "Enabled")
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(
                "<Rule><Prefix/><Status>Enabled</Status><Destination><Bucket>dest</Bucket></Destination></Rule>"
            ),
            "InvalidArgument"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Prefix/><Status>Maybe</Status>{DESTINATION}</Rule>"
            )),
            "MalformedXML"
        );
        // Tag filters are not implemented: 501 rather than a rule that never matches as asked.
        assert_eq!(
            code(&format!(
                "<Rule><Priority>1</Priority><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>{DESTINATION}<DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication></Rule>"
            )),
            "NotImplemented"
        );
        assert_eq!(
            code(&format!(
                "<Rule><Prefix/><Status>Enabled</Status>{DESTINATION}<ExistingObjectReplication><Status>Enabled</Status></ExistingObjectReplication></Rule>"
            )),
            "NotImplemented"
        );
    }
}
