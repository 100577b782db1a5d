//! One registry host, reached with its own settings, and its authentication handshake.
//!
//! Every setting follows the host actually contacted — a mirror gets its own
//! credentials, CA certificates and `insecure` flag, never the origin's. Requests go
//! out without credentials first; a 401 carries a challenge ([`challenge`]): `Basic`
//! is answered with the host's credentials, `Bearer` with a token fetched from the
//! challenge's realm (with the credentials, if any, else anonymously), capped like every
//! other body. The authorization is remembered for the session and the request retried
//! once. reqwest drops `Authorization` on a redirect to another host (blob storage).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::challenge::{self, Challenge};
use super::response::{self, printable};
use super::{RegistryError, RegistryOptions};
use crate::origin::auth::Credentials;
use crate::origin::{auth, tls};
use crate::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte for this long means the connection is dead; a download resumes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed (registries redirect blobs to storage once).
const MAX_REDIRECTS: usize = 5;
/// A token answer larger than this is refused.
const TOKEN_BYTES: usize = 64 << 10;

/// How one host is reached.
#[derive(Debug)]
pub(super) struct Session {
    http: Client,
    /// `https://host[:port]` or `http://host[:port]`.
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<HeaderValue>>,
}

impl Session {
    /// A session with `host` for `repository`, with the settings that apply to `host`.
    pub async fn open(host: &str, repository: &str, options: &RegistryOptions) -> Result<Self> {
        let credentials = auth::credentials(options.auth_file.as_deref(), host)?;
        let insecure = !options.tls_verify || options.insecure_registries.iter().any(|h| h == host);
        let http = client(host, options, insecure)?;
        let mut session = Self {
            http,
            base: format!("https://{host}"),
            repository: repository.to_owned(),
            credentials,
            authorization: Mutex::new(None),
        };
        if insecure && session.speaks_plain_http().await {
            session.base = format!("http://{host}");
        }
        Ok(session)
    }

    /// For an insecure host: whether HTTPS fails below HTTP (no TLS there), in which
    /// case plain HTTP is what it speaks, as skopeo decides.
    async fn speaks_plain_http(&self) -> bool {
        let url = format!("{}/v2/", self.base);
        matches!(self.http.get(&url).send().await, Err(e) if e.is_connect() || e.is_request())
    }

    /// `…/v2/<repository>/<kind>/<reference>`.
    pub fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// Sends a request built by `build` for `url`, authenticating on a 401 and trying
    /// once more; a non-success answer becomes [`RegistryError::Status`].
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> std::result::Result<Response, RegistryError> {
        let request = || build(self.http.request(method.clone(), url));
        let first = self
            .authorized(request())
            .await
            .send()
            .await
            .map_err(transport(url))?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return response::check(first).await;
        }
        let challenge = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(challenge::parse);
        let Some(challenge) = challenge else {
            return response::check(first).await;
        };
        let authorization = self.answer(challenge, url).await?;
        *self.authorization.lock().await = Some(authorization);
        let second = self
            .authorized(request())
            .await
            .send()
            .await
            .map_err(transport(url))?;
        response::check(second).await
    }

    async fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &*self.authorization.lock().await {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// The `Authorization` a challenge asks for.
    async fn answer(
        &self,
        challenge: Challenge,
        url: &str,
    ) -> std::result::Result<HeaderValue, RegistryError> {
        match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Status {
                    url: printable(url, 300),
                    status: 401,
                    codes: vec!["UNAUTHORIZED".into()],
                    message: "the registry requires credentials and none are configured".into(),
                    retry_after: None,
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                self.token(&realm, service.as_deref(), scope.as_deref())
                    .await
            }
            Challenge::Other(scheme) => Err(RegistryError::UnsupportedAuth {
                url: printable(url, 300),
                scheme: printable(&scheme, 32),
            }),
        }
    }

    /// Fetches a bearer token from `realm` (docker's token protocol).
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> std::result::Result<HeaderValue, RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        query.extend(service.map(|s| ("service", s)));
        query.extend(scope.map(|s| ("scope", s)));
        let bad_token = || RegistryError::BadToken {
            realm: printable(realm, 300),
        };
        let url = reqwest::Url::parse_with_params(realm, &query).map_err(|_| bad_token())?;
        let mut request = self.http.get(url);
        if let Some(c) = &self.credentials {
            request = request.header(AUTHORIZATION, c.basic_header());
        }
        let answer = request.send().await.map_err(transport(realm))?;
        let answer = response::check(answer).await?;
        let body = response::read_capped(answer, TOKEN_BYTES, "token answer").await?;
        let token: TokenAnswer = serde_json::from_slice(&body).map_err(|_| bad_token())?;
        let token = token.token.or(token.access_token).unwrap_or_default();
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| bad_token())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

fn transport(url: &str) -> impl FnOnce(reqwest::Error) -> RegistryError + '_ {
    move |source| RegistryError::Transport {
        url: printable(url, 300),
        source,
    }
}

/// The HTTP client for `host`: its CA certificates (and client certificate) from
/// `--cert-dir` or `certs.d`, certificate checks off when insecure, proxies from the
/// environment, timeouts, bounded redirects.
pub(crate) fn client(host: &str, options: &RegistryOptions, insecure: bool) -> Result<Client> {
    // Here, where every client (registry or web server) is built: reqwest panics
    // without a provider.
    tls::install_crypto_provider();
    let trust = tls::trust(options.cert_dir.as_deref(), &options.certs_d, host)?;
    let mut builder = Client::builder()
        .user_agent(concat!("bootsource/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .tls_certs_merge(trust.roots)
        .danger_accept_invalid_certs(insecure);
    if let Some(identity) = trust.identity {
        builder = builder.identity(identity);
    }
    builder.build().map_err(|source| Error::Tls {
        host: host.to_owned(),
        problem: tls::TlsProblem::Client(source),
    })
}
