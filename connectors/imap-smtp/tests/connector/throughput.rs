//! The initial-sync rate against a bare `UID FETCH 1:* BODY.PEEK[]` on the same server and
//! TLS stack. Ignored by default (it is a measurement, and debug builds distort it):
//! `cargo test --release -p concierge-connector-imap-smtp --test connector -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use concierge_connector_imap_smtp::ImapSmtpConnector;
use concierge_connector_sdk::{MailConnector, kit};
use futures_util::TryStreamExt;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::lab::Lab;

const MESSAGES: usize = 10_000;
const ROUNDS: usize = 15;

async fn bare_fetch(lab: &Lab, user: &str, password: &str) -> (Duration, usize) {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&lab.cert_pem) {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", lab.imaps)).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS");
    let mut client = async_imap::Client::new(tls);
    client.read_response().await.expect("greeting");
    let mut session = client.login(user, password).await.map_err(|(e, _)| e).expect("login");
    session.examine("INBOX").await.expect("EXAMINE");
    let started = Instant::now();
    let fetches: Vec<_> = session.uid_fetch("1:*", "BODY.PEEK[]").await.expect("FETCH").try_collect().await.expect("FETCH");
    let bodies: Vec<Vec<u8>> = fetches.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)).collect();
    let took = started.elapsed();
    let _ = session.logout().await;
    (took, bodies.len())
}

#[tokio::test]
#[ignore = "a measurement: run with --release --ignored"]
async fn initial_sync_keeps_up_with_a_bare_uid_fetch() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("rate").await;
    let day = Utc::now() - chrono::Duration::days(1);
    let messages: Vec<Vec<u8>> = (0..MESSAGES).map(|i| kit::message(&format!("rate {i:05}"), day)).collect();
    lab.deliver_many(&name, &password, &messages, day).await;
    let account = lab.account(&connector, &name, &password, "SSL_TLS");

    // Paired rounds, alternating which goes first, so load on the machine and warm caches
    // hit both alike; the median of the per-round ratios is the figure.
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let mut bare = Duration::ZERO;
        if round % 2 == 0 {
            let (took, n) = bare_fetch(&lab, &name, &password).await;
            assert_eq!(n, MESSAGES);
            bare = took;
        }
        let mut session = connector.open(&account).await.expect("open");
        let started = Instant::now();
        let refs = session.list(day - chrono::Duration::days(30), None).await.expect("list");
        let listed = started.elapsed();
        let fetched = session.fetch(&refs).await.expect("fetch");
        let sync = started.elapsed();
        assert_eq!(fetched.len(), MESSAGES);
        session.close().await;
        if round % 2 == 1 {
            let (took, n) = bare_fetch(&lab, &name, &password).await;
            assert_eq!(n, MESSAGES);
            bare = took;
        }
        let ratio = bare.as_secs_f64() / sync.as_secs_f64();
        println!("round {round}: bare {bare:?}, connector list {listed:?} + fetch {:?} = {sync:?}, ratio {ratio:.2}", sync - listed);
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("{MESSAGES} messages: median rate ratio {:.2} (connector initial sync / bare UID FETCH)", ratios[ratios.len() / 2]);
}
