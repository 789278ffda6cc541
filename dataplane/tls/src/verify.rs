//! Certificate verifiers: rustls's WebPKI verifiers, rebuilt whenever the CRL file changes, plus
//! the role check of client certificates.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::{CRL_RECHECK, Role, TlsError, file_error};

type Crls = Arc<Vec<CertificateRevocationListDer<'static>>>;

/// The CRL as it is on disk, re-read when the file changes.
pub(crate) struct Revocation {
    path: Option<PathBuf>,
    state: Mutex<RevocationState>,
    /// What [`Revocation::generation`] reads without the lock: the generation in force, and
    /// (in milliseconds since `started`) when the file is due to be looked at again.
    started: Instant,
    generation: AtomicU64,
    next_check_ms: AtomicU64,
}

struct RevocationState {
    modified: Option<SystemTime>,
    checked_at: Instant,
    generation: u64,
    crls: Crls,
}

fn read_crls(
    path: &std::path::Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|error| file_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(path, error))
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

impl Revocation {
    pub(crate) fn load(path: Option<PathBuf>) -> Result<Revocation, TlsError> {
        let (crls, modified) = match &path {
            Some(path) => (read_crls(path)?, modified(path)),
            None => (Vec::new(), None),
        };
        let started = Instant::now();
        Ok(Revocation {
            path,
            state: Mutex::new(RevocationState {
                modified,
                checked_at: started,
                generation: 0,
                crls: Arc::new(crls),
            }),
            started,
            generation: AtomicU64::new(0),
            next_check_ms: AtomicU64::new(CRL_RECHECK.as_millis() as u64),
        })
    }

    /// The generation of the CRLs in force, as [`Revocation::current`] gives it, without taking
    /// the lock until the file is due to be looked at again (the per-request path of
    /// `PeerCheck`).
    pub(crate) fn generation(&self) -> u64 {
        let now_ms = self.started.elapsed().as_millis() as u64;
        if now_ms < self.next_check_ms.load(Ordering::Acquire) {
            return self.generation.load(Ordering::Acquire);
        }
        self.current().0
    }

    /// The CRLs in force and their generation (which changes whenever they are re-read).
    pub(crate) fn current(&self) -> (u64, Crls) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(path) = &self.path
            && state.checked_at.elapsed() >= CRL_RECHECK
        {
            state.checked_at = Instant::now();
            let now_modified = modified(path);
            if now_modified != state.modified {
                match read_crls(path) {
                    Ok(crls) => {
                        tracing::info!(path = %path.display(), entries = crls.len(), "certificate revocation list reloaded");
                        state.crls = Arc::new(crls);
                        state.modified = now_modified;
                        state.generation += 1;
                    }
                    // A half-written or damaged file: keep the last good list (and try again
                    // at the next check), never fall back to no revocation at all.
                    Err(error) => {
                        tracing::error!(%error, "certificate revocation list unreadable; keeping the previous one")
                    }
                }
            }
        }
        self.generation.store(state.generation, Ordering::Release);
        let next_check = state.checked_at.duration_since(self.started) + CRL_RECHECK;
        self.next_check_ms
            .store(next_check.as_millis() as u64, Ordering::Release);
        (state.generation, Arc::clone(&state.crls))
    }
}

/// The role named by a certificate's `<role>.role.cairn` subject-alternative name, if any.
pub(crate) fn role_of(certificate: &CertificateDer<'_>) -> Option<Role> {
    let parsed = ParsedCertificate::try_from(certificate).ok()?;
    Role::ALL
        .into_iter()
        .find(|role| verify_server_name(&parsed, &role.server_name()).is_ok())
}

fn has_any_role(certificate: &CertificateDer<'_>, roles: &[Role]) -> bool {
    let Ok(parsed) = ParsedCertificate::try_from(certificate) else {
        return false;
    };
    roles
        .iter()
        .any(|role| verify_server_name(&parsed, &role.server_name()).is_ok())
}

/// Checks a process's own chain against its CA and CRL, as its peers will.
pub(crate) fn check_own_certificate(
    roots: &Arc<RootCertStore>,
    revocation: &Arc<Revocation>,
    chain: &[CertificateDer<'static>],
) -> Result<(), rustls::Error> {
    let role = role_of(&chain[0]).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::NotValidForName,
    ))?;
    let verifier =
        ServerVerifier::new(Arc::clone(roots), Arc::clone(revocation), crate::provider());
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &role.server_name(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

/// Rebuilds the inner verifier whenever the CRL generation changes.
struct Cached<T: ?Sized> {
    generation: u64,
    verifier: Arc<T>,
}

/// Verifies client certificates on internal listeners: chain to the cluster CA, not revoked
/// (end entity; the CA itself is trusted as configured), and of an accepted role.
pub(crate) struct ClientVerifier {
    roots: Arc<RootCertStore>,
    revocation: Arc<Revocation>,
    accepted: Vec<Role>,
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
    cached: Mutex<Option<Cached<dyn ClientCertVerifier>>>,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientVerifier")
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

impl ClientVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        revocation: Arc<Revocation>,
        accepted: Vec<Role>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        let hints = roots.subjects();
        ClientVerifier {
            roots,
            revocation,
            accepted,
            provider,
            hints,
            cached: Mutex::new(None),
        }
    }

    fn inner(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        let (generation, crls) = self.revocation.current();
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(cached) = cached.as_ref()
            && cached.generation == generation
        {
            return Ok(Arc::clone(&cached.verifier));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&self.roots),
            Arc::clone(&self.provider),
        )
        .with_crls(crls.iter().cloned())
        .only_check_end_entity_revocation()
        .build()
        .map_err(|error| rustls::Error::General(error.to_string()))?;
        *cached = Some(Cached {
            generation,
            verifier: Arc::clone(&verifier),
        });
        Ok(verifier)
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(error) = self
            .inner()?
            .verify_client_cert(end_entity, intermediates, now)
        {
            tracing::warn!(%error, "refused a client certificate");
            return Err(error);
        }
        if !has_any_role(end_entity, &self.accepted) {
            tracing::warn!(
                role = ?role_of(end_entity),
                accepted = ?self.accepted,
                "refused a client certificate of a role this listener does not serve"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verifies internal servers' certificates: chain to the cluster CA, not revoked, valid for
/// the role name the client dialled.
pub(crate) struct ServerVerifier {
    roots: Arc<RootCertStore>,
    revocation: Arc<Revocation>,
    provider: Arc<CryptoProvider>,
    cached: Mutex<Option<Cached<WebPkiServerVerifier>>>,
}

impl std::fmt::Debug for ServerVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServerVerifier")
            .finish_non_exhaustive()
    }
}

impl ServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        revocation: Arc<Revocation>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        ServerVerifier {
            roots,
            revocation,
            provider,
            cached: Mutex::new(None),
        }
    }

    fn inner(&self) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
        let (generation, crls) = self.revocation.current();
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(cached) = cached.as_ref()
            && cached.generation == generation
        {
            return Ok(Arc::clone(&cached.verifier));
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::clone(&self.roots),
            Arc::clone(&self.provider),
        )
        .with_crls(crls.iter().cloned())
        .only_check_end_entity_revocation()
        .build()
        .map_err(|error| rustls::Error::General(error.to_string()))?;
        *cached = Some(Cached {
            generation,
            verifier: Arc::clone(&verifier),
        });
        Ok(verifier)
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
