//! libpq's `sslmode` / `sslrootcert` / `sslcert` / `sslkey` on top of rustls.
//!
//! [`plan`] decides, without I/O beyond "does this file exist", what connecting will do; it
//! follows libpq (see docs/connections.md for the table):
//!
//! * `disable`: plaintext only.
//! * `allow`: plaintext first; TLS if the server refuses the plaintext connection.
//! * `prefer` (the default): TLS if the server offers it; plaintext if it does not or the
//!   handshake fails.
//! * `require`: TLS only. The certificate is not checked, unless the root certificate file
//!   exists: then, as libpq does, the chain is checked as with `verify-ca`.
//! * `verify-ca`: TLS, the chain checked against the root certificate file (`sslrootcert`,
//!   default `~/.postgresql/root.crt`, which must exist); not the host name.
//! * `verify-full`: also the host name (or IP address) against the certificate.
//! * `sslrootcert=system`: the webpki (Mozilla) roots; `sslmode` defaults to `verify-full`
//!   and any other mode is an error (libpq 16).
//! * Unix sockets never use TLS, whatever `sslmode` says (libpq ignores it there).
//!
//! [`client_config`] then reads the files and builds the rustls configuration.

use super::conninfo::SslParams;
use super::LibpqEnv;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext, else TLS.
    Allow,
    /// TLS, else plaintext.
    Prefer,
    /// TLS, certificate not checked (unless a root certificate file exists).
    Require,
    /// TLS, chain checked.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    /// From the libpq spelling.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// One connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// No TLS.
    Plain,
    /// TLS if the server offers it (rust-postgres `prefer`).
    TlsIfOffered,
    /// TLS or fail (rust-postgres `require`).
    TlsRequired,
}

/// How the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Not at all (the handshake signature still is).
    Nothing,
    /// The chain up to a root, not the name.
    Chain,
    /// The chain and the host name.
    ChainAndName,
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// `sslrootcert=system`: the webpki (Mozilla) roots compiled in.
    System,
}

/// What connecting will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPlan {
    /// The effective sslmode.
    pub mode: SslMode,
    /// The attempts, in order; a later one runs only when the earlier one failed in the way
    /// libpq retries on (see [`crate::db`]).
    pub attempts: Vec<Attempt>,
    /// Certificate checks.
    pub verify: Verify,
    /// Trusted roots, when checking.
    pub roots: Option<Roots>,
    /// The root certificate setting, for messages (`system`, a path, or `none`).
    pub rootcert_shown: String,
    /// Client certificate and key files.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A TLS setting that cannot work; the connection is not attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// Not one of the six modes.
    #[error("invalid sslmode value: \"{0}\"")]
    BadMode(String),
    /// `sslrootcert=system` with anything weaker than verify-full.
    #[error("weak sslmode \"{0}\" may not be used with sslrootcert=system (use \"verify-full\")")]
    WeakWithSystem(String),
    /// verify-ca/verify-full without the root certificate file.
    #[error("root certificate file \"{}\" does not exist (sslmode={mode})", .path.display())]
    RootCertMissing {
        /// The file.
        path: PathBuf,
        /// The mode.
        mode: String,
    },
    /// verify-ca/verify-full, no `sslrootcert` and no home directory to find the default.
    #[error("no home directory to locate the root certificate file ~/.postgresql/root.crt (sslmode={0})")]
    NoHome(String),
    /// A client certificate without its key.
    #[error("certificate present, but not private key file \"{}\"", .0.display())]
    KeyMissing(PathBuf),
    /// verify-full with only `hostaddr`.
    #[error("host name must be specified for a verified SSL connection (sslmode=verify-full with only hostaddr)")]
    NoHostName,
    /// A file that cannot be read or holds nothing usable.
    #[error("{what} \"{}\": {reason}", .path.display())]
    File {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

impl TlsConfigError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            TlsConfigError::BadMode(_) => {
                "sslmode is one of disable, allow, prefer, require, verify-ca, verify-full".into()
            }
            TlsConfigError::WeakWithSystem(_) => {
                "with the public roots anyone can get a certificate for a host name they control, so only verify-full is allowed; give your CA with sslrootcert=PATH for verify-ca".into()
            }
            TlsConfigError::RootCertMissing { .. } | TlsConfigError::NoHome(_) => {
                "either provide the file (the CA certificate that signed the server's, in PEM), use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification".into()
            }
            TlsConfigError::KeyMissing(_) => {
                "give the client key with sslkey=PATH (or PGSSLKEY), next to sslcert".into()
            }
            TlsConfigError::NoHostName => {
                "add host=NAME (the name in the server certificate) next to hostaddr".into()
            }
            TlsConfigError::File { .. } => {
                "the file must be readable and hold PEM (-----BEGIN CERTIFICATE----- / -----BEGIN PRIVATE KEY-----)".into()
            }
            TlsConfigError::Rustls(_) => "check sslcert and sslkey".into(),
        }
    }
}

