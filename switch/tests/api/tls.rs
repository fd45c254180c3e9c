//! TLS on the terminal listener, with real handshakes and certificates made here (rcgen):
//! a terminal over TLS signs on and pays beside a plain one; a wrong CA, a client that is
//! not TLS and a silent one are refused and counted; mutual TLS wants the right client
//! certificate.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::{CREDIT, DEBIT, Terminal};
use crate::e2e::reqwest_metrics;
use crate::{start, temp_dir, test_config};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A certificate for `names` issued by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Connects over TLS trusting `ca_pem`, presenting `client` when given.
async fn tls(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    client: Option<&(String, String)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut s = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    // With TLS 1.3 a refused client certificate shows only at the first read or write.
    s.flush().await?;
    Ok(s)
}

/// The test configuration with a TLS listener, its certificate issued by `server_ca`.
fn config(dir: &std::path::Path, server_ca: &Ca, client_ca: Option<&Ca>) -> switch::Config {
    let (cert, key) = leaf(server_ca, &["127.0.0.1", "localhost"]);
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    let mut c = test_config(dir);
    c.listen.terminals_tls = Some("127.0.0.1:0".parse().unwrap());
    c.limits.read_timeout_secs = 1;
    c.tls = Some(switch::config::TlsConfig {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        client_ca_file: client_ca.map(|ca| {
            std::fs::write(dir.join("clients.crt"), &ca.pem).unwrap();
            dir.join("clients.crt")
        }),
    });
    c.validate().unwrap();
    c
}

fn count(metrics: &str, result: &str) -> u64 {
    let key = format!("switch_tls_handshakes_total{{listener=\"terminals\",result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in\n{metrics}"))
}

