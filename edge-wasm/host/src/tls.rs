//! TLS: the rustls server configuration (TLS 1.3 and 1.2, ALPN `http/1.1`, certificate chain and
//! private key from PEM files) and `cairn edge dev-cert` (a self-signed CA and a server
//! certificate it signs, for local use and tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("certificate generation: {0}")]
    Generate(String),
}

/// The server configuration for `cert_path` (PEM chain, leaf first) and `key_path` (PEM key).
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|error| file_error(cert_path, error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(cert_path, error.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| file_error(key_path, error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Config(error.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Files written by [`generate_dev_certificates`].
#[derive(Debug, Clone)]
pub struct DevCertificates {
    /// The CA certificate: give it to clients (`AWS_CA_BUNDLE`, boto3 `verify=`).
    pub ca_cert: PathBuf,
    /// The server certificate followed by the CA certificate (`cairn edge --tls-cert`).
    pub server_cert: PathBuf,
    /// The server's private key (`cairn edge --tls-key`), mode 0600.
    pub server_key: PathBuf,
}

/// Writes `ca.pem`, `server.pem` and `server-key.pem` into `directory`: a fresh CA and a server
/// certificate for `hostnames` (DNS names or IP addresses) signed by it. Development only: the CA
/// key is not kept, so nothing else can ever be signed with it.
pub fn generate_dev_certificates(
    directory: &Path,
    hostnames: &[String],
) -> Result<DevCertificates, TlsError> {
    let generate_error = |error: rcgen::Error| TlsError::Generate(error.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(generate_error)?;
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate_error)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Cairn edge development CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate_error)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().map_err(generate_error)?;
    let mut server_params =
        rcgen::CertificateParams::new(hostnames.to_vec()).map_err(generate_error)?;
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Cairn edge (development)");
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(generate_error)?;

    let write = |name: &str, contents: String, private: bool| -> Result<PathBuf, TlsError> {
        let path = directory.join(name);
        let file_error = |error: std::io::Error| TlsError::File {
            path: path.clone(),
            message: error.to_string(),
        };
        std::fs::create_dir_all(directory).map_err(file_error)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(file_error)?;
        std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(file_error)?;
        Ok(path)
    };
    Ok(DevCertificates {
        ca_cert: write("ca.pem", ca_cert.pem(), false)?,
        server_cert: write(
            "server.pem",
            format!("{}{}", server_cert.pem(), ca_cert.pem()),
            false,
        )?,
        server_key: write("server-key.pem", server_key.serialize_pem(), true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_load_into_a_server_config() {
        let directory = tempfile::tempdir().unwrap();
        let files =
            generate_dev_certificates(directory.path(), &["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let config = server_config(&files.server_cert, &files.server_key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(matches!(
            server_config(&files.ca_cert, &directory.path().join("missing.pem")),
            Err(TlsError::File { .. })
        ));
    }
}
