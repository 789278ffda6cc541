//! `cairn admin`: the client of the gateway's user admin API (`/_cairn/admin/v1/`, see
//! `dataplane/gateway/src/users.rs`). Requests are signed with SigV4 using the root keys
//! (`CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY`, or `--access-key` / `--secret-key`) and
//! sent over plain HTTP/1.1 (one request per connection); the JSON answer is printed on stdout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// The S3 endpoint of a gateway (http only).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
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
}

/// Strict SigV4 `UriEncode` of a query value, so the wire query is already canonical.
fn encode(value: &str) -> String {
    cairn_s3_proto::encoding::uri_encode(value, false)
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let host = args
        .endpoint
        .strip_prefix("http://")
        .context("--endpoint must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
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
    let mut stream = TcpStream::connect(&host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
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
