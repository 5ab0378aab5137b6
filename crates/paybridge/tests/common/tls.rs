//! Self-signed certificates for the TLS tests (made with the system's `openssl`).

use std::path::{Path, PathBuf};

/// A self-signed certificate for `name` (an end-entity certificate, so a client can trust it
/// as its own root) and its key, written to `dir` as `<name>.crt` and `<name>.key`.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    write_self_signed(&cert, &key, name);
    (cert, key)
}

/// Writes a new self-signed certificate for `name` and its key to the given paths.
pub fn write_self_signed(cert: &Path, key: &Path, name: &str) {
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
