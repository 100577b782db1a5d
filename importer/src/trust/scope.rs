//! Which requirements of a policy apply to an image, chosen as containers chooses.
//!
//! The image is the one the user named ([`Subject`]): for `docker://` its normalised
//! reference with the tag (or the digest, if that is all it names); for `oci:` the
//! layout directory, absolute with symlinks resolved. The most specific scope of the
//! image's transport wins: for `docker` the exact reference, then the repository, its
//! parent namespaces and the host, then `*.domain` wildcards from the longest; for
//! `oci` the directory, then its parents. Then the transport's `""` scope, then the
//! policy's `default`. The same order picks a `registries.d` entry ([`super::lookaside`]).
//!
//! Pure: a subject and a policy in, a scope and its requirements out.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::policy::{Policy, Requirement};
use super::reference::DockerRef;

/// The image a policy judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `docker://…`: never a bare repository.
    Docker(DockerRef),
    /// `oci:DIR`: the directory, absolute, symlinks resolved.
    Layout(PathBuf),
}

impl Subject {
    /// The policy's name for the subject's transport.
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Docker(_) => "docker",
            Self::Layout(_) => "oci",
        }
    }

    /// The most specific scope: `host/repo:tag`, `host/repo@sha256:…`, or the directory.
    pub fn identity(&self) -> String {
        match self {
            Self::Docker(r) => r.to_string(),
            Self::Layout(dir) => dir.display().to_string(),
        }
    }

    /// The scopes tried after [`identity`](Self::identity), most specific first.
    pub fn namespaces(&self) -> Vec<String> {
        match self {
            Self::Docker(r) => docker_namespaces(r.name()),
            Self::Layout(dir) => dir
                .ancestors()
                .skip(1)
                .filter(|d| d.parent().is_some())
                .map(|d| d.display().to_string())
                .collect(),
        }
    }

    /// The identity, then the namespaces.
    pub fn scopes(&self) -> impl Iterator<Item = String> {
        std::iter::once(self.identity()).chain(self.namespaces())
    }
}

/// `host/a/b`, `host/a`, `host`, then `*.domain` wildcards of the host without its port.
fn docker_namespaces(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = name;
    loop {
        out.push(current.to_owned());
        match current.rsplit_once('/') {
            Some((parent, _)) => current = parent,
            None => break,
        }
    }
    let mut host = current.split_once(':').map_or(current, |(h, _)| h);
    while let Some((_, rest)) = host.split_once('.') {
        out.push(format!("*.{rest}"));
        host = rest;
    }
    out
}

/// The policy section whose requirements were used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "section")]
pub enum Scope {
    /// `transports.TRANSPORT.SCOPE` (`""` for the transport's default).
    Transport {
        /// `docker`, `oci`.
        transport: String,
        /// The matching scope.
        scope: String,
    },
    /// The policy's `default`.
    Default,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport { transport, scope } => {
                write!(f, "transports.{transport}.{scope:?}")
            }
            Self::Default => f.write_str("default"),
        }
    }
}

/// The requirements `policy` sets for `subject`, and where they come from.
pub fn requirements<'p>(policy: &'p Policy, subject: &Subject) -> (Scope, &'p [Requirement]) {
    let transport = subject.transport();
    if let Some(scopes) = policy.transports.get(transport) {
        let found = subject
            .scopes()
            .chain(std::iter::once(String::new()))
            .find_map(|scope| scopes.get(&scope).map(|reqs| (scope, reqs)));
        if let Some((scope, reqs)) = found {
            let scope = Scope::Transport {
                transport: transport.to_owned(),
                scope,
            };
            return (scope, reqs);
        }
    }
    (Scope::Default, &policy.default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(text: &str) -> Subject {
        Subject::Docker(DockerRef::parse(text).unwrap())
    }

    #[test]
    fn docker_scopes_go_from_the_reference_to_wildcards() {
        assert_eq!(
            docker("reg.example.com:5000/os/fedora:41")
                .scopes()
                .collect::<Vec<_>>(),
            [
                "reg.example.com:5000/os/fedora:41",
                "reg.example.com:5000/os/fedora",
                "reg.example.com:5000/os",
                "reg.example.com:5000",
                "*.example.com",
                "*.com",
            ]
        );
    }

    #[test]
    fn layout_scopes_are_the_directory_and_its_parents() {
        let s = Subject::Layout("/srv/images/fedora".into());
        assert_eq!(
            s.scopes().collect::<Vec<_>>(),
            ["/srv/images/fedora", "/srv/images", "/srv"]
        );
    }

    #[test]
    fn the_most_specific_scope_wins_then_the_transport_default_then_the_default() {
        let policy = Policy::parse(
            br#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "r.io/os":[{"type":"insecureAcceptAnything"}],
                "r.io/os/special:1":[{"type":"reject"}],
                "*.io":[{"type":"insecureAcceptAnything"}]},
              "oci":{"/srv":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
        .unwrap();
        let scope_of = |s: &Subject| requirements(&policy, s).0.to_string();
        assert_eq!(
            scope_of(&docker("r.io/os/img:1")),
            r#"transports.docker."r.io/os""#
        );
        assert_eq!(
            scope_of(&docker("r.io/os/special:1")),
            r#"transports.docker."r.io/os/special:1""#
        );
        assert_eq!(
            scope_of(&docker("r.io/os/special:2")),
            r#"transports.docker."r.io/os""#
        );
        assert_eq!(scope_of(&docker("q.io/x:1")), r#"transports.docker."*.io""#);
        assert_eq!(scope_of(&docker("example.com/x:1")), "default");
        assert_eq!(
            scope_of(&Subject::Layout("/srv/l".into())),
            r#"transports.oci."/srv""#
        );
        assert_eq!(scope_of(&Subject::Layout("/tmp/l".into())), "default");
    }
}
