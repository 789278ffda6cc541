//! `cairn ca`: the cluster CA for internal mutual TLS, and the `--tls-dir` options every role
//! shares (see `dataplane/tls` for the model).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cairn_tls::{Identity, Role, TlsFiles};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create a cluster CA in a directory: `ca.pem`, `ca-key.pem` (mode 0600), an empty CRL
    /// `crl.pem`, and the ledgers `issued.tsv` / `revoked.tsv`.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue one process's identity (`ca.pem`, `cert.pem`, `key.pem` mode 0600, `crl.pem`)
    /// into a directory; give it to the process with `--tls-dir`.
    Issue {
        /// The CA directory (`cairn ca init --out`).
        #[arg(long)]
        ca: PathBuf,
        /// The process's name (certificate common name; `cairn ca revoke --name` matches it).
        #[arg(long)]
        name: String,
        /// storage, meta, gateway, worker or edge: what the certificate lets it do.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        out: PathBuf,
        /// IP addresses the certificate also covers (repeat).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// DNS names the certificate also covers (repeat).
        #[arg(long = "dns")]
        dns: Vec<String>,
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Revoke certificates: adds them to the CA's `crl.pem` (an X.509 CRL signed by the CA).
    /// Nodes reading that file (`--tls-crl`, or the cluster file's CA) refuse the certificates
    /// from their next handshake on; copy it to nodes that read their own `crl.pem`.
    Revoke {
        #[arg(long)]
        ca: PathBuf,
        /// Every certificate issued under this name.
        #[arg(long, required_unless_present = "serial", conflicts_with = "serial")]
        name: Option<String>,
        /// The certificate with this serial number (hex, as `issued.tsv` lists it).
        #[arg(long)]
        serial: Option<String>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        format!("unknown role {text:?}: one of storage, meta, gateway, worker, edge")
    })
}

pub fn run(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init { out } => {
            let cert = cairn_tls::init_ca(&out)?;
            println!("cairn ca init: CA certificate {}", cert.display());
            println!(
                "  the CA key {} signs every identity: keep it off the nodes",
                out.join(cairn_tls::CA_KEY_FILE_NAME).display()
            );
        }
        CaCommand::Issue {
            ca,
            name,
            role,
            out,
            ips,
            dns,
            days,
        } => {
            let mut request = cairn_tls::IssueRequest::new(name, role);
            request.ip_addresses = ips;
            request.dns_names = dns;
            request.validity_days = days;
            let issued = cairn_tls::issue(&ca, &request, &out)?;
            println!(
                "cairn ca issue: {role} identity in {} (serial {})",
                issued.dir.display(),
                issued.serial
            );
        }
        CaCommand::Revoke { ca, name, serial } => {
            let revoked = cairn_tls::revoke(&ca, name.as_deref(), serial.as_deref())?;
            println!(
                "cairn ca revoke: {} certificate(s) newly revoked; CRL {}",
                revoked.len(),
                ca.join(cairn_tls::CRL_FILE).display()
            );
            for serial in revoked {
                println!("  {serial}");
            }
        }
    }
    Ok(())
}

/// Internal-TLS options shared by every role.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InternalTlsArgs {
    /// This process's identity directory (`cairn ca issue --out`): internal RPC (storage,
    /// Raft and metadata) runs over mutual TLS under it. Taken from the cluster file with
    /// `--cluster`.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The CRL to check peers against (default: `<tls-dir>/crl.pem`); point it at the CA's
    /// `crl.pem` to follow `cairn ca revoke` without copying.
    #[arg(long, requires = "tls_dir")]
    pub tls_crl: Option<PathBuf>,
    /// Run internal RPC in PLAINTEXT, without authentication (measurements, debugging). Never
    /// the default; logged as a warning at start.
    #[arg(long, conflicts_with = "tls_dir")]
    pub insecure_plaintext_internal: bool,
    /// Keep loopback connections to a storage node, a metadata replica or a gateway's
    /// `--edge-listen` encrypted. By default a connection whose both ends are loopback addresses continues in
    /// plaintext once mutual TLS has authenticated it: loopback traffic cannot be read or
    /// injected into without root.
    #[arg(long, conflicts_with = "insecure_plaintext_internal")]
    pub encrypt_loopback: bool,
}

