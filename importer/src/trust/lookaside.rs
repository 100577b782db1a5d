//! containers' `registries.d`: where a registry's signatures live.
//!
//! Every `*.yaml` file of the directory is read and merged (an entry defined in two
//! files is an error, as in containers):
//!
//! ```yaml
//! default-docker:
//!   lookaside: file:///var/lib/containers/sigstore
//! docker:
//!   registry.example.com/vendor:
//!     lookaside: https://sigstore.example.com/vendor   # simple signing, by URL
//!     use-sigstore-attachments: true                   # cosign signatures in the registry
//! ```
//!
//! An entry is chosen with the scopes of the policy ([`Subject::scopes`]), most
//! specific first, then `default-docker`; without any, signatures are looked for in
//! `file:///var/lib/containers/sigstore`, as containers does for root. The older key
//! names `sigstore` (for `lookaside`) are read too; the `*-staging` keys are for
//! writers and ignored. Simple signatures of an image live at
//! `<lookaside>/<repository path>@sha256=<hex>/signature-<N>`, N from 1.
//!
//! Parsing is pure ([`RegistriesD::parse`]); [`RegistriesD::load`] reads the files,
//! each a regular file, capped ([`crate::read_regular_file`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::PolicyProblem;
use super::reference::DockerRef;
use super::scope::Subject;
use crate::Digest;

/// Where root's containers tools look when nothing is configured.
pub const DEFAULT_LOOKASIDE: &str = "file:///var/lib/containers/sigstore";
/// A `registries.d` file larger than this is refused.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The merged `registries.d` configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesD {
    default: Option<Namespace>,
    docker: BTreeMap<String, Namespace>,
}

/// One entry: a lookaside base URL and whether to read sigstore attachments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Namespace {
    lookaside: Option<String>,
    use_sigstore_attachments: Option<bool>,
}

impl RegistriesD {
    /// Reads and merges every `*.yaml` file in `dir`; a directory that does not exist
    /// configures nothing.
    pub fn load(dir: &Path) -> crate::Result<Self> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(crate::Error::Io {
                    action: "listing",
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        let mut merged = Self::default();
        let mut origins: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            let text = crate::read_regular_file(&path, MAX_FILE_BYTES)?;
            let text = String::from_utf8_lossy(&text);
            let file = Self::parse(&path, &text).map_err(policy_error(&path))?;
            let mut take = |what: String, ns: Namespace, into: &mut Option<Namespace>| {
                if let Some(first) = origins.get(&what) {
                    return Err(PolicyProblem::Duplicate {
                        what,
                        first: first.clone(),
                        second: path.clone(),
                    });
                }
                origins.insert(what, path.clone());
                *into = Some(ns);
                Ok(())
            };
            if let Some(ns) = file.default {
                take("default-docker".into(), ns, &mut merged.default)
                    .map_err(policy_error(dir))?;
            }
            for (name, ns) in file.docker {
                let mut slot = None;
                take(format!("docker namespace {name:?}"), ns, &mut slot)
                    .map_err(policy_error(dir))?;
                merged.docker.insert(name, slot.expect("just set"));
            }
        }
        Ok(merged)
    }

    /// Parses one file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, PolicyProblem> {
        let docs = YamlLoader::load_from_str(text).map_err(|source| PolicyProblem::Yaml {
            path: path.to_owned(),
            source,
        })?;
        let shape = |key: &str, expected| PolicyProblem::YamlShape {
            path: path.to_owned(),
            key: key.to_owned(),
            expected,
        };
        let mut out = Self::default();
        let Some(top) = docs.first() else {
            return Ok(out);
        };
        let top = match top {
            Yaml::Hash(h) => h,
            Yaml::Null => return Ok(out),
            _ => return Err(shape("the document", "a mapping")),
        };
        for (key, value) in top {
            match key.as_str() {
                Some("default-docker") => out.default = namespace(value, "default-docker", &shape)?,
                Some("docker") => match value {
                    Yaml::Hash(entries) => {
                        for (name, ns) in entries {
                            let name = name
                                .as_str()
                                .ok_or_else(|| shape("docker", "keyed by names"))?;
                            let ns = namespace(ns, name, &shape)?.unwrap_or_default();
                            out.docker.insert(name.to_owned(), ns);
                        }
                    }
                    Yaml::Null => {}
                    _ => return Err(shape("docker", "a mapping")),
                },
                // Unknown keys are ignored, as containers' YAML reader does.
                _ => {}
            }
        }
        Ok(out)
    }

    /// The lookaside base URL for `subject` (the reference actually fetched).
    pub fn lookaside(&self, subject: &Subject) -> String {
        self.find(subject, |ns| ns.lookaside.clone())
            .unwrap_or_else(|| DEFAULT_LOOKASIDE.to_owned())
    }

    /// Whether cosign attachments are read for `subject`.
    pub fn use_sigstore_attachments(&self, subject: &Subject) -> bool {
        self.find(subject, |ns| ns.use_sigstore_attachments)
            .unwrap_or(false)
    }

    fn find<T>(&self, subject: &Subject, get: impl Fn(&Namespace) -> Option<T>) -> Option<T> {
        subject
            .scopes()
            .filter_map(|scope| self.docker.get(&scope))
            .chain(self.default.as_ref())
            .find_map(get)
    }
}

