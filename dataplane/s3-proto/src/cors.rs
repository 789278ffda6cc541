//! CORS: the `CORSConfiguration` document of Put/GetBucketCors and the matching of a browser's
//! request (preflight `OPTIONS` or actual) against its rules.
//!
//! Model (S3's): rules are tried in order and the first one whose AllowedOrigin matches the
//! `Origin` (case-sensitive, at most one `*` wildcard per origin), whose AllowedMethod lists the
//! method (`Access-Control-Request-Method` for a preflight) and whose AllowedHeader patterns
//! (case-insensitive, `*` wildcards) cover every header of `Access-Control-Request-Headers`
//! applies. Limits: 1–100 rules, methods among GET PUT POST DELETE HEAD.

use crate::S3Error;
use crate::policy::wildcard_match;
use crate::xml::{XmlWriter, parse_document};

pub const CORS_MAX_RULES: usize = 100;
pub const CORS_BODY_LIMIT_BYTES: usize = 64 * 1024;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

/// What a matching rule says about one request (the CORS response headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsGrant {
    /// `*` when the rule allows any origin, else the request's origin.
    pub allow_origin: String,
    pub allow_methods: String,
    /// The requested headers, echoed (preflight only).
    pub allow_headers: Option<String>,
    pub expose_headers: Option<String>,
    pub max_age_seconds: Option<u32>,
}

pub fn parse_cors_configuration(body: &[u8]) -> Result<Vec<CorsRule>, S3Error> {
    let root = parse_document(body, CORS_BODY_LIMIT_BYTES)?;
    if root.name != "CORSConfiguration" {
        return Err(S3Error::MalformedXml);
    }
    let mut rules = Vec::new();
    for rule in root.children_named("CORSRule") {
        let texts = |name: &str| -> Vec<String> {
            rule.children_named(name)
                .map(|child| child.text.trim().to_owned())
                .collect()
        };
        let parsed = CorsRule {
            id: rule.child_text("ID").map(|text| text.trim().to_owned()),
            allowed_origins: texts("AllowedOrigin"),
            allowed_methods: texts("AllowedMethod"),
            allowed_headers: texts("AllowedHeader"),
            expose_headers: texts("ExposeHeader"),
            max_age_seconds: match rule.child_text("MaxAgeSeconds") {
                None => None,
                Some(text) => Some(text.trim().parse().map_err(|_| S3Error::MalformedXml)?),
            },
        };
        if parsed.allowed_origins.is_empty() || parsed.allowed_methods.is_empty() {
            return Err(S3Error::MalformedXml);
        }
        for method in &parsed.allowed_methods {
            if !METHODS.contains(&method.as_str()) {
                return Err(S3Error::InvalidRequest(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
                )));
            }
        }
        for origin in &parsed.allowed_origins {
            if origin.matches('*').count() > 1 {
                return Err(S3Error::InvalidRequest(format!(
                    "AllowedOrigin \"{origin}\" can not have more than one wildcard."
                )));
            }
        }
        for header in &parsed.allowed_headers {
            if header.matches('*').count() > 1 {
                return Err(S3Error::InvalidRequest(format!(
                    "AllowedHeader \"{header}\" can not have more than one wildcard."
                )));
            }
        }
        rules.push(parsed);
    }
    if rules.is_empty() || rules.len() > CORS_MAX_RULES {
        return Err(S3Error::MalformedXml);
    }
    Ok(rules)
}

pub fn cors_configuration_xml(rules: &[CorsRule]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("CORSConfiguration");
    for rule in rules {
        writer.open("CORSRule");
        writer.optional_element("ID", rule.id.as_deref());
        for (name, values) in [
            ("AllowedHeader", &rule.allowed_headers),
            ("AllowedMethod", &rule.allowed_methods),
            ("AllowedOrigin", &rule.allowed_origins),
            ("ExposeHeader", &rule.expose_headers),
        ] {
            for value in values {
                writer.text_element(name, value);
            }
        }
        if let Some(seconds) = rule.max_age_seconds {
            writer.number_element("MaxAgeSeconds", seconds);
        }
        writer.close("CORSRule");
    }
    writer.close("CORSConfiguration");
    writer.finish()
}

