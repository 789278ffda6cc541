//! Bucket policies: the JSON document of Put/GetBucketPolicy, parsed and validated once, and its
//! evaluation against one request.
//!
//! Model (AWS's policy evaluation logic, restricted to one resource-based policy): every
//! statement whose Principal, Action and Resource match the request and whose Condition holds
//! applies; an applicable `Deny` wins over everything ([`Decision::Deny`]), else an applicable
//! `Allow` allows ([`Decision::Allow`]), else the policy says nothing ([`Decision::NoMatch`]) and
//! the caller falls back to ownership and ACLs.
//!
//! - Principal: `"*"` (anyone, anonymous included), `{"AWS": "*"}` (same), `{"AWS": NAME}`,
//!   `{"AWS": "arn:aws:iam::ACCOUNT:user/NAME"}` or `{"AWS": "arn:aws:iam::ACCOUNT:root"}` where
//!   NAME is a Cairn user (the owner of its access keys); lists of them; `NotPrincipal` likewise.
//! - Action / NotAction: `s3:Operation`, case-insensitive, with `*` and `?` wildcards.
//! - Resource / NotResource: `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key-pattern` with
//!   wildcards; every resource must name the policy's own bucket (else `MalformedPolicy`, as S3).
//! - Condition operators: String(Not)Equals(IgnoreCase), String(Not)Like, Numeric{Equals,
//!   NotEquals, LessThan, LessThanEquals, GreaterThan, GreaterThanEquals}, Date{same six}, Bool,
//!   IpAddress / NotIpAddress (IPv4 and IPv6 CIDR), Null, each with an optional `...IfExists`
//!   suffix and the `ForAnyValue:` / `ForAllValues:` set qualifiers. Keys are case-insensitive;
//!   several values of one key are ORed, several keys and operators ANDed. An unknown operator is
//!   `MalformedPolicy`. A key the request has no value for fails every operator except the
//!   negated string ones, `Null: true`, `...IfExists` and `ForAllValues:`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::S3Error;

/// The largest policy S3 accepts.
pub const POLICY_MAX_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalSet {
    Anyone,
    Users(Vec<String>),
}

impl PrincipalSet {
    fn matches(&self, principal: Option<&str>) -> bool {
        match self {
            PrincipalSet::Anyone => true,
            PrincipalSet::Users(users) => {
                principal.is_some_and(|name| users.iter().any(|user| user == name))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ConditionClause {
    operator: String,
    if_exists: bool,
    qualifier: SetQualifier,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// `(set, negated)`: `NotPrincipal` when negated.
    principal: (PrincipalSet, bool),
    actions: (Vec<String>, bool),
    resources: (Vec<String>, bool),
    conditions: Vec<ConditionClause>,
}

/// A parsed, validated bucket policy.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketPolicy {
    statements: Vec<Statement>,
}

/// The facts about one request a policy is evaluated against.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// The Cairn user; `None` for an anonymous (unsigned) request.
    pub principal: Option<&'a str>,
    /// `s3:GetObject`, …
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// Condition keys (lowercase, e.g. `aws:sourceip`, `s3:prefix`) and their values.
    pub context: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NoMatch,
}

fn malformed(message: &str) -> S3Error {
    S3Error::MalformedPolicy(message.to_owned())
}

/// A string or a list of strings (`"a"` or `["a", "b"]`).
fn string_list(value: &serde_json::Value, what: &str) -> Result<Vec<String>, S3Error> {
    match value {
        serde_json::Value::String(text) => Ok(vec![text.clone()]),
        serde_json::Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(&format!("{what} must be strings")))
            })
            .collect(),
        _ => Err(malformed(&format!("{what} must be a string or a list"))),
    }
}

