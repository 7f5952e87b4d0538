//! HTTPS: a certificate from a test CA (rcgen), a rustls client trusting that CA, a plain-HTTP
//! client and a client not trusting it refused; clear errors for unusable PEM files.

mod common;

use common::TestServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use spindle_http::{bind, HttpError, HttpOptions, TlsFiles};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

struct Pki {
    ca_der: Vec<u8>,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "spindle test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("leaf params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "spindle test server");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let other_key = dir.join("other-key.pem");
    // The chain: leaf, then the CA.
    std::fs::write(&cert, format!("{}{}", leaf.pem(), ca.pem())).expect("write cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
    std::fs::write(
        &other_key,
        KeyPair::generate().expect("other key").serialize_pem(),
    )
    .expect("write other key");
    Pki {
        ca_der: ca.der().to_vec(),
        cert,
        key,
        other_key,
    }
}

fn trusting_agent(ca_der: &[u8]) -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_der(ca_der).to_owned();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
                .build(),
        )
        .build()
        .new_agent()
}

#[test]
fn https_with_the_ca_works_and_plain_http_does_not() {
    let pki_dir = tempfile::tempdir().expect("tempdir");
    let p = pki(pki_dir.path());
    let s = TestServer::start_with(
        Some(TlsFiles {
            cert: p.cert.clone(),
            key: p.key.clone(),
        }),
        trusting_agent(&p.ca_der),
    );
    assert!(s.base.starts_with("https://"));
    let r = s.raw("GET", "/healthz", None, &[("x-call-id", "tls-1")]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.call_id.as_deref(), Some("tls-1"));
    // Authenticated routes over TLS, several requests on one kept-alive connection.
    for _ in 0..3 {
        let r = s.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.text);
    }
    s.raw("GET", "/v1/servers", None, &[])
        .expect_error(401, "unauthorized", None, None);

    // A plain-HTTP client gets no HTTP answer.
    let plain = common::agent().get(format!("http://{}/healthz", s.addr)).call();
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP was answered: {plain:?}"
    );
    let mut tcp = std::net::TcpStream::connect(s.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&buf)
    );

    // A client that does not trust the CA is refused.
    let untrusting = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let r = untrusting.get(format!("{}/healthz", s.base)).call();
    assert!(r.is_err(), "an unknown CA was accepted");
}

fn bind_error(tls: TlsFiles) -> HttpError {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (service, token) = common::stack(dir.path()).await;
        let r = bind(
            HttpOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                tls: Some(tls),
            },
            service,
            token,
        )
        .await;
        match r {
            Ok(b) => panic!("bound {b:?} with unusable TLS files"),
            Err(e) => e,
        }
    })
}

#[test]
fn unusable_pem_files_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM at all\n").expect("write");
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");

    let e = bind_error(TlsFiles {
        cert: missing.clone(),
        key: p.key.clone(),
    });
    assert!(
        matches!(
            e,
            HttpError::TlsRead {
                what: "certificate",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let e = bind_error(TlsFiles {
        cert: p.cert.clone(),
        key: missing.clone(),
    });
    assert!(matches!(e, HttpError::TlsRead { what: "key", .. }), "{e}");

    let e = bind_error(TlsFiles {
        cert: garbage.clone(),
        key: p.key.clone(),
    });
    assert!(matches!(e, HttpError::TlsNoCertificate { .. }), "{e}");
    assert!(e.to_string().contains("garbage.pem"), "{e}");

    let e = bind_error(TlsFiles {
        cert: broken.clone(),
        key: p.key.clone(),
    });
    assert!(matches!(e, HttpError::TlsPem { .. }), "{e}");
    assert!(e.to_string().contains("broken.pem"), "{e}");

    let e = bind_error(TlsFiles {
        cert: p.cert.clone(),
        key: p.cert.clone(),
    });
    assert!(matches!(e, HttpError::TlsNoKey { .. }), "{e}");

    let e = bind_error(TlsFiles {
        cert: p.cert.clone(),
        key: p.other_key.clone(),
    });
    assert!(matches!(e, HttpError::TlsConfig { .. }), "{e}");
}