/// The first rule allowing `origin` to use `method` with `request_headers` (a comma-separated
/// `Access-Control-Request-Headers` value, for preflights).
pub fn match_rule(
    rules: &[CorsRule],
    origin: &str,
    method: &str,
    request_headers: Option<&str>,
) -> Option<CorsGrant> {
    let requested: Vec<String> = request_headers
        .unwrap_or("")
        .split(',')
        .map(|header| header.trim().to_ascii_lowercase())
        .filter(|header| !header.is_empty())
        .collect();
    let rule = rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|pattern| wildcard_match(pattern, origin, false))
            && rule.allowed_methods.iter().any(|allowed| allowed == method)
            && requested.iter().all(|header| {
                rule.allowed_headers
                    .iter()
                    .any(|pattern| wildcard_match(pattern, header, true))
            })
    })?;
    Some(CorsGrant {
        allow_origin: if rule.allowed_origins.iter().any(|pattern| pattern == "*") {
            "*".to_owned()
        } else {
            origin.to_owned()
        },
        allow_methods: rule.allowed_methods.join(", "),
        allow_headers: (!requested.is_empty()).then(|| requested.join(", ")),
        expose_headers: (!rule.expose_headers.is_empty()).then(|| rule.expose_headers.join(", ")),
        max_age_seconds: rule.max_age_seconds,
    })
}

/// Stored form: the configuration document itself (re-rendered, so it is canonical).
pub fn encode_stored_rules(rules: &[CorsRule]) -> Vec<u8> {
    cors_configuration_xml(rules).into_bytes()
}

pub fn decode_stored_rules(stored: &[u8]) -> Result<Vec<CorsRule>, S3Error> {
    parse_cors_configuration(stored).map_err(|_| S3Error::InternalError)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = "<CORSConfiguration><CORSRule><ID>web</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule></CORSConfiguration>";

    #[test]
    fn parses_renders_and_round_trips() {
        let rules = parse_cors_configuration(DOCUMENT.as_bytes()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].id.as_deref(), Some("web"));
        assert_eq!(rules[0].max_age_seconds, Some(600));
        assert_eq!(
            decode_stored_rules(&encode_stored_rules(&rules)).unwrap(),
            rules
        );
    }

    #[test]
    fn matching_follows_origin_method_and_headers() {
        let rules = parse_cors_configuration(DOCUMENT.as_bytes()).unwrap();
        let grant = match_rule(
            &rules,
            "https://app.example.com",
            "PUT",
            Some("X-Amz-Date, content-type"),
        )
        .unwrap();
        assert_eq!(grant.allow_origin, "https://app.example.com");
        assert_eq!(grant.allow_methods, "GET, PUT");
        assert_eq!(
            grant.allow_headers.as_deref(),
            Some("x-amz-date, content-type")
        );
        assert_eq!(grant.expose_headers.as_deref(), Some("ETag"));
        assert_eq!(grant.max_age_seconds, Some(600));
        assert!(match_rule(&rules, "https://app.example.com", "DELETE", None).is_none());
        assert!(match_rule(&rules, "https://evil.test", "GET", None).is_none());
        assert!(
            match_rule(
                &rules,
                "https://app.example.com",
                "GET",
                Some("authorization")
            )
            .is_none()
        );
        let any = match_rule(&rules, "https://evil.test", "HEAD", None).unwrap();
        assert_eq!(any.allow_origin, "*");
    }

    #[test]
    fn invalid_configurations_are_refused() {
        assert_eq!(
            parse_cors_configuration(b"<CORSConfiguration/>"),
            Err(S3Error::MalformedXml)
        );
        assert_eq!(
            parse_cors_configuration(b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"),
            Err(S3Error::MalformedXml)
        );
        assert!(matches!(
            parse_cors_configuration(b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"),
            Err(S3Error::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_cors_configuration(b"<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"),
            Err(S3Error::InvalidRequest(_))
        ));
        let many = format!(
            "<CORSConfiguration>{}</CORSConfiguration>",
            "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>".repeat(101)
        );
        assert_eq!(
            parse_cors_configuration(many.as_bytes()),
            Err(S3Error::MalformedXml)
        );
    }
}
