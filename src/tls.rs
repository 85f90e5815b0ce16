//! TLS material, both ways: the listener's certificate (swapped in place on reload) and the
//! trust roots vidgate verifies `https://` origins with.
//!
//! Everything here uses rustls with the *ring* provider, chosen explicitly rather than through
//! the process-wide default, so that no other crate in a build can change what vidgate speaks.
//!
//! - [`Identity`] parses a PEM certificate chain and its private key and checks that they
//!   belong together, so that `check-config` refuses a mismatched pair before anything starts.
//! - [`CertSlot`] holds the current [`Identity`]; the listener's [`server_config`] asks it on
//!   every handshake, so a reload takes effect for the next handshake and never touches a
//!   connection already open.
//! - [`origin_client_config`] trusts either exactly the configured CA (`proxy.upstream_ca`)
//!   or the bundled Mozilla roots plus the system's.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, InconsistentKeys, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocols the listener offers, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider of every TLS configuration vidgate builds.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain with its private key, checked to match.
#[derive(Clone)]
pub struct Identity {
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Parse `cert_pem` (the leaf first, then intermediates) and `key_pem` (PKCS#8, PKCS#1 or
    /// SEC1). The error is one sentence for the config error of `proxy.tls_cert` or
    /// `proxy.tls_key`, naming which of the two is at fault.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, IdentityError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| IdentityError::Cert(format!("cannot parse the PEM certificates: {e}")))?;
        if chain.is_empty() {
            return Err(IdentityError::Cert("holds no CERTIFICATE block".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| IdentityError::Key(format!("cannot parse the PEM private key: {e}")))?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| IdentityError::Key(format!("cannot be used: {e}")))?;
        let key = CertifiedKey::new(chain, signing_key);
        match key.keys_match() {
            // A key type whose public half rustls cannot compare: the handshake will tell.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(IdentityError::Key(
                    "is not the private key of the first certificate in proxy.tls_cert".into(),
                ))
            }
            Err(other) => {
                return Err(IdentityError::Cert(format!(
                    "holds a first certificate that cannot be used: {other}"
                )))
            }
        }
        Ok(Identity { key: Arc::new(key) })
    }
}

/// Why a certificate and key pair cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate chain is at fault.
    #[error("{0}")]
    Cert(String),
    /// The private key is at fault (unreadable, or not the certificate's).
    #[error("{0}")]
    Key(String),
}

/// The listener's current certificate. Cheap to share; [`CertSlot::replace`] takes effect on
/// the next handshake.
pub struct CertSlot {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSlot").finish_non_exhaustive()
    }
}

impl CertSlot {
    /// A slot holding `identity`.
    pub fn new(identity: Identity) -> Arc<CertSlot> {
        Arc::new(CertSlot {
            current: ArcSwap::new(identity.key),
        })
    }

    /// Serve `identity` from the next handshake on.
    pub fn replace(&self, identity: Identity) {
        self.current.store(identity.key);
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The listener's TLS configuration: TLS 1.2 and 1.3, no client certificates, ALPN `h2` then
/// `http/1.1`, and the certificate in `slot`.
pub fn server_config(slot: Arc<CertSlot>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The roots an `https://` origin's certificate is verified against.
#[derive(Debug, Clone)]
pub struct OriginRoots {
    roots: Arc<RootCertStore>,
    /// What the roots are, for the start-up log line.
    pub describe: String,
}

impl OriginRoots {
    /// Exactly the certificates of `ca_pem` (`proxy.upstream_ca`): a private CA, or a pinned
    /// self-signed origin. The error is one sentence for the config error.
    pub fn from_pem(ca_pem: &str) -> Result<OriginRoots, String> {
        let mut roots = RootCertStore::empty();
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("cannot parse the PEM certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("holds a certificate that cannot be a root: {e}"))?;
            count += 1;
        }
        if count == 0 {
            return Err("holds no CERTIFICATE block".into());
        }
        Ok(OriginRoots {
            roots: Arc::new(roots),
            describe: format!("the {count} certificate(s) of proxy.upstream_ca"),
        })
    }

    /// No roots at all: verifies nothing, for a client that never speaks TLS.
    pub(crate) fn none() -> OriginRoots {
        OriginRoots {
            roots: Arc::new(RootCertStore::empty()),
            describe: "no roots".into(),
        }
    }

    /// The Mozilla roots bundled in the binary (so a slim image without a CA bundle works),
    /// plus whatever the system trusts (so a CA installed on the machine works too). System
    /// certificates that cannot be read or parsed are skipped with a warning.
    pub fn public() -> OriginRoots {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let bundled = roots.len();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "cannot read a system CA certificate; skipping it");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::warn!(
                ignored,
                "system CA certificates that do not parse were skipped"
            );
        }
        OriginRoots {
            roots: Arc::new(roots),
            describe: format!("{bundled} bundled Mozilla roots and {added} system roots"),
        }
    }
}

/// The client configuration for an `https://` origin: the ring provider, TLS 1.2 and 1.3,
/// verification against `roots`. ALPN is set by the connector (`h2` only when
/// `proxy.upstream_http2` asks for it).
pub fn origin_client_config(roots: &OriginRoots) -> Result<ClientConfig, rustls::Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.roots.clone())
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> (String, String) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (cert.pem(), signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_a_foreign_key_is_refused_naming_the_key() {
        let (cert, key) = self_signed("localhost");
        let (_, other_key) = self_signed("localhost");
        assert!(Identity::from_pem(&cert, &key).is_ok());
        let error = Identity::from_pem(&cert, &other_key).unwrap_err();
        assert!(matches!(error, IdentityError::Key(_)), "{error:?}");
        assert!(error.to_string().contains("not the private key"), "{error}");
    }

    #[test]
    fn garbage_is_refused_naming_the_file_at_fault() {
        let (cert, key) = self_signed("localhost");
        assert!(matches!(
            Identity::from_pem("", &key),
            Err(IdentityError::Cert(_))
        ));
        assert!(matches!(
            Identity::from_pem(&key, &key),
            Err(IdentityError::Cert(_))
        ));
        assert!(matches!(
            Identity::from_pem(&cert, &cert),
            Err(IdentityError::Key(_))
        ));
        let broken = cert.replace("MII", "M!I");
        assert!(Identity::from_pem(&broken, &key).is_err());
    }

    #[test]
    fn origin_roots_need_at_least_one_certificate() {
        let (cert, key) = self_signed("origin.internal");
        let roots = OriginRoots::from_pem(&cert).unwrap();
        assert!(
            roots.describe.contains("1 certificate"),
            "{}",
            roots.describe
        );
        assert!(OriginRoots::from_pem(&key).is_err());
        assert!(OriginRoots::from_pem("").is_err());
        assert!(origin_client_config(&roots).is_ok());
    }

    #[test]
    fn the_listener_offers_h2_then_http1() {
        let (cert, key) = self_signed("localhost");
        let config =
            server_config(CertSlot::new(Identity::from_pem(&cert, &key).unwrap())).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
