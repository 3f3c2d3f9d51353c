//! HTTPS between box and centre: the box trusts the CA it is configured with (pinned) and nothing else.

use std::path::Path;
use te_system_tests::{agent, box_evidence, free_port, shared_dir, AgentToml, Central};

/// A CA, and a certificate for 127.0.0.1 signed by it: (CA PEM, certificate PEM, key PEM).
fn authority_and_server_certificate() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn config(dir: &Path, name: &str, port: u16, ca_file: &Path) -> std::path::PathBuf {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).expect("photos dir");
    std::fs::copy(shared_dir().join("data/vn_scenes/1.jpg"), photos.join("1.jpg")).expect("copy photo");
    AgentToml::new(&format!("tls-test-{name}"), &dir.join(name), &format!("https://127.0.0.1:{port}"))
        .uplink(format!("ca_file = \"{}\"", ca_file.display()))
        .fast_backoff(100, 500)
        .section(format!("[[cameras]]\nid = \"stills\"\nsource = \"{}\"\nwhen_full = \"block\"", photos.display()))
        .write(&dir.join(format!("{name}.toml")))
}

#[test]
fn over_https_the_box_delivers_to_a_centre_its_pinned_ca_vouches_for_and_to_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = authority_and_server_certificate();
    let (other_ca, _, _) = authority_and_server_certificate();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let (ca_file, other_ca_file) = (write("ca.pem", &ca), write("other-ca.pem", &other_ca));
    let (cert_file, key_file) = (write("central.pem", &cert), write("central.key", &key));
    let port = free_port();
    let _central = Central::start_with(
        port,
        &dir.path().join("central"),
        &["--tls-cert", cert_file.to_str().expect("utf8"), "--tls-key", key_file.to_str().expect("utf8")],
    );

    let trusted = config(dir.path(), "trusted", port, &ca_file);
    let run = agent(&trusted, &["run", "--exit-when-done", "--drain-timeout", "20"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let held = box_evidence(&trusted);
    assert!(held.delivered > 0 && held.pending == 0, "{held:?}");

    // A centre (or a man in the middle) with a certificate from another CA gets nothing; the box keeps it all.
    let untrusting = config(dir.path(), "untrusting", port, &other_ca_file);
    let run = agent(&untrusting, &["run", "--exit-when-done", "--drain-timeout", "3"]);
    assert!(!run.status.success());
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("evidence stays pending") && log.contains("invalid peer certificate"), "{log}");
    eprintln!("{}", log.lines().find(|l| l.contains("evidence stays pending")).unwrap_or_default());
    let held = box_evidence(&untrusting);
    assert!(held.pending > 0 && held.delivered == 0, "{held:?}");
}
