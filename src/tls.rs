//! TLS for outgoing HTTPS (Immich, an AI service behind HTTPS).
//!
//! The static binary may run where there are no CA files at all (an empty
//! chroot, a `FROM scratch` image). The system's certificates win when any
//! load, because that is where an operator adds a private CA; otherwise
//! the bundled Mozilla roots (webpki-roots) keep public HTTPS working.
//! Every `reqwest::Client` is built from [`client_builder`] so this choice
//! is made in one place.

use std::sync::{Arc, OnceLock};

use rustls::{pki_types::CertificateDer, RootCertStore};

/// Where the trusted roots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// The system's CA files (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
    /// The roots compiled into the binary.
    Bundled,
}

/// A reqwest client builder using [`client_config`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_preconfigured_tls((*client_config()).clone())
}

/// Loaded once: reading the system's CA files takes milliseconds.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!(error = %e, "a system certificate could not be loaded");
            }
            let (roots, source) = roots(native.certs);
            tracing::debug!(?source, roots = roots.len(), "TLS trust roots");
            Arc::new(config_with(roots))
        })
        .clone()
}

/// The system's roots when any of them parse, else the bundled ones.
pub fn roots(system: Vec<CertificateDer<'static>>) -> (RootCertStore, RootSource) {
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(system);
    if added > 0 {
        return (store, RootSource::System);
    }
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    (store, RootSource::Bundled)
}

fn config_with(roots: RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_system_certificates_fall_back_to_bundled_roots() {
        let (store, source) = roots(vec![]);
        assert_eq!(source, RootSource::Bundled);
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(store.len() > 100);
    }

    #[test]
    fn unparsable_system_certificates_fall_back_too() {
        let junk = CertificateDer::from(b"not a certificate".to_vec());
        let (_, source) = roots(vec![junk]);
        assert_eq!(source, RootSource::Bundled);
    }

    #[test]
    fn a_client_builds_with_the_shared_config() {
        client_builder()
            .build()
            .expect("reqwest takes the rustls config");
    }
}
