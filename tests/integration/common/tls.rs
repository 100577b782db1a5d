//! A throw-away certificate authority and a server certificate for 127.0.0.1.
//!
//! Made with the `openssl` command (EC P-256, valid two days) so that both Go's TLS stack
//! (the registry) and webpki (rustls, used by bootsource) accept them: the CA carries
//! `basicConstraints=CA:TRUE` and `keyCertSign`, the server certificate an IP
//! `subjectAltName`, `serverAuth` and `CA:FALSE`. The CA is also written as `ca.crt` in a
//! directory of its own, in the containers `certs.d` layout that `--cert-dir` expects.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::tools;

/// The files of a generated CA and server certificate.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// PEM CA certificate (the trust anchor).
    pub ca_cert: PathBuf,
    /// PEM server certificate for `127.0.0.1`, signed by the CA.
    pub server_cert: PathBuf,
    /// PEM server private key.
    pub server_key: PathBuf,
    /// A directory holding only `ca.crt`: pass it as `--cert-dir`.
    pub cert_dir: PathBuf,
}

const SERVER_EXTENSIONS: &str = "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1
";

impl TestCa {
    /// Generates a CA and a server certificate for 127.0.0.1 under `dir`.
    pub fn generate(dir: &Path) -> TestCa {
        tools::require("openssl", "openssl");
        let server_dir = dir.join("server");
        let cert_dir = dir.join("cert-dir");
        fs::create_dir_all(&server_dir).unwrap();
        fs::create_dir_all(&cert_dir).unwrap();
        let ca_cert = cert_dir.join("ca.crt");
        let ca_key = server_dir.join("ca.key");
        let server_cert = server_dir.join("server.crt");
        let server_key = server_dir.join("server.key");
        let csr = server_dir.join("server.csr");
        let extensions = server_dir.join("server.ext");
        fs::write(&extensions, SERVER_EXTENSIONS).unwrap();

        let ec_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        tools::run_command(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "2"])
                .args(ec_key)
                .args(["-subj", "/CN=bootsource test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert),
        );
        tools::run_command(
            Command::new("openssl")
                .arg("req")
                .args(ec_key)
                .args(["-subj", "/CN=127.0.0.1"])
                .arg("-keyout")
                .arg(&server_key)
                .arg("-out")
                .arg(&csr),
        );
        tools::run_command(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&extensions)
                .arg("-out")
                .arg(&server_cert),
        );
        TestCa {
            ca_cert,
            server_cert,
            server_key,
            cert_dir,
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        fs::read(&self.ca_cert).unwrap()
    }
}