#[tokio::test]
async fn a_terminal_over_tls_signs_on_and_pays_beside_a_plain_one() {
    let server_ca = ca("switch test CA");
    let dir = temp_dir("tls");
    let sw = start(config(&dir, &server_ca, None)).await;
    let tls_addr = sw.terminal_tls_addr.expect("a TLS listener");

    let stream = tls(tls_addr, &server_ca.pem, None).await.unwrap();
    let mut t = Terminal::on(stream, "10000061");
    assert_eq!(t.sign_on().await.rc(), "00");
    let s = t.sale(DEBIT, "123456", 1_000).await;
    assert_eq!(s.rc(), "00");
    assert!(t.reply_mac_ok(&s));
    assert_eq!(t.balance(CREDIT, "654321").await.rc(), "00");

    let mut plain = Terminal::connect(sw.terminal_addr, "10000062").await;
    assert_eq!(plain.sign_on().await.rc(), "00");
    assert_eq!(plain.sale(CREDIT, "654321", 100).await.rc(), "00");

    // A CA the switch's certificate does not chain to: the client refuses the handshake.
    let other = ca("someone else");
    assert!(tls(tls_addr, &other.pem, None).await.is_err());
    // Plain ISO 8583 on the TLS port, and a connection that never says anything.
    let mut raw = TcpStream::connect(tls_addr).await.unwrap();
    raw.write_all(&[0, 4, 0x60, 0, 3, 0]).await.unwrap();
    let _silent = TcpStream::connect(tls_addr).await.unwrap();
    // The silent one is given up after the 1 s handshake deadline (waited for, not assumed).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let m = loop {
        let m = reqwest_metrics(sw.metrics_addr).await;
        if count(&m, "timeout") >= 1 && count(&m, "failed") >= 2 {
            break m;
        }
        assert!(std::time::Instant::now() < end, "handshakes counted: {m}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let exported = crate::metrics::families(&m);
    for (name, kind, row) in crate::metrics::readme_table() {
        if row.contains("with `[listen] terminals_tls`") {
            assert!(exported.contains(&(name.clone(), kind)), "{name} exported");
        }
    }
    assert!(count(&m, "ok") >= 1, "{m}");
    assert!(count(&m, "failed") >= 2, "wrong CA and not TLS: {m}");
    assert!(count(&m, "timeout") >= 1, "the silent one: {m}");
    // The TLS terminal still works after all that.
    assert_eq!(t.sale(DEBIT, "123456", 1_000).await.rc(), "00");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn mutual_tls_wants_a_client_certificate_from_the_terminals_ca() {
    let server_ca = ca("switch test CA");
    let terminals_ca = ca("terminal test CA");
    let dir = temp_dir("mtls");
    let sw = start(config(&dir, &server_ca, Some(&terminals_ca))).await;
    let tls_addr = sw.terminal_tls_addr.unwrap();

    let good = leaf(&terminals_ca, &["10000063"]);
    let stream = tls(tls_addr, &server_ca.pem, Some(&good)).await.unwrap();
    let mut t = Terminal::on(stream, "10000063");
    assert_eq!(t.sign_on().await.rc(), "00");
    assert_eq!(t.sale(DEBIT, "123456", 500).await.rc(), "00");

    // No client certificate, or one from another CA: no frame gets through.
    for client in [None, Some(leaf(&ca("rogue CA"), &["10000064"]))] {
        let refused = match tls(tls_addr, &server_ca.pem, client.as_ref()).await {
            Err(_) => true,
            Ok(stream) => {
                let mut t = Terminal::on(stream, "10000064");
                let f = t.sign_on_frame();
                t.send_raw(&f).await;
                t.read_reply().await.is_none()
            }
        };
        assert!(refused);
    }
    let m = reqwest_metrics(sw.metrics_addr).await;
    assert!(count(&m, "failed") >= 2, "{m}");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_tls_listener_without_a_certificate_is_a_configuration_error() {
    let dir = temp_dir("tls-config");
    let mut c = test_config(&dir);
    c.listen.terminals_tls = Some("127.0.0.1:0".parse().unwrap());
    assert!(c.validate().is_err());
    c.tls = Some(switch::config::TlsConfig {
        cert_file: dir.join("missing.crt"),
        key_file: dir.join("missing.key"),
        client_ca_file: None,
    });
    let e = switch::start(c).await.err().unwrap();
    assert!(format!("{e:#}").contains("tls.cert_file"), "{e:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn terminal_fw_and_its_load_generator_dial_tls() {
    let server_ca = ca("switch test CA");
    let terminals_ca = ca("terminal test CA");
    let dir = temp_dir("tls-fw");
    let sw = start(config(&dir, &server_ca, Some(&terminals_ca))).await;
    let tls_addr = sw.terminal_tls_addr.unwrap();
    std::fs::write(dir.join("ca.crt"), &server_ca.pem).unwrap();
    let (cert, key) = leaf(&terminals_ca, &["terminal"]);
    std::fs::write(dir.join("t.crt"), cert).unwrap();
    std::fs::write(dir.join("t.key"), key).unwrap();
    let connector = terminal_fw::tls::connector(
        &dir.join("ca.crt"),
        Some((&dir.join("t.crt"), &dir.join("t.key"))),
    )
    .unwrap();

    // The firmware's terminal: sign-on and a sale over mutual TLS.
    let mut store = terminal_fw::Store::in_memory().unwrap();
    terminal_fw::Terminal::init(
        &mut store,
        "10000065",
        "898310048990001",
        crate::client::DEMO_TMK,
    )
    .unwrap();
    let mut t = terminal_fw::Terminal::open(store, tls_addr).unwrap();
    t.with_tls(connector.clone());
    assert_eq!(t.sign_on("01").await.unwrap().rc, "00");

    // The load generator: every request answered over TLS.
    let summary = terminal_fw::load::run(terminal_fw::load::LoadOptions {
        cipher: terminal_fw::cipher::Cipher::Tdes,
        addrs: vec![tls_addr],
        terminals: 4,
        first_tid: 10_000_070,
        mid: "898310048990001".into(),
        tmk: crate::client::DEMO_TMK.into(),
        duration: std::time::Duration::from_secs(1),
        rate: None,
        mix: terminal_fw::load::Mix {
            sale: 50,
            balance: 50,
            echo: 0,
        },
        pan: DEBIT.into(),
        pin: "123456".into(),
        progress: false,
        record: None,
        tls: Some(connector),
    })
    .await
    .unwrap();
    assert!(summary.total > 10, "{summary:?}");
    assert_eq!(summary.errors, 0, "{summary:?}");
    // Without a client certificate the generator's terminals get nowhere.
    let refused = terminal_fw::tls::connector(&dir.join("ca.crt"), None).unwrap();
    let mut store = terminal_fw::Store::in_memory().unwrap();
    terminal_fw::Terminal::init(
        &mut store,
        "10000066",
        "898310048990001",
        crate::client::DEMO_TMK,
    )
    .unwrap();
    let mut t = terminal_fw::Terminal::open(store, tls_addr).unwrap();
    t.with_tls(refused);
    t.timeout = std::time::Duration::from_secs(2);
    assert!(t.sign_on("01").await.is_err());
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TLS front for an issuer host at `backend`: its certificate from `server_ca`, a client
/// certificate from `clients` required; bytes passed through.
async fn issuer_front(
    backend: std::net::SocketAddr,
    server_ca: &Ca,
    clients: &Ca,
) -> std::net::SocketAddr {
    let (cert, key) = leaf(server_ca, &["127.0.0.1"]);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(clients.pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut up) = TcpStream::connect(backend).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_issuer_line_over_mutual_tls() {
    let issuer_ca = ca("issuer test CA");
    let acquirers_ca = ca("acquirer test CA");
    let sim = crate::issuer::sim(1).await;
    let front = issuer_front(sim.addrs[0], &issuer_ca, &acquirers_ca).await;
    let dir = temp_dir("issuer-tls");
    std::fs::write(dir.join("issuer-ca.crt"), &issuer_ca.pem).unwrap();
    let (cert, key) = leaf(&acquirers_ca, &["switch"]);
    std::fs::write(dir.join("client.crt"), cert).unwrap();
    std::fs::write(dir.join("client.key"), key).unwrap();
    let tls_config = switch::config::IssuerTlsConfig {
        ca_file: dir.join("issuer-ca.crt"),
        cert_file: Some(dir.join("client.crt")),
        key_file: Some(dir.join("client.key")),
        server_name: None,
    };
    let c = crate::issuer::config(&dir, vec![front.to_string()], |i| {
        i.tls = Some(tls_config.clone());
    });
    let sw = start(c).await;
    crate::issuer::lines_up(&sw, 1).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000067").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    let r = t.sale(crate::issuer::REMOTE, "111111", 1_000).await;
    assert_eq!(r.rc(), "00", "forwarded over mutual TLS");
    let m = reqwest_metrics(sw.metrics_addr).await;
    let ok = "switch_tls_handshakes_total{listener=\"issuer_lines\",result=\"ok\"} ";
    assert!(
        m.lines()
            .any(|l| l.strip_prefix(ok).is_some_and(|v| v.trim() != "0")),
        "{m}"
    );
    sw.shutdown().await;

    // A client certificate the issuer does not know: the line never carries a request, the
    // card answers 91 (issuer unavailable; 98 should a request catch the moment between a
    // TLS 1.3 client's finished handshake and the issuer's refusal).
    let rogue = ca("rogue CA");
    let (cert, key) = leaf(&rogue, &["switch"]);
    std::fs::write(dir.join("client.crt"), cert).unwrap();
    std::fs::write(dir.join("client.key"), key).unwrap();
    let dir2 = temp_dir("issuer-tls-rogue");
    let c = crate::issuer::config(&dir2, vec![front.to_string()], |i| {
        i.tls = Some(tls_config.clone());
    });
    let sw = start(c).await;
    let mut t = Terminal::connect(sw.terminal_addr, "10000068").await;
    assert_eq!(t.sign_on().await.rc(), "00");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rc = t.sale(crate::issuer::REMOTE, "111111", 1_000).await.rc();
    assert!(rc == "91" || rc == "98", "{rc}");
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_handshakes_and_keeps_connections() {
    let first_ca = ca("first CA");
    let dir = temp_dir("tls-reload");
    let sw = start(config(&dir, &first_ca, None)).await;
    let tls_addr = sw.terminal_tls_addr.unwrap();
    let stream = tls(tls_addr, &first_ca.pem, None).await.unwrap();
    let mut kept = Terminal::on(stream, "10000069");
    assert_eq!(kept.sign_on().await.rc(), "00");

    // New files from another CA; a reload swaps them in.
    let second_ca = ca("second CA");
    let (cert, key) = leaf(&second_ca, &["127.0.0.1"]);
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    assert!(sw.reload_tls().unwrap());
    assert!(
        tls(tls_addr, &first_ca.pem, None).await.is_err(),
        "old CA no longer"
    );
    let fresh = tls(tls_addr, &second_ca.pem, None).await.unwrap();
    let mut t = Terminal::on(fresh, "10000070");
    assert_eq!(t.sign_on().await.rc(), "00");
    // The connection made before the reload still carries sales.
    assert_eq!(kept.sale(DEBIT, "123456", 100).await.rc(), "00");

    // A broken file: the reload fails, the certificate in use stays.
    std::fs::write(dir.join("tls.key"), "not a key").unwrap();
    assert!(sw.reload_tls().is_err());
    assert!(tls(tls_addr, &second_ca.pem, None).await.is_ok());
    let m = reqwest_metrics(sw.metrics_addr).await;
    for (result, n) in [("ok", "1"), ("failed", "1")] {
        let line = format!("switch_tls_reloads_total{{result=\"{result}\"}} {n}");
        assert!(m.contains(&line), "{line} in\n{m}");
    }
    let exported = crate::metrics::families(&m);
    assert!(
        exported
            .iter()
            .any(|(n, _)| n == "switch_tls_reloads_total")
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_reloads_the_certificate_and_the_switch_keeps_serving() {
    let server_ca = ca("switch test CA");
    let dir = temp_dir("tls-sighup");
    let c = config(&dir, &server_ca, None);
    let mut sw = crate::spawn_switch(&c, &dir.join("switch.toml"), "info");
    for _ in 0..2 {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &sw.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(
        sw.child.try_wait().unwrap().is_none(),
        "still running after SIGHUP"
    );
    let logs = sw.logs.lock().unwrap().clone();
    assert_eq!(
        logs.matches("TLS certificate reloaded").count(),
        2,
        "{logs}"
    );
    // Still answering terminals.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut t = Terminal::connect(sw.addr, "10000071").await;
        assert_eq!(t.sign_on().await.rc(), "00");
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &sw.child.id().to_string()])
        .status();
    assert!(
        sw.child.wait().unwrap().success(),
        "a clean stop after SIGTERM"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn metrics_over_https_with_the_same_certificate() {
    use tokio::io::AsyncReadExt;
    let server_ca = ca("switch test CA");
    let terminals_ca = ca("terminal test CA");
    let dir = temp_dir("tls-metrics");
    let mut c = config(&dir, &server_ca, Some(&terminals_ca));
    c.listen.metrics_tls = true;
    let sw = start(c).await;
    // Prometheus brings no client certificate: the metrics listener wants none, even with
    // mutual TLS on the terminal listener.
    let get = |path: &'static str| {
        let ca = server_ca.pem.clone();
        let addr = sw.metrics_addr;
        async move {
            let mut s = tls(addr, &ca, None).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    let m = get("/metrics").await;
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(
        m.contains("switch_tls_handshakes_total{listener=\"metrics\",result=\"ok\"}"),
        "{m}"
    );
    // Plain HTTP to it gets no answer.
    let mut plain = TcpStream::connect(sw.metrics_addr).await.unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("switch_"),
        "no metrics over plain HTTP"
    );
    sw.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