/// Decides what connecting does. `unix_only`: every host is a socket directory;
/// `hostaddr_only`: no host names, only `hostaddr`; `exists` tells whether a file exists.
pub fn plan(
    ssl: &SslParams,
    env: &LibpqEnv,
    unix_only: bool,
    hostaddr_only: bool,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<TlsPlan, TlsConfigError> {
    let rootcert = ssl
        .rootcert
        .clone()
        .or_else(|| env.sslrootcert.clone())
        .filter(|r| !r.is_empty());
    let system = rootcert.as_deref() == Some("system");
    let mode_text = ssl.mode.clone().or_else(|| env.sslmode.clone());
    let mode = match &mode_text {
        Some(m) => SslMode::parse(m).ok_or_else(|| TlsConfigError::BadMode(m.clone()))?,
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system && mode != SslMode::VerifyFull {
        return Err(TlsConfigError::WeakWithSystem(mode.as_str().into()));
    }
    let home_file = |name: &str| env.home.as_ref().map(|h| h.join(".postgresql").join(name));
    let plain = TlsPlan {
        mode,
        attempts: vec![Attempt::Plain],
        verify: Verify::Nothing,
        roots: None,
        rootcert_shown: "none".into(),
        client: None,
    };
    if unix_only || mode == SslMode::Disable {
        return Ok(plain);
    }
    if hostaddr_only && mode == SslMode::VerifyFull {
        return Err(TlsConfigError::NoHostName);
    }
    let attempts = match mode {
        SslMode::Disable => unreachable!("returned above"),
        SslMode::Allow => vec![Attempt::Plain, Attempt::TlsRequired],
        SslMode::Prefer => vec![Attempt::TlsIfOffered, Attempt::Plain],
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => vec![Attempt::TlsRequired],
    };
    let (roots, rootcert_shown) = if system {
        (Some(Roots::System), "system".to_string())
    } else {
        let path = match rootcert
            .map(PathBuf::from)
            .or_else(|| home_file("root.crt"))
        {
            Some(p) => p,
            None if mode.verifies() => return Err(TlsConfigError::NoHome(mode.as_str().into())),
            None => PathBuf::new(),
        };
        if !path.as_os_str().is_empty() && exists(&path) {
            let shown = path.display().to_string();
            (Some(Roots::File(path)), shown)
        } else if mode.verifies() {
            return Err(TlsConfigError::RootCertMissing {
                path,
                mode: mode.as_str().into(),
            });
        } else {
            (None, "none".to_string())
        }
    };
    let verify = match (&roots, mode) {
        (None, _) => Verify::Nothing,
        (Some(_), SslMode::VerifyFull) => Verify::ChainAndName,
        // libpq: a root certificate file that exists makes allow/prefer/require check the chain.
        (Some(_), _) => Verify::Chain,
    };
    let cert = ssl
        .cert
        .clone()
        .or_else(|| env.sslcert.clone())
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_file("postgresql.crt"));
    // libpq: a certificate file that does not exist means no client certificate.
    let client = match cert.filter(|c| exists(c)) {
        None => None,
        Some(cert) => {
            let key = ssl
                .key
                .clone()
                .or_else(|| env.sslkey.clone())
                .filter(|k| !k.is_empty())
                .map(PathBuf::from)
                .or_else(|| home_file("postgresql.key"))
                .unwrap_or_default();
            if key.as_os_str().is_empty() || !exists(&key) {
                return Err(TlsConfigError::KeyMissing(key));
            }
            Some((cert, key))
        }
    };
    Ok(TlsPlan {
        mode,
        attempts,
        verify,
        roots,
        rootcert_shown,
        client,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The connector for a plan (reads the certificate files).
pub(crate) fn connector(plan: &TlsPlan) -> Result<MakeRustlsConnect, TlsConfigError> {
    if plan.roots == Some(Roots::System) {
        // tokio-postgres-rustls holds the webpki roots; its constructor uses the process-wide
        // provider, and takes no client certificate.
        if let Some((cert, _)) = &plan.client {
            return Err(file_error(
                "client certificate",
                cert,
                "sslrootcert=system cannot be combined with a client certificate yet; give the CA file with sslrootcert=PATH instead",
            ));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        return Ok(MakeRustlsConnect::with_webpki_roots());
    }
    client_config(plan).map(MakeRustlsConnect::new)
}

/// Builds the rustls configuration for a plan (reads the certificate files); not for
/// `sslrootcert=system` (see [`connector`]).
fn client_config(plan: &TlsPlan) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (&plan.roots, plan.verify) {
        (None, _) | (_, Verify::Nothing) => Arc::new(AcceptAnyCertificate {
            provider: provider.clone(),
        }),
        (Some(roots), verify) => {
            let store = match roots {
                Roots::System => {
                    return Err(TlsConfigError::Rustls(
                        "system roots go through connector()".into(),
                    ))
                }
                Roots::File(path) => load_roots(path)?,
            };
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            if verify == Verify::ChainAndName {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &plan.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| file_error("could not read certificate file", cert, e))?;
            if certs.is_empty() {
                return Err(file_error(
                    "could not read certificate file",
                    cert,
                    "no certificate in it",
                ));
            }
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_error("could not load private key file", key, e))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))
        }
    }
}

fn file_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError::File {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsConfigError> {
    let what = "could not read root certificate file";
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(what, path, e))?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(file_error(what, path, "no usable certificate in it"));
    }
    Ok(store)
}