/// Condition values may also be numbers or booleans.
fn condition_values(value: &serde_json::Value) -> Result<Vec<String>, S3Error> {
    let one = |item: &serde_json::Value| match item {
        serde_json::Value::String(text) => Ok(text.clone()),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(malformed("Invalid Condition value")),
    };
    match value {
        serde_json::Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        serde_json::Value::Array(_) => Err(malformed("Invalid Condition value")),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_principal(value: &serde_json::Value) -> Result<PrincipalSet, S3Error> {
    let user_of = |text: &str| -> Result<Option<String>, S3Error> {
        if text == "*" {
            return Ok(None);
        }
        if let Some(rest) = text.strip_prefix("arn:aws:iam::") {
            let (_account, entity) = rest
                .split_once(':')
                .ok_or_else(|| malformed("Invalid principal in policy"))?;
            if entity == "root" {
                return Ok(Some("root".to_owned()));
            }
            return entity
                .strip_prefix("user/")
                .filter(|name| !name.is_empty())
                .map(|name| Some(name.to_owned()))
                .ok_or_else(|| malformed("Invalid principal in policy"));
        }
        if text.is_empty() || text.contains(':') {
            return Err(malformed("Invalid principal in policy"));
        }
        Ok(Some(text.to_owned()))
    };
    let collect = |names: Vec<String>| -> Result<PrincipalSet, S3Error> {
        let mut users = Vec::new();
        for name in names {
            match user_of(&name)? {
                None => return Ok(PrincipalSet::Anyone),
                Some(user) => users.push(user),
            }
        }
        Ok(PrincipalSet::Users(users))
    };
    match value {
        serde_json::Value::String(text) if text == "*" => Ok(PrincipalSet::Anyone),
        serde_json::Value::Object(map) => {
            let mut names = Vec::new();
            for (kind, principals) in map {
                match kind.as_str() {
                    "AWS" | "CanonicalUser" => names.extend(string_list(principals, "Principal")?),
                    _ => return Err(malformed("Invalid principal in policy")),
                }
            }
            if names.is_empty() {
                return Err(malformed("Invalid principal in policy"));
            }
            collect(names)
        }
        _ => Err(malformed("Invalid principal in policy")),
    }
}

fn validate_action(action: &str) -> Result<String, S3Error> {
    let lower = action.to_ascii_lowercase();
    if lower == "*" || lower.starts_with("s3:") && lower.len() > 3 {
        Ok(lower)
    } else {
        Err(malformed("Policy has invalid action"))
    }
}

fn validate_resource(resource: &str, bucket: &str) -> Result<String, S3Error> {
    let Some(path) = resource.strip_prefix("arn:aws:s3:::") else {
        return Err(malformed("Policy has invalid resource"));
    };
    let resource_bucket = path.split('/').next().unwrap_or("");
    // The bucket part may itself use wildcards, but must match this bucket.
    if !wildcard_match(resource_bucket, bucket, false) {
        return Err(malformed("Policy has invalid resource"));
    }
    Ok(resource.to_owned())
}

const OPERATORS: [&str; 25] = [
    "stringequals",
    "stringnotequals",
    "stringequalsignorecase",
    "stringnotequalsignorecase",
    "stringlike",
    "stringnotlike",
    "numericequals",
    "numericnotequals",
    "numericlessthan",
    "numericlessthanequals",
    "numericgreaterthan",
    "numericgreaterthanequals",
    "dateequals",
    "datenotequals",
    "datelessthan",
    "datelessthanequals",
    "dategreaterthan",
    "dategreaterthanequals",
    "bool",
    "ipaddress",
    "notipaddress",
    "null",
    "arnequals",
    "arnlike",
    "arnnotequals",
];

fn parse_conditions(value: &serde_json::Value) -> Result<Vec<ConditionClause>, S3Error> {
    let serde_json::Value::Object(operators) = value else {
        return Err(malformed("Condition must be an object"));
    };
    let mut clauses = Vec::new();
    for (raw_operator, keys) in operators {
        let mut operator = raw_operator.to_ascii_lowercase();
        let mut qualifier = SetQualifier::Single;
        if let Some(rest) = operator.strip_prefix("foranyvalue:") {
            qualifier = SetQualifier::ForAnyValue;
            operator = rest.to_owned();
        } else if let Some(rest) = operator.strip_prefix("forallvalues:") {
            qualifier = SetQualifier::ForAllValues;
            operator = rest.to_owned();
        }
        let if_exists = operator.ends_with("ifexists");
        if if_exists {
            operator.truncate(operator.len() - "ifexists".len());
        }
        if !OPERATORS.contains(&operator.as_str()) {
            return Err(malformed(&format!(
                "Policy has an invalid condition operator: {raw_operator}"
            )));
        }
        let serde_json::Value::Object(keys) = keys else {
            return Err(malformed("Condition operator must map keys to values"));
        };
        for (key, values) in keys {
            let values = condition_values(values)?;
            // Values are checked now so a typo is refused at PutBucketPolicy, not ignored later.
            for value in &values {
                let valid = match operator.as_str() {
                    "ipaddress" | "notipaddress" => parse_cidr(value).is_some(),
                    name if name.starts_with("numeric") => value.parse::<f64>().is_ok(),
                    name if name.starts_with("date") => parse_date(value).is_some(),
                    "bool" | "null" => {
                        matches!(value.to_ascii_lowercase().as_str(), "true" | "false")
                    }
                    _ => true,
                };
                if !valid {
                    return Err(malformed(&format!(
                        "Invalid value {value:?} for condition operator {raw_operator}"
                    )));
                }
            }
            clauses.push(ConditionClause {
                operator: operator.clone(),
                if_exists,
                qualifier,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(clauses)
}

impl BucketPolicy {
    /// Parses and validates the policy document of `bucket`.
    pub fn parse(document: &[u8], bucket: &str) -> Result<BucketPolicy, S3Error> {
        if document.len() > POLICY_MAX_BYTES {
            return Err(malformed("Policies must be no larger than 20480 bytes"));
        }
        let root: serde_json::Value = serde_json::from_slice(document)
            .map_err(|_| malformed("Policies must be valid JSON and the first byte must be '{'"))?;
        let serde_json::Value::Object(root) = root else {
            return Err(malformed(
                "Policies must be valid JSON and the first byte must be '{'",
            ));
        };
        if let Some(version) = root.get("Version")
            && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(malformed("The policy must contain a valid version string"));
        }
        let statements = match root.get("Statement") {
            Some(serde_json::Value::Array(items)) if !items.is_empty() => items.clone(),
            Some(object @ serde_json::Value::Object(_)) => vec![object.clone()],
            _ => return Err(malformed("Missing required field Statement")),
        };
        let statements = statements
            .iter()
            .map(|statement| Self::parse_statement(statement, bucket))
            .collect::<Result<Vec<_>, S3Error>>()?;
        Ok(BucketPolicy { statements })
    }

    fn parse_statement(value: &serde_json::Value, bucket: &str) -> Result<Statement, S3Error> {
        let serde_json::Value::Object(statement) = value else {
            return Err(malformed("Statement must be an object"));
        };
        let effect = match statement.get("Effect").and_then(|effect| effect.as_str()) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(malformed("Invalid effect")),
        };
        let principal = match (statement.get("Principal"), statement.get("NotPrincipal")) {
            (Some(principal), None) => (parse_principal(principal)?, false),
            (None, Some(principal)) => (parse_principal(principal)?, true),
            _ => return Err(malformed("Missing required field Principal")),
        };
        let actions = match (statement.get("Action"), statement.get("NotAction")) {
            (Some(actions), None) => (actions, false),
            (None, Some(actions)) => (actions, true),
            _ => return Err(malformed("Missing required field Action")),
        };
        let actions = (
            string_list(actions.0, "Action")?
                .iter()
                .map(|action| validate_action(action))
                .collect::<Result<Vec<_>, S3Error>>()?,
            actions.1,
        );
        let resources = match (statement.get("Resource"), statement.get("NotResource")) {
            (Some(resources), None) => (resources, false),
            (None, Some(resources)) => (resources, true),
            _ => return Err(malformed("Missing required field Resource")),
        };
        let resources = (
            string_list(resources.0, "Resource")?
                .iter()
                .map(|resource| validate_resource(resource, bucket))
                .collect::<Result<Vec<_>, S3Error>>()?,
            resources.1,
        );
        let conditions = match statement.get("Condition") {
            None => Vec::new(),
            Some(conditions) => parse_conditions(conditions)?,
        };
        for key in statement.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Principal"
                    | "NotPrincipal"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            ) {
                return Err(malformed(&format!("Unknown field {key}")));
            }
        }
        Ok(Statement {
            effect,
            principal,
            actions,
            resources,
            conditions,
        })
    }

    /// Whether any statement could grant (or deny) anonymous access: S3's "public" policy
    /// (GetBucketPolicyStatus, Block Public Access). A statement is public when it applies to
    /// anyone without a narrowing condition.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|statement| {
            statement.effect == Effect::Allow
                && !statement.principal.1
                && statement.principal.0 == PrincipalSet::Anyone
                && statement.conditions.iter().all(|clause| {
                    !matches!(
                        clause.key.as_str(),
                        "aws:sourceip"
                            | "aws:sourcevpc"
                            | "aws:sourcevpce"
                            | "aws:principalaccount"
                    )
                })
        })
    }

    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            if !statement.applies(facts) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NoMatch
        }
    }
}

