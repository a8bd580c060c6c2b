//! The rustls client configuration the backend plugins share (postgres, syslog): the ring
//! provider, the CA file as roots, and an optional client certificate and key, read from PEM
//! files with errors that name the config key (`tls.ca_file`, `tls.cert_file`,
//! `tls.key_file`) and the file.

use std::sync::Arc;

use audit_plugin_api::PluginError;
use rustls::client::WantsClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, WantsVerifier};

/// The ring provider, shared by the builder and any custom verifier.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration builder with `provider` and rustls' safe protocol versions.
///
/// # Errors
/// A fatal error if the provider supports none of them (a build problem, not a config one).
pub fn builder(
    provider: Arc<CryptoProvider>,
) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, PluginError> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PluginError::fatal(format!("TLS setup: {e}")))
}

/// The certificates of `ca_file` (config key `tls.ca_file`) as trust roots.
///
/// # Errors
/// A config error naming `tls.ca_file` and the file when it cannot be read, holds no PEM
/// certificate, or holds one that cannot be a CA.
pub fn roots(ca_file: &str) -> Result<RootCertStore, PluginError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("tls.ca_file", ca_file)? {
        roots.add(cert).map_err(|e| {
            PluginError::config(format!(
                "config `tls.ca_file`: {ca_file}: a certificate cannot be used as a CA: {e}"
            ))
        })?;
    }
    Ok(roots)
}

/// Finishes `builder` with the client certificate chain and key when both files are given
/// (`tls.cert_file`, `tls.key_file`), without client authentication otherwise.
///
/// # Errors
/// A config error naming the key and the file when one cannot be read or the key does not
/// fit the certificate.
pub fn with_client_auth(
    builder: ConfigBuilder<ClientConfig, WantsClientCert>,
    cert_file: Option<&str>,
    key_file: Option<&str>,
) -> Result<ClientConfig, PluginError> {
    let (Some(cert), Some(key)) = (cert_file, key_file) else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = read_certs("tls.cert_file", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        PluginError::config(format!(
            "config `tls.key_file`: {key}: no PEM private key read: {e}"
        ))
    })?;
    builder.with_client_auth_cert(chain, key).map_err(|e| {
        PluginError::config(format!(
            "config `tls.key_file`: does not fit tls.cert_file: {e}"
        ))
    })
}

/// The PEM certificates in `path`, named by config key `key` in errors.
///
/// # Errors
/// A config error when the file cannot be read or holds no certificate.
pub fn read_certs(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|e| {
            PluginError::config(format!(
                "config `{key}`: {path}: cannot read PEM certificates: {e}"
            ))
        })?;
    if certs.is_empty() {
        return Err(PluginError::config(format!(
            "config `{key}`: {path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_file() {
        let dir = std::env::temp_dir().join(format!("audit-plugin-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let missing = dir.join("missing.pem");
        let e = roots(missing.to_str().expect("utf-8")).expect_err("missing");
        assert!(
            e.message.contains("tls.ca_file") && e.message.contains("missing.pem"),
            "{}",
            e.message
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = read_certs("tls.cert_file", empty.to_str().expect("utf-8")).expect_err("empty");
        assert!(e.message.contains("no PEM certificate"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