/// `require` without a root certificate: any certificate (libpq does the same); the handshake
/// signature is still verified, so the key exchange is with the certificate's key holder.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the webpki verifier, except that a certificate for another name is accepted.
/// webpki checks the chain before the name, so a name error means the chain is good.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls error inside a connection error's source chain (tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips it).
pub(crate) fn find_rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = find_rustls_error(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// A TLS failure, in words, and what to do about it.
pub(crate) fn describe_tls_failure(
    e: &rustls::Error,
    plan: &TlsPlan,
    host: &str,
) -> (String, String) {
    let settings = format!(
        "(sslmode={}, sslrootcert={})",
        plan.mode.as_str(),
        plan.rootcert_shown
    );
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let (what, hint) = match c {
                CertificateError::UnknownIssuer => (
                    "the server's certificate is not signed by a trusted CA".to_string(),
                    format!(
                        "the server's certificate chain does not lead to a certificate in {}: put the CA certificate that signed the server's there (managed PostgreSQL providers publish theirs), or use sslrootcert=system for a publicly trusted certificate",
                        plan.rootcert_shown
                    ),
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => (
                    c.to_string(),
                    format!("connect with a host name the certificate lists instead of {host:?}, or use sslmode=verify-ca to check the chain but not the host name"),
                ),
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => (
                    c.to_string(),
                    "renew the server certificate, or check this machine's clock".to_string(),
                ),
                other => (
                    other.to_string(),
                    "check the server certificate and sslrootcert".to_string(),
                ),
            };
            (
                format!("server certificate verify failed: {what} {settings}"),
                hint,
            )
        }
        other => (
            format!("TLS handshake failed: {other} {settings}"),
            "check the server's ssl settings, and sslcert/sslkey if it asks for a client certificate".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: Option<&str>) -> LibpqEnv {
        LibpqEnv {
            home: home.map(PathBuf::from),
            ..LibpqEnv::default()
        }
    }

    fn ssl(mode: Option<&str>, root: Option<&str>) -> SslParams {
        SslParams {
            mode: mode.map(str::to_string),
            rootcert: root.map(str::to_string),
            ..SslParams::default()
        }
    }

    fn plan_with(s: &SslParams, e: &LibpqEnv, files: &[&str]) -> Result<TlsPlan, TlsConfigError> {
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        plan(s, e, false, false, &|p| files.iter().any(|f| f == p))
    }

    #[test]
    fn modes_map_as_libpq() {
        let e = env(Some("/home/u"));
        let p = plan_with(&ssl(None, None), &e, &[]).unwrap();
        assert_eq!(p.mode, SslMode::Prefer);
        assert_eq!(p.attempts, [Attempt::TlsIfOffered, Attempt::Plain]);
        assert_eq!(p.verify, Verify::Nothing);

        let p = plan_with(&ssl(Some("disable"), Some("/nope")), &e, &[]).unwrap();
        assert_eq!(p.attempts, [Attempt::Plain]);

        let p = plan_with(&ssl(Some("allow"), None), &e, &[]).unwrap();
        assert_eq!(p.attempts, [Attempt::Plain, Attempt::TlsRequired]);

        let p = plan_with(&ssl(Some("require"), None), &e, &[]).unwrap();
        assert_eq!(
            (p.attempts.as_slice(), p.verify),
            (&[Attempt::TlsRequired][..], Verify::Nothing)
        );
        assert_eq!(p.rootcert_shown, "none");

        // require with a root certificate file that exists checks the chain (libpq).
        let p = plan_with(
            &ssl(Some("require"), None),
            &e,
            &["/home/u/.postgresql/root.crt"],
        )
        .unwrap();
        assert_eq!(p.verify, Verify::Chain);
        assert_eq!(
            p.roots,
            Some(Roots::File("/home/u/.postgresql/root.crt".into()))
        );

        let p = plan_with(&ssl(Some("verify-ca"), Some("/ca.pem")), &e, &["/ca.pem"]).unwrap();
        assert_eq!(
            (p.verify, p.rootcert_shown.as_str()),
            (Verify::Chain, "/ca.pem")
        );
        let p = plan_with(&ssl(Some("verify-full"), Some("/ca.pem")), &e, &["/ca.pem"]).unwrap();
        assert_eq!(p.verify, Verify::ChainAndName);
        assert_eq!(p.attempts, [Attempt::TlsRequired]);
    }

    #[test]
    fn verification_needs_the_root_file() {
        let e = env(Some("/home/u"));
        assert_eq!(
            plan_with(&ssl(Some("verify-full"), None), &e, &[]).unwrap_err(),
            TlsConfigError::RootCertMissing {
                path: "/home/u/.postgresql/root.crt".into(),
                mode: "verify-full".into()
            }
        );
        let err = plan_with(&ssl(Some("verify-ca"), Some("/etc/ca.pem")), &e, &[]).unwrap_err();
        assert!(
            err.to_string().contains("\"/etc/ca.pem\" does not exist"),
            "{err}"
        );
        assert!(matches!(
            plan_with(&ssl(Some("verify-ca"), None), &env(None), &[]),
            Err(TlsConfigError::NoHome(_))
        ));
        // Without verification a missing file is fine.
        assert!(plan_with(&ssl(Some("require"), Some("/etc/ca.pem")), &e, &[]).is_ok());
    }

    #[test]
    fn system_roots_force_verify_full() {
        let e = env(None);
        let p = plan_with(&ssl(None, Some("system")), &e, &[]).unwrap();
        assert_eq!(
            (p.mode, p.verify),
            (SslMode::VerifyFull, Verify::ChainAndName)
        );
        assert_eq!(p.roots, Some(Roots::System));
        for weak in ["require", "verify-ca", "prefer", "disable"] {
            assert_eq!(
                plan_with(&ssl(Some(weak), Some("system")), &e, &[]).unwrap_err(),
                TlsConfigError::WeakWithSystem(weak.into())
            );
        }
    }

    #[test]
    fn environment_is_the_default() {
        let e = LibpqEnv {
            sslmode: Some("verify-full".into()),
            sslrootcert: Some("/env/ca.pem".into()),
            ..LibpqEnv::default()
        };
        let p = plan_with(&ssl(None, None), &e, &["/env/ca.pem"]).unwrap();
        assert_eq!(
            (p.mode, p.rootcert_shown.as_str()),
            (SslMode::VerifyFull, "/env/ca.pem")
        );
        // The connection string wins over the environment.
        let p = plan_with(&ssl(Some("disable"), None), &e, &[]).unwrap();
        assert_eq!(p.mode, SslMode::Disable);
        assert_eq!(
            plan_with(&ssl(Some("verify-ful"), None), &e, &[]).unwrap_err(),
            TlsConfigError::BadMode("verify-ful".into())
        );
    }

    #[test]
    fn sockets_never_use_tls() {
        let e = env(None);
        let s = ssl(Some("verify-full"), Some("/missing.pem"));
        let p = plan(&s, &e, true, false, &|_| false).unwrap();
        assert_eq!(p.attempts, [Attempt::Plain]);
        // But a bad value is still an error, as in libpq.
        assert!(plan(&ssl(Some("bogus"), None), &e, true, false, &|_| false).is_err());
        // verify-full needs a host name.
        assert_eq!(
            plan(
                &ssl(Some("verify-full"), Some("/ca")),
                &e,
                false,
                true,
                &|_| true
            )
            .unwrap_err(),
            TlsConfigError::NoHostName
        );
    }

    #[test]
    fn client_certificates() {
        let e = env(Some("/h"));
        // Default files, used when the certificate exists.
        let p = plan_with(
            &ssl(Some("require"), None),
            &e,
            &[
                "/h/.postgresql/postgresql.crt",
                "/h/.postgresql/postgresql.key",
            ],
        )
        .unwrap();
        assert_eq!(
            p.client,
            Some((
                "/h/.postgresql/postgresql.crt".into(),
                "/h/.postgresql/postgresql.key".into()
            ))
        );
        let mut s = ssl(Some("require"), None);
        s.cert = Some("/c.pem".into());
        s.key = Some("/k.pem".into());
        assert_eq!(plan_with(&s, &e, &[]).unwrap().client, None);
        assert_eq!(
            plan_with(&s, &e, &["/c.pem"]).unwrap_err(),
            TlsConfigError::KeyMissing("/k.pem".into())
        );
        assert!(plan_with(&s, &e, &["/c.pem", "/k.pem"])
            .unwrap()
            .client
            .is_some());
    }

    #[test]
    fn configs_build() {
        let e = env(None);
        for mode in ["require", "prefer", "allow", "disable"] {
            let p = plan_with(&ssl(Some(mode), None), &e, &[]).unwrap();
            client_config(&p).unwrap();
        }
        let p = plan_with(&ssl(None, Some("system")), &e, &[]).unwrap();
        connector(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate\n").unwrap();
        let p = plan(
            &ssl(Some("verify-ca"), bad.to_str()),
            &e,
            false,
            false,
            &|_| true,
        )
        .unwrap();
        let err = client_config(&p).unwrap_err();
        assert!(
            err.to_string()
                .contains("could not read root certificate file"),
            "{err}"
        );
    }
}
