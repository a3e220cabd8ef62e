//! `tenantry-tls`: one TLS client setup for everything Tenantry connects to —
//! plugins' outbound HTTPS, the CLI's client, PostgreSQL and Redis.
//!
//! Trust is the bundled Mozilla root store (`webpki-roots`, so it works offline and
//! the same on every machine) plus the certificates of the operator's CA file
//! (`tls_ca_file`, PEM: a private CA, or a test CA). Certificates are always
//! verified; there is no switch to turn verification off. The crypto provider is
//! rustls' `ring` (no C toolchain beyond what `ring` needs, no cmake).
//!
//! This crate must not depend on any other Tenantry crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Why the trust settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {reason}; point tls_ca_file at a readable PEM file")]
    CaFile { path: PathBuf, reason: String },
    #[error("the CA file {0} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificates(PathBuf),
    #[error("a certificate in {path} is not usable as a trust anchor: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
}

/// Makes `ring` the process's default rustls provider, so libraries that build
/// their own TLS config (sqlx, redis, reqwest) find one. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM file (for the operator's CA file).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::CaFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certs = certificates_in_pem(&bytes).map_err(|reason| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates(path.to_path_buf()));
    }
    // Check them now, so a bad file fails at start-up rather than at first use.
    let mut store = RootCertStore::empty();
    for c in &certs {
        store.add(c.clone()).map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// The certificates in PEM text (other PEM sections are skipped).
pub fn certificates_in_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The bundled web PKI roots plus `extra` (the operator's CA certificates).
pub fn root_store(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // `read_ca_file` has already checked each certificate.
    let _ = store.add_parsable_certificates(extra.iter().cloned());
    store
}

/// A client config trusting [`root_store`]`(extra)`, offering `alpn` (e.g. `h2`,
/// `http/1.1`; empty for protocols without ALPN).
pub fn client_config(extra: &[CertificateDer<'static>], alpn: &[&[u8]]) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // The ring provider supports the safe defaults, so this cannot fail; fall
        // back to the process default builder if it ever did.
        .unwrap_or_else(|_| ClientConfig::builder())
        .with_root_certificates(root_store(extra))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("tenantry-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = read_ca_file(&f).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificates(_)), "{e}");
        let e = read_ca_file(&dir.join("missing.pem")).unwrap_err();
        assert!(e.to_string().contains("tls_ca_file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_bundled_roots_are_present_and_extra_anchors_are_added() {
        assert!(root_store(&[]).len() > 100);
        let c = client_config(&[], &[b"h2", b"http/1.1"]);
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