impl Statement {
    fn applies(&self, facts: &RequestFacts<'_>) -> bool {
        let principal = self.principal.0.matches(facts.principal) != self.principal.1;
        let action_lower = facts.action.to_ascii_lowercase();
        let action = self
            .actions
            .0
            .iter()
            .any(|pattern| wildcard_match(pattern, &action_lower, false))
            != self.actions.1;
        let resource = self
            .resources
            .0
            .iter()
            .any(|pattern| wildcard_match(pattern, facts.resource, false))
            != self.resources.1;
        principal
            && action
            && resource
            && self
                .conditions
                .iter()
                .all(|clause| clause.holds(&facts.context))
    }
}

impl ConditionClause {
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let present = context.get(&self.key).filter(|values| !values.is_empty());
        if self.operator == "null" {
            let wants_absent = self
                .values
                .iter()
                .any(|value| value.eq_ignore_ascii_case("true"));
            return present.is_none() == wants_absent;
        }
        let Some(request_values) = present else {
            return self.if_exists
                || self.qualifier == SetQualifier::ForAllValues
                || matches!(
                    self.operator.as_str(),
                    "stringnotequals"
                        | "stringnotequalsignorecase"
                        | "stringnotlike"
                        | "arnnotequals"
                );
        };
        let one = |request_value: &str| self.matches_one(request_value);
        match self.qualifier {
            SetQualifier::ForAllValues => request_values.iter().all(|value| one(value)),
            SetQualifier::ForAnyValue | SetQualifier::Single => {
                request_values.iter().any(|value| one(value))
            }
        }
    }

    /// Whether one request value satisfies the operator against the policy's values (ORed;
    /// for negated operators: matches none of them).
    fn matches_one(&self, request_value: &str) -> bool {
        let values = &self.values;
        let any = |test: &dyn Fn(&str) -> bool| values.iter().any(|value| test(value));
        let numeric = |test: &dyn Fn(f64, f64) -> bool| {
            request_value.parse::<f64>().is_ok_and(|request| {
                any(&|value| value.parse::<f64>().is_ok_and(|value| test(request, value)))
            })
        };
        let date = |test: &dyn Fn(i64, i64) -> bool| {
            parse_date(request_value).is_some_and(|request| {
                any(&|value| parse_date(value).is_some_and(|value| test(request, value)))
            })
        };
        match self.operator.as_str() {
            "stringequals" | "arnequals" => any(&|value| value == request_value),
            "stringnotequals" | "arnnotequals" => !any(&|value| value == request_value),
            "stringequalsignorecase" => any(&|value| value.eq_ignore_ascii_case(request_value)),
            "stringnotequalsignorecase" => !any(&|value| value.eq_ignore_ascii_case(request_value)),
            "stringlike" | "arnlike" => any(&|value| wildcard_match(value, request_value, false)),
            "stringnotlike" => !any(&|value| wildcard_match(value, request_value, false)),
            "numericequals" => numeric(&|a, b| a == b),
            "numericnotequals" => !numeric(&|a, b| a == b),
            "numericlessthan" => numeric(&|a, b| a < b),
            "numericlessthanequals" => numeric(&|a, b| a <= b),
            "numericgreaterthan" => numeric(&|a, b| a > b),
            "numericgreaterthanequals" => numeric(&|a, b| a >= b),
            "dateequals" => date(&|a, b| a == b),
            "datenotequals" => !date(&|a, b| a == b),
            "datelessthan" => date(&|a, b| a < b),
            "datelessthanequals" => date(&|a, b| a <= b),
            "dategreaterthan" => date(&|a, b| a > b),
            "dategreaterthanequals" => date(&|a, b| a >= b),
            "bool" => any(&|value| value.eq_ignore_ascii_case(request_value)),
            "ipaddress" => request_value
                .parse::<IpAddr>()
                .is_ok_and(|address| any(&|value| cidr_contains(value, address))),
            "notipaddress" => request_value
                .parse::<IpAddr>()
                .is_ok_and(|address| !any(&|value| cidr_contains(value, address))),
            _ => false,
        }
    }
}

