//! `cairn admin`: the client of the gateway's user admin API (`/_cairn/admin/v1/`, see
//! `dataplane/gateway/src/users.rs`). Requests are signed with SigV4 using the root keys
//! (`CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY`, or `--access-key` / `--secret-key`) and
//! sent as HTTP/1.1, one request per connection, over TLS for an `https://` endpoint (trusting
//! the PEM certificates of `--ca-bundle` / `AWS_CA_BUNDLE`, host name checked) or plain for
//! `http://`; the JSON answer is printed on stdout.
//! `cairn admin bucket-quota set|get|clear BUCKET` manages per-bucket quotas the same way, and
//! `cairn admin kms create|list|rotate|disable|enable` the SSE-KMS key service's keys, and
//! `cairn admin master-key show|rewrap` the master keyring as the gateway holds it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// The S3 endpoint of a gateway: `http://HOST:PORT` or `https://HOST:PORT`.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// PEM CA certificates to trust for an `https://` endpoint (the only roots trusted).
    #[arg(long, env = "AWS_CA_BUNDLE", global = true)]
    ca_bundle: Option<PathBuf>,
    /// Root access key id.
    #[arg(long, env = "CAIRN_ROOT_ACCESS_KEY", hide_env_values = true)]
    access_key: String,
    /// Root secret access key.
    #[arg(long, env = "CAIRN_ROOT_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// Region the gateway serves (part of the signature).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    /// Create an access key for a user (its buckets are its own); prints the id and the secret
    /// (shown only this once).
    CreateKey {
        #[arg(long)]
        user: String,
    },
    /// List access keys (no secrets), optionally of one user.
    ListKeys {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an access key (effective on every gateway within its key cache lifetime, 5 s by
    /// default).
    RevokeKey { access_key_id: String },
    /// A bucket's quota (bytes, objects): set, get (with the bucket's exact usage), clear.
    #[command(subcommand)]
    BucketQuota(QuotaCommand),
    /// SSE-KMS keys of the built-in key service: create, list, rotate, disable, enable.
    #[command(subcommand)]
    Kms(KmsCommand),
    /// The cluster master keyring as the gateway holds it (`cairn master-key rotate` changes
    /// the file).
    #[command(subcommand)]
    MasterKey(MasterKeyAdminCommand),
}

#[derive(clap::Subcommand)]
enum MasterKeyAdminCommand {
    /// Print the ids of the gateway's master keys (the active one first; never key bytes).
    Show,
    /// Re-wrap everything retired master keys wrapped (access-key secrets, KMS key material,
    /// SSE-S3 data keys of this region's objects) under the active key; prints counts. Safe to
    /// rerun or interrupt. Afterwards the retired keys can be removed from the key file.
    Rewrap,
}

#[derive(clap::Subcommand)]
enum KmsCommand {
    /// Create a key (new random material, wrapped by the cluster master key); prints it.
    Create {
        /// `alias/NAME` (letters, digits, / _ -; `alias/aws/` is reserved).
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List keys (id, ARN, alias, state, versions; never key material).
    List,
    /// Add a key version: new objects use it, objects written before keep theirs.
    Rotate {
        /// Key id, ARN or alias.
        key: String,
    },
    /// Disable a key: writes and reads of objects under it fail with KMS.DisabledException.
    Disable { key: String },
    /// Enable a disabled key.
    Enable { key: String },
}

#[derive(clap::Subcommand)]
enum QuotaCommand {
    /// Set (replace) the quota; give one limit or both. Sizes take an optional unit: K, M, G, T
    /// (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), with or without a trailing B.
    Set {
        bucket: String,
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<u64>,
        #[arg(long)]
        max_objects: Option<u64>,
    },
    /// Print the quota and the bucket's usage (read from every partition now).
    Get { bucket: String },
    /// Remove the quota.
    Clear { bucket: String },
}

/// `N`, `N[K|M|G|T][B]` (powers of 1000) or `N[Ki|Mi|Gi|Ti][B]` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1048576, 500M, 10GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1000,
        "m" => 1000u64.pow(2),
        "g" => 1000u64.pow(3),
        "t" => 1000u64.pow(4),
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Strict SigV4 `UriEncode` of a query value, so the wire query is already canonical.
fn encode(value: &str) -> String {
    cairn_s3_proto::encoding::uri_encode(value, false)
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let (scheme, host) = cairn_workers::replicator::split_endpoint(&args.endpoint)
        .context("--endpoint must be http://HOST:PORT or https://HOST:PORT")?;
    let tls = scheme == "https";
    let host = host.to_owned();
    let (method, path, query) = match &args.command {
        AdminCommand::CreateKey { user } => (
            "POST",
            "/_cairn/admin/v1/access-keys".to_owned(),
            format!("user={}", encode(user)),
        ),
        AdminCommand::ListKeys { user } => (
            "GET",
            "/_cairn/admin/v1/access-keys".to_owned(),
            user.as_deref()
                .map(|user| format!("user={}", encode(user)))
                .unwrap_or_default(),
        ),
        AdminCommand::RevokeKey { access_key_id } => (
            "DELETE",
            format!("/_cairn/admin/v1/access-keys/{}", encode(access_key_id)),
            String::new(),
        ),
        AdminCommand::BucketQuota(QuotaCommand::Set {
            bucket,
            max_bytes,
            max_objects,
        }) => {
            if max_bytes.is_none() && max_objects.is_none() {
                anyhow::bail!("give --max-bytes, --max-objects or both (clear removes the quota)");
            }
            // Parameters in name order: the query is canonical as sent.
            let query = [("max-bytes", max_bytes), ("max-objects", max_objects)]
                .iter()
                .filter_map(|(name, value)| value.map(|value| format!("{name}={value}")))
                .collect::<Vec<_>>()
                .join("&");
            ("PUT", quota_path(bucket), query)
        }
        AdminCommand::BucketQuota(QuotaCommand::Get { bucket }) => {
            ("GET", quota_path(bucket), String::new())
        }
        AdminCommand::BucketQuota(QuotaCommand::Clear { bucket }) => {
            ("DELETE", quota_path(bucket), String::new())
        }
        AdminCommand::Kms(KmsCommand::Create { alias, description }) => {
            // Parameters in name order: the query is canonical as sent.
            let query = [("alias", alias), ("description", description)]
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_deref()
                        .map(|value| format!("{name}={}", encode(value)))
                })
                .collect::<Vec<_>>()
                .join("&");
            ("POST", "/_cairn/admin/v1/kms-keys".to_owned(), query)
        }
        AdminCommand::Kms(KmsCommand::List) => {
            ("GET", "/_cairn/admin/v1/kms-keys".to_owned(), String::new())
        }
        AdminCommand::Kms(KmsCommand::Rotate { key }) => {
            ("POST", kms_path(key, "rotate"), String::new())
        }
        AdminCommand::Kms(KmsCommand::Disable { key }) => {
            ("POST", kms_path(key, "disable"), String::new())
        }
        AdminCommand::Kms(KmsCommand::Enable { key }) => {
            ("POST", kms_path(key, "enable"), String::new())
        }
        AdminCommand::MasterKey(MasterKeyAdminCommand::Show) => (
            "GET",
            "/_cairn/admin/v1/master-key".to_owned(),
            String::new(),
        ),
        AdminCommand::MasterKey(MasterKeyAdminCommand::Rewrap) => (
            "POST",
            "/_cairn/admin/v1/master-key/rewrap".to_owned(),
            String::new(),
        ),
    };
    // A rewrap walks every object version of the region before it answers.
    let read_timeout = match &args.command {
        AdminCommand::MasterKey(MasterKeyAdminCommand::Rewrap) => Duration::from_secs(3600),
        _ => Duration::from_secs(60),
    };
    let now_unix_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let headers = cairn_s3_proto::sigv4::sign_request_headers(
        method,
        &path,
        &query,
        &host,
        b"",
        &args.access_key,
        &args.secret_key,
        &args.region,
        now_unix_seconds,
    );
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
    let stream = TcpStream::connect(&host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(read_timeout))?;
    let response = if tls {
        let ca_bundle = args
            .ca_bundle
            .as_deref()
            .context("an https:// endpoint needs --ca-bundle (or AWS_CA_BUNDLE)")?;
        let config = cairn_workers::replicator::tls_client_config(ca_bundle)?;
        let server_name = server_name_of(&host)?;
        let connection = rustls::ClientConnection::new(config, server_name)
            .context("starting the TLS session")?;
        exchange(rustls::StreamOwned::new(connection, stream), &request)
            .with_context(|| format!("TLS exchange with {host}"))?
    } else {
        exchange(stream, &request)?
    };
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP status line")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    if (200..300).contains(&status) {
        if !body.is_empty() {
            println!("{body}");
        }
        Ok(())
    } else {
        anyhow::bail!("the gateway answered {status}: {body}")
    }
}

