//! A second throwaway PostgreSQL for the connection tests: TCP on 127.0.0.1 at a free port,
//! `ssl=on` with certificates made here (a test CA and a server certificate for `localhost`
//! and 127.0.0.1, plus an unrelated CA), `scram-sha-256` passwords, and a role that may only
//! connect over TLS. Started once per test binary from a dedicated long-lived thread (see
//! pg.rs for why), stopped at exit.

use git_migrate_core::scratch::{Cluster, ClusterOptions};
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The password of both roles.
pub const PASSWORD: &str = "S3cr3t-pa55word!";
/// A role that may connect with or without TLS.
pub const USER: &str = "gm_app";
/// A role that may connect only over TLS (`hostssl`; plaintext is rejected).
pub const TLS_ONLY_USER: &str = "gm_tls_only";

/// What the tests need to know about the server.
pub struct TlsServer {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server certificate (PEM).
    pub ca: PathBuf,
    /// Another CA, which did not (PEM).
    pub wrong_ca: PathBuf,
    /// The directory holding both.
    pub certs_dir: PathBuf,
    /// The socket directory (superuser access without a password, for setup).
    socket: PathBuf,
}

struct Shared {
    cluster: Mutex<Option<Cluster>>,
    certs: Mutex<Option<tempfile::TempDir>>,
    server: TlsServer,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn stop_tls_cluster() {
    if let Some(s) = SHARED.get() {
        if let Some(c) = s.cluster.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.stop();
        }
        if let Some(d) = s.certs.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = d.close();
        }
    }
}

/// PEM of a CA certificate, and the issuer to sign with.
fn make_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

/// A CA, a server certificate for localhost and 127.0.0.1 signed by it, another CA.
/// Returns (ca pem, wrong ca pem, server cert pem, server key pem).
fn make_certificates() -> (String, String, String, String) {
    let (ca_pem, issuer) = make_ca("git-migrate test CA");
    let (wrong_pem, _) = make_ca("git-migrate unrelated CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_pem, wrong_pem, cert.pem(), key.serialize_pem())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(server_cert: &str, server_key: &str) -> (Cluster, u16) {
    let mut last = None;
    // The port is free when asked, but another process may take it before the server binds it.
    for _ in 0..3 {
        let port = free_port();
        let options = ClusterOptions {
            settings: vec!["ssl=on".into(), "password_encryption=scram-sha-256".into()],
            hba: vec![
                format!("hostssl all {TLS_ONLY_USER} 127.0.0.1/32 scram-sha-256"),
                format!("host    all {TLS_ONLY_USER} 127.0.0.1/32 reject"),
                "hostssl all all 127.0.0.1/32 scram-sha-256".into(),
                "host    all all 127.0.0.1/32 scram-sha-256".into(),
                "host    all all ::1/128 reject".into(),
            ],
            files: vec![
                ("server.crt".into(), server_cert.as_bytes().to_vec()),
                ("server.key".into(), server_key.as_bytes().to_vec()),
            ],
            listen: Some(("127.0.0.1".into(), port)),
        };
        match Cluster::start_with(&options) {
            Ok(c) => return (c, port),
            Err(e) => last = Some(e),
        }
    }
    panic!("cannot start the TLS test cluster: {}", last.unwrap());
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let (ca, wrong, cert, key) = make_certificates();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-tls-owner".into())
            .spawn(move || {
                let started = std::panic::catch_unwind(|| start(&cert, &key));
                let ok = started.is_ok();
                tx.send(started).unwrap();
                if ok {
                    // Keep this thread alive for the whole run: the postmaster dies with it.
                    loop {
                        std::thread::park();
                    }
                }
            })
            .unwrap();
        let (cluster, port) = rx
            .recv()
            .unwrap()
            .unwrap_or_else(|_| panic!("cannot start the TLS test cluster"));
        unsafe {
            libc::atexit(stop_tls_cluster);
        }
        let certs = tempfile::Builder::new()
            .prefix("gm-certs-")
            .tempdir()
            .unwrap();
        let ca_path = certs.path().join("ca.crt");
        let wrong_path = certs.path().join("wrong-ca.crt");
        std::fs::write(&ca_path, ca).unwrap();
        std::fs::write(&wrong_path, wrong).unwrap();
        let socket = cluster.socket_dir().to_path_buf();
        let mut admin = Client::connect(&cluster.url("postgres"), NoTls).unwrap();
        for role in [USER, TLS_ONLY_USER] {
            admin
                .batch_execute(&format!(
                    "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"
                ))
                .unwrap();
        }
        Shared {
            server: TlsServer {
                port,
                ca: ca_path,
                wrong_ca: wrong_path,
                certs_dir: certs.path().to_path_buf(),
                socket,
            },
            certs: Mutex::new(Some(certs)),
            cluster: Mutex::new(Some(cluster)),
        }
    })
}

/// The TLS server (started on first use).
pub fn server() -> &'static TlsServer {
    &shared().server
}

/// A fresh database on the TLS server, owned by [`USER`].
pub struct TlsDb {
    pub name: String,
}

impl TlsDb {
    pub fn new(test: &str) -> TlsDb {
        let s = server();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("tls{n}_{test}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        let mut admin = admin_client(s);
        admin
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {USER}"))
            .unwrap();
        TlsDb { name }
    }

    /// `postgresql://USER:PASSWORD@HOST:PORT/db?QUERY` (QUERY may be empty).
    pub fn url(&self, host: &str, query: &str) -> String {
        self.url_as(USER, Some(PASSWORD), host, query)
    }

    /// Like [`TlsDb::url`] with another user and an optional password.
    pub fn url_as(&self, user: &str, password: Option<&str>, host: &str, query: &str) -> String {
        let s = server();
        let auth = match password {
            Some(p) => format!("{user}:{p}"),
            None => user.to_string(),
        };
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("postgresql://{auth}@{host}:{}/{}{q}", s.port, self.name)
    }

    /// Rows of a query (as superuser over the socket), every column as text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let s = server();
        let mut c = Client::connect(
            &format!(
                "host={} port={} user=postgres dbname={}",
                s.socket.display(),
                s.port,
                self.name
            ),
            NoTls,
        )
        .unwrap();
        c.simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// The first column of the first row.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }

    /// Whether a relation exists.
    pub fn has_table(&self, name: &str) -> bool {
        self.scalar(&format!("SELECT to_regclass('{name}') IS NOT NULL"))
            .as_deref()
            == Some("t")
    }

    /// Whether the ledger schema exists (i.e. something was deployed).
    pub fn has_ledger(&self) -> bool {
        self.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'git_migrate'")
            .as_deref()
            == Some("1")
    }
}

fn admin_client(s: &TlsServer) -> Client {
    Client::connect(
        &format!(
            "host={} port={} user=postgres dbname=postgres",
            s.socket.display(),
            s.port
        ),
        NoTls,
    )
    .unwrap()
}

/// Writes `text` to `dir/name` with `mode`.
pub fn write_with_mode(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}
