//! `rtmps://`: RTMP inside TLS (what Facebook Live and other platforms require for ingest).
//!
//! The server's certificate is checked against the URL's host with rustls (ring provider,
//! TLS 1.2 and 1.3) and the operating system's trust store (Debian: `ca-certificates`), plus
//! optionally the CAs of one PEM file, so that a receiver with a self-signed or private-CA
//! certificate can be used. There is no switch to skip verification.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::RtmpError;

/// A TLS client configuration for `rtmps://` trusting the system's roots and, when
/// `extra_ca_file` is given, every certificate of that PEM file as well.
///
/// Errors: [`RtmpError::Tls`] when the file cannot be read or holds no certificate, or when
/// no trust anchor at all could be loaded.
pub fn tls_config(extra_ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, RtmpError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "system trust store entry skipped");
    }
    let (_, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "unparsable system root certificates skipped");
    }
    if let Some(path) = extra_ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| RtmpError::Tls(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(RtmpError::Tls(format!(
                "CA file {}: no PEM certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| RtmpError::Tls(format!("CA file {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(RtmpError::Tls(
            "no trusted CA certificate (install ca-certificates or set a CA file)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RtmpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The configuration used when a publisher is given none: the system's roots only, loaded
/// once per process.
pub(crate) fn default_config() -> Result<Arc<ClientConfig>, RtmpError> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| tls_config(None).map_err(|e| e.to_string()))
        .clone()
        .map_err(RtmpError::Tls)
}

/// Runs the TLS handshake over `socket` for `host` (a DNS name or an IP address).
///
/// Errors: [`RtmpError::Tls`] for a certificate or protocol failure (with rustls' reason, e.g.
/// `invalid peer certificate: UnknownIssuer`), [`RtmpError::Io`] when the socket fails.
pub(crate) async fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    socket: TcpStream,
) -> Result<TlsStream<TcpStream>, RtmpError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| RtmpError::Tls(format!("{host:?} is not a valid server name")))?;
    TlsConnector::from(config)
        .connect(name, socket)
        .await
        .map_err(|e| {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => RtmpError::Tls(tls.to_string()),
                None => RtmpError::Io(e),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_cannot_be_used_is_a_tls_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("bifrons-rtmp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = tls_config(Some(&missing)).unwrap_err();
        assert!(
            matches!(&e, RtmpError::Tls(m) if m.contains("missing.pem")),
            "{e}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls_config(Some(&empty)).unwrap_err();
        assert!(
            matches!(&e, RtmpError::Tls(m) if m.contains("no PEM certificate")),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