/// Sends `request` and reads the answer until the server closes (the request says
/// `connection: close`). A TLS server that closes without a close_notify after a whole answer
/// is accepted: the status line and body are checked by the caller.
fn exchange(mut stream: impl Read + Write, request: &str) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => Ok(response),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
            Ok(response)
        }
        Err(error) => Err(error),
    }
}

/// The TLS server name of `HOST:PORT` (a DNS name or an IP address, IPv6 in brackets).
fn server_name_of(host: &str) -> anyhow::Result<rustls::pki_types::ServerName<'static>> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(name.to_owned())
        .with_context(|| format!("{name:?} is not a host name or IP address"))
}

fn kms_path(key: &str, action: &str) -> String {
    format!("/_cairn/admin/v1/kms-keys/{}/{action}", encode(key))
}

fn quota_path(bucket: &str) -> String {
    format!("/_cairn/admin/v1/bucket-quota/{}", encode(bucket))
}

/// Decodes a chunked body (small JSON answers).
fn dechunk(mut body: &str) -> String {
    let mut decoded = String::new();
    while let Some((size_line, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        decoded.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::{parse_size, server_name_of};

    #[test]
    fn server_names_come_from_host_and_port() {
        for (host, name) in [
            ("localhost:9000", "localhost"),
            ("127.0.0.1:9000", "127.0.0.1"),
            ("[::1]:9000", "::1"),
            ("s3.example.com", "s3.example.com"),
        ] {
            let parsed = server_name_of(host).unwrap();
            assert_eq!(parsed.to_str(), name, "{host}");
        }
        assert!(server_name_of("bad name:9000").is_err());
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("500M"), Ok(500_000_000));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("2ki"), Ok(2048));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        for bad in ["", "M", "12X", "-1", "99999999999999999999", "20000000Ti"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