/// `*` matches any run of characters (`/` included), `?` exactly one; everything else literally
/// (case-sensitive unless `ignore_case`).
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let equal = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    // Iterative matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (pattern[p] == '?' || (pattern[p] != '*' && equal(pattern[p], text[t])))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|character| *character == '*')
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
        None => {
            let address = text.parse::<IpAddr>().ok()?;
            (address, if address.is_ipv4() { 32 } else { 128 })
        }
    };
    let limit = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= limit).then_some((address, prefix))
}

fn cidr_contains(cidr: &str, address: IpAddr) -> bool {
    let Some((network, prefix)) = parse_cidr(cidr) else {
        return false;
    };
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

/// Dates in conditions: ISO 8601 (`2026-01-01T00:00:00Z`, with or without fractional seconds,
/// or a plain date) or epoch seconds. Answers epoch seconds.
fn parse_date(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, time.trim_end_matches('Z')),
        None => (text, "00:00:00"),
    };
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let time = time.split('.').next()?;
    let mut time_parts = time.split(':').map(|part| part.parse::<i64>().ok());
    let hour = time_parts.next()??;
    let minute = time_parts.next().unwrap_or(Some(0))?;
    let second = time_parts.next().unwrap_or(Some(0))?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let civil = crate::time::CivilTime {
        year,
        month: month as u32,
        day: day as u32,
        hour: hour as u32,
        minute: minute as u32,
        second: second as u32,
    };
    civil.to_unix_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "photos";

    fn policy(json: &str) -> BucketPolicy {
        BucketPolicy::parse(json.as_bytes(), BUCKET)
            .unwrap_or_else(|error| panic!("{error}: {json}"))
    }

    fn facts<'a>(
        principal: Option<&'a str>,
        action: &'a str,
        resource: &'a str,
    ) -> RequestFacts<'a> {
        RequestFacts {
            principal,
            action,
            resource,
            context: BTreeMap::new(),
        }
    }

    #[test]
    fn public_read_allows_anonymous_get_only() {
        let public = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::photos/*"]}]}"#,
        );
        assert!(public.is_public());
        assert_eq!(
            public.evaluate(&facts(None, "s3:GetObject", "arn:aws:s3:::photos/a/b.jpg")),
            Decision::Allow
        );
        assert_eq!(
            public.evaluate(&facts(None, "s3:PutObject", "arn:aws:s3:::photos/a")),
            Decision::NoMatch
        );
        assert_eq!(
            public.evaluate(&facts(None, "s3:ListBucket", "arn:aws:s3:::photos")),
            Decision::NoMatch,
            "photos/* does not cover the bucket itself"
        );
    }

    #[test]
    fn explicit_deny_wins_over_allow() {
        let document = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":["bob","arn:aws:iam::123456789012:user/carol"]},"Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]},
            {"Effect":"Deny","Principal":"*","Action":"s3:Delete*","Resource":"arn:aws:s3:::photos/*"}
        ]}"#;
        let shared = policy(document);
        assert!(!shared.is_public());
        for user in ["bob", "carol"] {
            assert_eq!(
                shared.evaluate(&facts(Some(user), "s3:GetObject", "arn:aws:s3:::photos/k")),
                Decision::Allow
            );
            assert_eq!(
                shared.evaluate(&facts(
                    Some(user),
                    "s3:DeleteObject",
                    "arn:aws:s3:::photos/k"
                )),
                Decision::Deny
            );
        }
        assert_eq!(
            shared.evaluate(&facts(
                Some("mallory"),
                "s3:GetObject",
                "arn:aws:s3:::photos/k"
            )),
            Decision::NoMatch
        );
        assert_eq!(
            shared.evaluate(&facts(None, "s3:DeleteObject", "arn:aws:s3:::photos/k")),
            Decision::Deny
        );
        // Actions are case-insensitive.
        assert_eq!(
            shared.evaluate(&facts(Some("bob"), "s3:getobject", "arn:aws:s3:::photos/k")),
            Decision::Allow
        );
    }

    #[test]
    fn not_elements_invert_their_match() {
        let document = r#"{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"alice"},"NotAction":"s3:Get*","NotResource":"arn:aws:s3:::photos/public/*"}]}"#;
        let deny_others = policy(document);
        assert_eq!(
            deny_others.evaluate(&facts(Some("bob"), "s3:PutObject", "arn:aws:s3:::photos/x")),
            Decision::Deny
        );
        assert_eq!(
            deny_others.evaluate(&facts(
                Some("alice"),
                "s3:PutObject",
                "arn:aws:s3:::photos/x"
            )),
            Decision::NoMatch
        );
        assert_eq!(
            deny_others.evaluate(&facts(Some("bob"), "s3:GetObject", "arn:aws:s3:::photos/x")),
            Decision::NoMatch
        );
        assert_eq!(
            deny_others.evaluate(&facts(
                Some("bob"),
                "s3:PutObject",
                "arn:aws:s3:::photos/public/x"
            )),
            Decision::NoMatch
        );
    }

    fn with_context<'a>(mut base: RequestFacts<'a>, pairs: &[(&str, &str)]) -> RequestFacts<'a> {
        for (key, value) in pairs {
            base.context
                .entry(key.to_ascii_lowercase())
                .or_default()
                .push((*value).to_owned());
        }
        base
    }

    #[test]
    fn conditions_follow_aws_operators() {
        let document = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*",
            "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"Bool":{"aws:SecureTransport":"false"},
                         "StringLike":{"aws:Referer":["https://*.example.com/*"]},"NumericLessThanEquals":{"s3:max-keys":"100"},
                         "DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#;
        let conditional = policy(document);
        assert!(!conditional.is_public(), "restricted by source address");
        let base = || facts(None, "s3:GetObject", "arn:aws:s3:::photos/k");
        let good = [
            ("aws:SourceIp", "10.1.2.3"),
            ("aws:SecureTransport", "false"),
            ("aws:Referer", "https://www.example.com/page"),
            ("s3:max-keys", "50"),
            ("aws:CurrentTime", "2026-11-25T19:00:00Z"),
        ];
        assert_eq!(
            conditional.evaluate(&with_context(base(), &good)),
            Decision::Allow
        );
        let mut ipv6 = good;
        ipv6[0] = ("aws:SourceIp", "2001:db8::1");
        assert_eq!(
            conditional.evaluate(&with_context(base(), &ipv6)),
            Decision::Allow
        );
        for (index, bad) in [
            ("aws:SourceIp", "192.168.0.1"),
            ("aws:SecureTransport", "true"),
            ("aws:Referer", "https://evil.test/"),
            ("s3:max-keys", "101"),
            ("aws:CurrentTime", "2031-01-01T00:00:00Z"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut changed = good;
            changed[index] = bad;
            assert_eq!(
                conditional.evaluate(&with_context(base(), &changed)),
                Decision::NoMatch,
                "{bad:?}"
            );
        }
        // A missing key fails a positive operator.
        assert_eq!(
            conditional.evaluate(&with_context(base(), &good[1..])),
            Decision::NoMatch
        );
    }

    #[test]
    fn negated_and_if_exists_operators_and_missing_keys() {
        let document = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*",
            "Condition":{"StringNotEquals":{"s3:x-amz-acl":"private"},"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#;
        let deny = policy(document);
        let base = || facts(Some("bob"), "s3:PutObject", "arn:aws:s3:::photos/k");
        assert_eq!(
            deny.evaluate(&with_context(
                base(),
                &[("s3:x-amz-acl", "public-read"), ("aws:SourceIp", "8.8.8.8")]
            )),
            Decision::Deny
        );
        assert_eq!(
            deny.evaluate(&with_context(
                base(),
                &[("s3:x-amz-acl", "private"), ("aws:SourceIp", "8.8.8.8")]
            )),
            Decision::NoMatch
        );
        assert_eq!(
            deny.evaluate(&with_context(
                base(),
                &[
                    ("s3:x-amz-acl", "public-read"),
                    ("aws:SourceIp", "127.0.0.1")
                ]
            )),
            Decision::NoMatch
        );
        // StringNotEquals holds for a missing key; NotIpAddress does not.
        assert_eq!(
            deny.evaluate(&with_context(base(), &[("aws:SourceIp", "8.8.8.8")])),
            Decision::Deny
        );
        let if_exists = policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos",
                "Condition":{"StringLikeIfExists":{"s3:prefix":"public/*"},"Null":{"aws:username":"true"}}}]}"#,
        );
        let list = || facts(None, "s3:ListBucket", "arn:aws:s3:::photos");
        assert_eq!(if_exists.evaluate(&list()), Decision::Allow);
        assert_eq!(
            if_exists.evaluate(&with_context(list(), &[("s3:prefix", "public/a")])),
            Decision::Allow
        );
        assert_eq!(
            if_exists.evaluate(&with_context(list(), &[("s3:prefix", "private/")])),
            Decision::NoMatch
        );
        assert_eq!(
            if_exists.evaluate(&with_context(list(), &[("aws:username", "bob")])),
            Decision::NoMatch
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for document in [
            "",
            "[]",
            "not json",
            r#"{"Statement":[]}"#,
            r#"{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringSortOf":{"a":"b"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Bogus":1}]}"#,
        ] {
            assert!(
                matches!(
                    BucketPolicy::parse(document.as_bytes(), BUCKET),
                    Err(S3Error::MalformedPolicy(_))
                ),
                "{document}"
            );
        }
        let large = format!(
            "{{\"Statement\":[],\"Pad\":\"{}\"}}",
            "x".repeat(POLICY_MAX_BYTES)
        );
        assert!(matches!(
            BucketPolicy::parse(large.as_bytes(), BUCKET),
            Err(S3Error::MalformedPolicy(_))
        ));
    }

    #[test]
    fn wildcards_and_cidrs() {
        assert!(wildcard_match("a*c", "abbbc", false));
        assert!(wildcard_match("a*", "a/b/c", false));
        assert!(wildcard_match("a?c", "abc", false));
        assert!(!wildcard_match("a?c", "abbc", false));
        assert!(wildcard_match("*", "", false));
        assert!(!wildcard_match("A*", "abc", false));
        assert!(wildcard_match("A*", "abc", true));
        assert!(wildcard_match("*x*y*", "__x__y__", false));
        assert!(!wildcard_match("*x*y", "__x__y__", false));
        assert!(cidr_contains("0.0.0.0/0", "8.8.8.8".parse().unwrap()));
        assert!(cidr_contains("192.168.1.7", "192.168.1.7".parse().unwrap()));
        assert!(!cidr_contains(
            "192.168.1.0/24",
            "192.168.2.1".parse().unwrap()
        ));
        assert!(!cidr_contains("::/0", "1.2.3.4".parse().unwrap()));
        assert_eq!(parse_date("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date("86400"), Some(86_400));
        assert_eq!(parse_date("2026-13-01T00:00:00Z"), None);
    }
}