fn policy_error(path: &Path) -> impl FnOnce(PolicyProblem) -> crate::Error {
    let path = path.to_owned();
    move |problem| crate::Error::Policy { path, problem }
}

type Shape<'a> = dyn Fn(&str, &'static str) -> PolicyProblem + 'a;

fn namespace(
    value: &Yaml,
    key: &str,
    shape: &Shape<'_>,
) -> Result<Option<Namespace>, PolicyProblem> {
    let entries = match value {
        Yaml::Hash(h) => h,
        Yaml::Null => return Ok(None),
        _ => return Err(shape(key, "a mapping")),
    };
    let mut ns = Namespace::default();
    let mut old_name = None;
    for (k, v) in entries {
        let text = || match v {
            Yaml::String(s) => Ok(s.clone()),
            _ => Err(shape(k.as_str().unwrap_or(key), "a string")),
        };
        match k.as_str() {
            Some("lookaside") => ns.lookaside = Some(check_url(text()?)?),
            Some("sigstore") => old_name = Some(check_url(text()?)?),
            Some("use-sigstore-attachments") => match v {
                Yaml::Boolean(b) => ns.use_sigstore_attachments = Some(*b),
                _ => return Err(shape("use-sigstore-attachments", "true or false")),
            },
            _ => {}
        }
    }
    ns.lookaside = ns.lookaside.or(old_name);
    Ok(Some(ns))
}

fn check_url(url: String) -> Result<String, PolicyProblem> {
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "file" | "http" | "https") => Ok(url),
        _ => Err(PolicyProblem::LookasideUrl(crate::printable(&url, 300))),
    }
}

/// The URL of signature number `index` (from 0) of manifest `digest` of `reference`.
pub fn signature_url(base: &str, reference: &DockerRef, digest: &Digest, index: usize) -> String {
    format!(
        "{}/{}@sha256={}/signature-{}",
        base.trim_end_matches('/'),
        reference.path(),
        digest.hex(),
        index + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(text: &str) -> Subject {
        Subject::Docker(DockerRef::parse(text).unwrap())
    }

    const FILE: &str = "
default-docker:
  lookaside: file:///srv/sigstore
docker:
  127.0.0.1:5000/vendor:
    lookaside: http://127.0.0.1:8000/vendor
    use-sigstore-attachments: true
  127.0.0.1:5000/vendor/special:
    sigstore: https://old.example/special
  127.0.0.1:5000:
    use-sigstore-attachments: false
unknown: 1
";

    #[test]
    fn the_most_specific_entry_wins_then_default_docker() {
        let d = RegistriesD::parse(Path::new("a.yaml"), FILE).unwrap();
        assert_eq!(
            d.lookaside(&subject("127.0.0.1:5000/vendor/img:1")),
            "http://127.0.0.1:8000/vendor"
        );
        assert_eq!(
            d.lookaside(&subject("127.0.0.1:5000/vendor/special:1")),
            "https://old.example/special"
        );
        assert_eq!(
            d.lookaside(&subject("127.0.0.1:5000/other:1")),
            "file:///srv/sigstore"
        );
        assert!(d.use_sigstore_attachments(&subject("127.0.0.1:5000/vendor/special:1")));
        assert!(!d.use_sigstore_attachments(&subject("127.0.0.1:5000/other:1")));
        let none = RegistriesD::default();
        assert_eq!(none.lookaside(&subject("r.io/a:1")), DEFAULT_LOOKASIDE);
    }

    #[test]
    fn signature_urls_follow_the_lookaside_layout() {
        let d = Digest::of(b"m");
        let r = DockerRef::parse("127.0.0.1:5000/os/img:1").unwrap();
        assert_eq!(
            signature_url("file:///srv/sigstore/", &r, &d, 0),
            format!("file:///srv/sigstore/os/img@sha256={}/signature-1", d.hex())
        );
    }

    #[test]
    fn refuses_bad_shapes_and_urls() {
        for bad in [
            "docker: [1]",
            "default-docker:\n  lookaside: 3",
            "default-docker:\n  lookaside: ftp://x/y",
            "default-docker:\n  use-sigstore-attachments: yes please",
            "docker:\n  r.io: [",
        ] {
            assert!(
                RegistriesD::parse(Path::new("b.yaml"), bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_entry_in_two_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "docker:\n  r.io:\n    lookaside: file:///a\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "docker:\n  r.io:\n    lookaside: file:///b\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("c.txt"), "not yaml: [").unwrap();
        let err = RegistriesD::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::Policy {
                    problem: PolicyProblem::Duplicate { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            RegistriesD::load(&dir.path().join("none")).unwrap(),
            RegistriesD::default()
        );
    }
}
