//! TLS to upstreams (`https://` integration URIs): rustls client configs with the ring
//! provider, verifying against the system trust store or a configured CA file, or (lab use
//! only) not at all. Built when a config is compiled; connecting happens in `upstream::connect`.

use monoio_rustls::TlsConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::default_provider;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Where the system's trust store usually is (Debian/Ubuntu first), unless SSL_CERT_FILE says.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How one upstream is reached over TLS.
pub struct UpstreamTls {
    pub connector: TlsConnector,
    /// SNI and the name the certificate must be valid for.
    pub server_name: ServerName<'static>,
    /// Identity of the settings, so a reload keeps pooled connections only when unchanged.
    pub settings: String,
}

/// Settings of `tls = { ... }` on an integration or upstream group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<String>,
    pub insecure_skip_verification: bool,
    /// Overrides the URI's host for SNI and verification.
    pub server_name: Option<String>,
}

impl TlsSettings {
    /// What identifies these settings for `host` (equal identities share an upstream entry).
    pub fn identity(&self, host: &str) -> String {
        format!(
            "sni={} ca={} verify={}",
            self.server_name.as_deref().unwrap_or(host),
            self.ca_file.as_deref().unwrap_or("(system)"),
            !self.insecure_skip_verification
        )
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}
impl Eq for UpstreamTls {}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.settings)
    }
}

/// The TLS side of an upstream on `host` (its own client config, so its own session cache).
pub fn upstream(host: &str, s: &TlsSettings) -> Result<UpstreamTls, String> {
    let name = s.server_name.as_deref().unwrap_or(host);
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|_| format!("'{name}' is not a valid TLS server name"))?;
    let cfg = client_config(s)?;
    Ok(UpstreamTls { connector: TlsConnector::from(cfg), server_name, settings: s.identity(host) })
}

/// Whether a client config can be built with these settings (the CA file is usable).
pub fn check(s: &TlsSettings) -> Result<(), String> {
    client_config(s).map(|_| ())
}

/// A verifying client config on the system trust store (`SSL_CERT_FILE`, else the usual
/// bundle paths), for ringway's own HTTPS fetches (JWKS).
pub(crate) fn system_client_config() -> Result<Arc<ClientConfig>, String> {
    client_config(&TlsSettings::default())
}

fn client_config(s: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut cfg = if s.insecure_skip_verification {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider))).with_no_client_auth()
    } else {
        builder.with_root_certificates(roots(s.ca_file.as_deref())?).with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The CA file's certificates, or the system trust store.
fn roots(ca_file: Option<&str>) -> Result<RootCertStore, String> {
    let path = match ca_file {
        Some(p) => p.to_string(),
        None => std::env::var("SSL_CERT_FILE")
            .ok()
            .filter(|p| Path::new(p).is_file())
            .or_else(|| SYSTEM_BUNDLES.iter().find(|p| Path::new(p).is_file()).map(|p| p.to_string()))
            .ok_or("no system trust store found (install ca-certificates, or set tls.ca_file)")?,
    };
    let text = std::fs::read(&path).map_err(|e| format!("cannot read CA file {path}: {e}"))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| format!("{path}: not a PEM certificate file: {e}"))?;
        // A bundle may hold certificates webpki cannot use; skip those, as other clients do.
        let _ = store.add(cert);
    }
    if store.is_empty() {
        return Err(format!("{path}: no usable CA certificate"));
    }
    Ok(store)
}

/// `insecure_skip_verification`: any certificate is accepted (the handshake signatures are
/// still checked, so the session is at least bound to the key the server presented).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let s = TlsSettings { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let e = upstream("example.com", &s).err().unwrap();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn server_names_are_checked_and_identify_the_settings() {
        let s = TlsSettings { insecure_skip_verification: true, ..Default::default() };
        let a = upstream("a.example", &s).unwrap();
        assert!(upstream("not a name", &s).is_err());
        assert_eq!(a, upstream("a.example", &s).unwrap());
        assert_ne!(a, upstream("b.example", &s).unwrap());
        assert!(upstream("127.0.0.1", &s).is_ok(), "an IP address is a valid server name");
    }
}