impl InternalTlsArgs {
    /// The identity this process runs under: `--tls-dir`, else the cluster file's, else none
    /// only with `--insecure-plaintext-internal` (anything else is refused).
    pub fn identity(
        &self,
        role: Role,
        from_cluster: Option<TlsFiles>,
    ) -> anyhow::Result<Option<Arc<Identity>>> {
        if self.insecure_plaintext_internal {
            cairn_tls::warn_insecure_plaintext(role.as_str());
            return Ok(None);
        }
        let files = match (&self.tls_dir, from_cluster) {
            (Some(dir), _) => TlsFiles {
                dir: dir.clone(),
                crl: self.tls_crl.clone(),
            },
            (None, Some(files)) => files,
            (None, None) => anyhow::bail!(
                "cairn {role}: internal traffic is mutual TLS: give --tls-dir DIR (an identity from \
                 `cairn ca issue --role {role}`), a cluster file with tls_dir, or, to run without \
                 authentication, --insecure-plaintext-internal"
            ),
        };
        load_identity(role, &files).map(Some)
    }
}

/// An internal listener's TLS under `identity` for clients of `accepted` roles, for a server
/// that implements the loopback switch (a storage node, a gateway's edge listener; metadata
/// replicas build theirs in `cairn_raft` from `MetaNodeConfig::encrypt_loopback`): its
/// loopback connections continue in plaintext after the handshake unless `encrypt_loopback`.
pub fn switching_listener_tls(
    identity: &Identity,
    accepted: &[Role],
    encrypt_loopback: bool,
) -> anyhow::Result<cairn_tls::ServerTls> {
    let tls = identity.server_tls(accepted)?;
    if encrypt_loopback {
        tracing::info!("loopback connections stay encrypted (--encrypt-loopback)");
        return Ok(tls);
    }
    Ok(tls.with_loopback_plaintext())
}

/// Loads an identity and checks it is of `role`.
pub fn load_identity(role: Role, files: &TlsFiles) -> anyhow::Result<Arc<Identity>> {
    let identity = Identity::load(files)
        .with_context(|| format!("the {role} identity in {}", files.dir.display()))?;
    anyhow::ensure!(
        identity.role() == role,
        "{} holds a {} identity; this process needs a {role} one",
        files.dir.display(),
        identity.role()
    );
    tracing::info!(%role, dir = %files.dir.display(), "internal traffic: mutual TLS");
    Ok(identity)
}

/// Identities of one `cairn dev` data directory: the CA in `<tls>/ca` (or the given one) and one identity per
/// role in `<tls>/<role>`, generated on first start.
pub fn dev_identities(
    tls_root: &Path,
    given_ca: Option<&Path>,
    roles: &[Role],
) -> anyhow::Result<Vec<Arc<Identity>>> {
    let ca = match given_ca {
        Some(ca) => {
            anyhow::ensure!(
                ca.join(cairn_tls::CA_KEY_FILE_NAME).exists(),
                "--dev-ca {}: no CA there (make one with `cairn ca init`)",
                ca.display()
            );
            ca.to_path_buf()
        }
        None => tls_root.join("ca"),
    };
    if !ca.join(cairn_tls::CA_KEY_FILE_NAME).exists() {
        cairn_tls::init_ca(&ca).context("creating the cairn dev CA")?;
    }
    roles
        .iter()
        .map(|role| {
            let dir = tls_root.join(role.as_str());
            if !dir.join(cairn_tls::KEY_FILE).exists() {
                let mut request = cairn_tls::IssueRequest::new(format!("dev-{role}"), *role);
                request.ip_addresses = vec![IpAddr::from([127, 0, 0, 1])];
                cairn_tls::issue(&ca, &request, &dir)
                    .with_context(|| format!("issuing the cairn dev {role} identity"))?;
            }
            load_identity(
                *role,
                &TlsFiles {
                    dir,
                    crl: Some(ca.join(cairn_tls::CRL_FILE)),
                },
            )
        })
        .collect()
}
