//! A small blocking client for the registry HTTP API (distribution spec), for the harness
//! and for tests that look at what a registry holds.
//!
//! It sends exactly the bytes it is given and returns every response, whatever its status,
//! so a test can check a 401 as easily as a 200. It never uses a proxy: the registries
//! under test are on 127.0.0.1.

use std::time::Duration;

use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::auth::Credentials;
use super::oci::media_type;

/// Every manifest type the harness produces, for `Accept`.
pub const ACCEPT_MANIFESTS: &[&str] = &[
    media_type::OCI_INDEX,
    media_type::OCI_MANIFEST,
    media_type::DOCKER_MANIFEST_LIST,
    media_type::DOCKER_MANIFEST,
];

/// A response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Docker-Content-Digest`.
    pub fn digest(&self) -> Option<&str> {
        self.header("docker-content-digest")
    }

    /// `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// Panics unless the status is `expected`, showing the body (the registry's error).
    pub fn expect(self, expected: u16, what: &str) -> Reply {
        assert_eq!(
            self.status,
            expected,
            "{what}: status {}, body {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

/// A client bound to one registry base URL (`http://127.0.0.1:PORT`).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    agent: Agent,
    base: String,
    credentials: Option<Credentials>,
}

impl RegistryClient {
    /// A client for `base`, trusting `ca_pem` (if any) and sending `credentials` (if any).
    pub fn new(base: &str, ca_pem: Option<&[u8]>, credentials: Option<Credentials>) -> Self {
        let mut tls = TlsConfig::builder();
        if let Some(pem) = ca_pem {
            let ca = Certificate::from_pem(pem).expect("CA certificate is not PEM");
            tls = tls.root_certs(RootCerts::new_with_certs(&[ca]));
        }
        let agent = Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(tls.build())
            .build()
            .new_agent();
        RegistryClient {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    /// `GET /v2/`; `Err` when nothing answers (connection refused, TLS failure).
    pub fn ping(&self) -> Result<Reply, ureq::Error> {
        self.send("GET", &format!("{}/v2/", self.base), &[], None)
    }

    /// `GET` a manifest by tag or digest, accepting every manifest type.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Reply {
        self.get_manifest_accepting(repo, reference, ACCEPT_MANIFESTS)
    }

    /// `GET` a manifest with exactly these `Accept` types.
    pub fn get_manifest_accepting(&self, repo: &str, reference: &str, accept: &[&str]) -> Reply {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        self.must("GET", &url, &[("Accept", &accept.join(", "))], None)
    }

    /// `HEAD` a manifest, accepting every manifest type: the digest a tag resolves to.
    pub fn head_manifest(&self, repo: &str, reference: &str) -> Reply {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        self.must(
            "HEAD",
            &url,
            &[("Accept", &ACCEPT_MANIFESTS.join(", "))],
            None,
        )
    }

    /// `PUT` manifest bytes as they are, under a tag or their digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Reply {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        self.must("PUT", &url, &[("Content-Type", media_type)], Some(bytes))
    }

    /// `GET` a blob.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Reply {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        self.must("GET", &url, &[], None)
    }

    /// Uploads `bytes` as the blob `digest` (the registry checks the digest): `POST` to
    /// open an upload session, then a monolithic `PUT …&digest=`.
    pub fn upload_blob(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let opened = self
            .must("POST", &url, &[], None)
            .expect(202, "opening a blob upload");
        let location = opened.header("location").expect("upload without Location");
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let headers = [("Content-Type", "application/octet-stream")];
        let done = self
            .must("PUT", &url, &headers, Some(bytes))
            .expect(201, "uploading a blob");
        assert_eq!(
            done.digest(),
            Some(digest),
            "registry stored the blob under another digest"
        );
    }

    /// Any request; panics when nothing answers.
    pub fn must(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        self.send(method, url, headers, body)
            .unwrap_or_else(|e| panic!("{method} {url}: no answer: {e}"))
    }

    /// Any request; `Err` when nothing answers.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic_header());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = match body {
            Some(bytes) => self
                .agent
                .run(request.body(bytes).expect("valid request"))?,
            None => self.agent.run(request.body(()).expect("valid request"))?,
        };
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response.body_mut().with_config().read_to_vec()?
        };
        Ok(Reply {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }
}
