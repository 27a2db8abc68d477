//! TLS listeners: certificates read from PEM files and chosen by SNI, rustls with the ring
//! provider, TLS 1.2 and 1.3, ALPN `http/1.1`. Built when a config is compiled (a reload
//! re-reads the files). Session ticket keys and the session-ID cache are process-wide, so
//! resumption works across workers and survives reloads. Handshakes only; no request path.

use rustls::crypto::ring::{default_provider, Ticketer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One certificate of a TLS listener.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Names it serves (`*.example.com` allowed); empty: only as the default.
    pub server_names: Vec<String>,
}

/// Which part of a `CertFiles` a loading error is about.
#[derive(Debug, PartialEq, Eq)]
pub enum Culprit {
    Cert,
    Key,
}

/// Loads every certificate and builds the listener's rustls config. The first certificate
/// is the default for clients that send no SNI or an unknown name (as nginx's first server).
pub fn server_config(certs: &[CertFiles], tls13_only: bool) -> Result<Arc<ServerConfig>, (usize, Culprit, String)> {
    let provider = Arc::new(default_provider());
    let mut sni = Sni::default();
    for (i, c) in certs.iter().enumerate() {
        let key = load_key(&c.key, &provider).map_err(|m| (i, Culprit::Key, m))?;
        let chain = load_chain(&c.cert).map_err(|m| (i, Culprit::Cert, m))?;
        let ck = CertifiedKey::new(chain, key);
        if let Err(e) = ck.keys_match() {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => "does not match the certificate".to_string(),
                e => format!("cannot be checked against the certificate: {e}"),
            };
            return Err((i, Culprit::Key, format!("{}: the private key {why} {}", c.key.display(), c.cert.display())));
        }
        for n in &c.server_names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(suffix) => sni.wildcard.entry(suffix.to_string()).or_insert(i),
                None => sni.exact.entry(n).or_insert(i),
            };
        }
        sni.keys.push(Arc::new(ck));
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls13_only { &[&rustls::version::TLS13] } else { &[&rustls::version::TLS13, &rustls::version::TLS12] };
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| (0, Culprit::Cert, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(sni));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (tickets, sessions) = resumption();
    cfg.ticketer = tickets;
    cfg.session_storage = sessions;
    // One ticket per full handshake: a client resumes one connection at a time.
    cfg.send_tls13_tickets = 1;
    Ok(Arc::new(cfg))
}

/// Process-wide ticket keys (rotated every 6 hours by rustls) and TLS 1.2 session cache.
fn resumption() -> (Arc<dyn ProducesTickets>, Arc<dyn StoresServerSessions>) {
    static STATE: OnceLock<(Arc<dyn ProducesTickets>, Arc<dyn StoresServerSessions>)> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let tickets = Ticketer::new().expect("the system random generator works");
            (tickets, ServerSessionMemoryCache::new(10_000))
        })
        .clone()
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read certificate {}: {e}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE block in the file", path.display()));
    }
    Ok(chain)
}

fn load_key(
    path: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<dyn rustls::sign::SigningKey>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read private key {}: {e}", path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| format!("{}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", path.display()))?;
    provider.key_provider.load_private_key(key).map_err(|e| format!("{}: unsupported private key: {e}", path.display()))
}

/// Chooses the certificate by the client's SNI name: exact, then `*.` wildcard (one label),
/// then the first certificate.
#[derive(Debug, Default)]
struct Sni {
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    keys: Vec<Arc<CertifiedKey>>,
}

impl Sni {
    fn pick(&self, name: Option<&str>) -> usize {
        let Some(name) = name else { return 0 };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&name) {
            return i;
        }
        match name.split_once('.') {
            Some((_, parent)) => self.wildcard.get(parent).copied().unwrap_or(0),
            None => 0,
        }
    }
}

impl ResolvesServerCert for Sni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys.get(self.pick(hello.server_name())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_prefers_exact_then_wildcard_then_the_first() {
        let mut s = Sni::default();
        s.exact.insert("api.example.com".into(), 1);
        s.exact.insert("example.com".into(), 2);
        s.wildcard.insert("example.com".into(), 3);
        assert_eq!(s.pick(Some("api.example.com")), 1);
        assert_eq!(s.pick(Some("API.Example.COM.")), 1);
        assert_eq!(s.pick(Some("example.com")), 2);
        assert_eq!(s.pick(Some("www.example.com")), 3);
        // A wildcard covers one label only.
        assert_eq!(s.pick(Some("a.b.example.com")), 0);
        assert_eq!(s.pick(Some("other.org")), 0);
        assert_eq!(s.pick(None), 0);
    }

    #[test]
    fn missing_files_name_the_file() {
        let files =
            [CertFiles { cert: "/nonexistent/c.pem".into(), key: "/nonexistent/k.pem".into(), server_names: vec![] }];
        let (i, culprit, msg) = server_config(&files, false).unwrap_err();
        assert_eq!((i, culprit), (0, Culprit::Key));
        assert!(msg.contains("/nonexistent/k.pem"), "{msg}");
    }
}
