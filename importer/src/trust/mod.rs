//! Trust: whether the policy accepts who published an image, decided before a byte of
//! it is written.
//!
//! bootsource reads containers' own configuration, so a node's podman, CRI-O and
//! bootsource trust the same publishers: `policy.json` ([`policy`]: requirements per
//! transport and scope, chosen as containers chooses them, [`scope`]) and
//! `registries.d` ([`lookaside`]: where simple signatures live, whether cosign
//! attachments are read). For an image it gathers the signatures ([`fetch`]) of the
//! manifest being imported, and evaluates the requirements ([`evaluate`]): GPG simple
//! signing ([`gpg`], rpgp) and cosign keys ([`cosign`], ECDSA P-256), each checked for
//! the manifest digest and the signed identity ([`identity`], [`payload`]).
//!
//! [`Import::start`](crate::Import::start) calls [`judge`] after resolving the
//! manifest and before the pipeline starts, and refuses the image with
//! [`Error::Refused`](crate::Error::Refused) unless the verdict accepts it; `inspect`
//! shows the verdict instead. What this module does not do: keyless sigstore (Fulcio,
//! Rekor), the registry signature API extension, or `signedBaseLayer` — a policy asking
//! for them refuses the image, never accepts it.
//!
//! ```no_run
//! # fn f() -> Result<(), bootsource_importer::Error> {
//! use bootsource_importer::TrustPolicy;
//! let trust = TrustPolicy::load(
//!     "/etc/containers/policy.json".as_ref(),
//!     Some("/etc/containers/registries.d".as_ref()),
//! )?;
//! println!("policy: {}", trust.description());
//! # Ok(()) }
//! ```

mod cosign;
mod evaluate;
mod fetch;
mod gpg;
mod identity;
mod lookaside;
mod payload;
mod policy;
mod problem;
mod reference;
mod scope;
mod verdict;

use std::path::{Path, PathBuf};

pub use problem::{
    FetchProblem, KeyProblem, PolicyProblem, PolicyRefusal, Refusal, SignatureProblem,
};
pub use scope::Scope;
pub use verdict::{SignatureInfo, Verdict};

use evaluate::{Judged, LoadedKeys};
use lookaside::RegistriesD;
use policy::{KeySource, Policy, Requirement};
use reference::DockerRef;
use scope::Subject;

use crate::origin::Origin;
use crate::{Digest, Error, ImageRef, RegistryOptions, Result};

/// The policy containers tools read when none is named.
pub const SYSTEM_POLICY: &str = "/etc/containers/policy.json";
/// The `registries.d` containers tools read when none is named.
pub const SYSTEM_REGISTRIES_D: &str = "/etc/containers/registries.d";
/// A signature larger than this is not one (containers' limit).
pub const MAX_SIGNATURE_BYTES: usize = 4 << 20;
/// A policy or key file larger than this is refused.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// A signature policy and where signatures are found: what `--policy` and
/// `--registries-d` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    policy: Policy,
    registries: RegistriesD,
    description: String,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        Self::accept_anything()
    }
}

impl TrustPolicy {
    /// Reads `policy` (a `policy.json`) and `registries_d` (a directory of YAML files;
    /// `None` for none).
    pub fn load(policy: &Path, registries_d: Option<&Path>) -> Result<Self> {
        let error = |path: &Path| {
            let path = path.to_owned();
            move |problem| Error::Policy { path, problem }
        };
        let bytes = crate::read_regular_file(policy, MAX_FILE_BYTES)?;
        let parsed = Policy::parse(&bytes).map_err(error(policy))?;
        let registries = match registries_d {
            Some(dir) => RegistriesD::load(dir)?,
            None => RegistriesD::default(),
        };
        Ok(Self {
            policy: parsed,
            registries,
            description: policy.display().to_string(),
        })
    }

    /// No policy: every image is accepted, signed or not.
    pub fn accept_anything() -> Self {
        Self {
            policy: Policy::accept_anything(),
            registries: RegistriesD::default(),
            description: "none (every image is accepted)".into(),
        }
    }

    /// Where the policy came from, for logs and `inspect`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether this policy can ask for a signature at all.
    fn wants_signatures(&self) -> bool {
        std::iter::once(&self.policy.default)
            .chain(
                self.policy
                    .transports
                    .values()
                    .flat_map(|scopes| scopes.values()),
            )
            .flatten()
            .any(|r| {
                matches!(
                    r,
                    Requirement::SignedBy { .. } | Requirement::SigstoreSigned { .. }
                )
            })
    }
}

/// The image a decision is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// What is fetched (a mirror, maybe): its `registries.d` entry applies.
    pub fetched: &'a ImageRef,
    /// What the user asked for: the policy judges this.
    pub named: &'a ImageRef,
    /// The manifest being imported (the platform's, for a multi-arch image).
    pub manifest: Digest,
}

/// Gathers the signatures of `candidate` and evaluates `trust` for it.
pub(crate) async fn judge(
    origin: &Origin,
    candidate: Candidate<'_>,
    trust: &TrustPolicy,
    registry: &RegistryOptions,
) -> Result<Verdict> {
    let named = subject(candidate.named)?;
    let (scope, requirements) = scope::requirements(&trust.policy, &named);
    let needs_signatures = requirements.iter().any(|r| {
        matches!(
            r,
            Requirement::SignedBy { .. } | Requirement::SigstoreSigned { .. }
        )
    });
    // With a policy that can ask for signatures, show them even where this scope does not.
    let signatures = if needs_signatures || trust.wants_signatures() {
        let fetched = subject(candidate.fetched)?;
        fetch::signatures(
            origin,
            &fetched,
            &candidate.manifest,
            &trust.registries,
            registry,
        )
        .await
    } else {
        Ok(Vec::new())
    };
    let signatures = match signatures {
        Ok(s) => s,
        Err(e) if needs_signatures => return Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "signatures not needed and unreadable");
            Vec::new()
        }
    };
    let intended = match &named {
        Subject::Docker(r) => Some(r),
        Subject::Layout(_) => None,
    };
    let judged = Judged {
        intended,
        shown: named.identity(),
        manifest: candidate.manifest,
    };
    let (refusal, signatures) = evaluate::judge(requirements, &judged, &signatures, &load_keys);
    Ok(Verdict {
        policy: trust.description.clone(),
        scope,
        accepted: refusal.is_none(),
        refusal,
        signatures,
    })
}

/// The policy's view of an image reference.
fn subject(image: &ImageRef) -> Result<Subject> {
    Ok(match image {
        ImageRef::Registry(r) => Subject::Docker(DockerRef::of_image(r)),
        ImageRef::Layout { dir, .. } => {
            let resolved = std::fs::canonicalize(dir).map_err(|source| Error::Io {
                action: "resolving",
                path: dir.clone(),
                source,
            })?;
            Subject::Layout(resolved)
        }
        ImageRef::Http(_) | ImageRef::File(_) | ImageRef::Stdin => {
            return Err(Error::Internal(
                "a single file is vouched for by checksums, not judged by the policy".into(),
            ));
        }
    })
}

/// Reads the keys a requirement names (files are read at evaluation, as containers does).
fn load_keys(source: &KeySource) -> std::result::Result<LoadedKeys, KeyProblem> {
    match source {
        KeySource::Paths(paths) => paths
            .iter()
            .map(|path| {
                let bytes = crate::read_regular_file(path, MAX_FILE_BYTES).map_err(key_problem)?;
                Ok((path.display().to_string(), bytes))
            })
            .collect(),
        KeySource::Data(blobs) => Ok(blobs
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("keyData #{}", i + 1), b.clone()))
            .collect()),
    }
}

/// Why a key file could not be read, as a value a refusal can carry.
fn key_problem(error: Error) -> KeyProblem {
    match error {
        Error::TooLarge { path, .. } => KeyProblem::TooLarge(path),
        Error::NotRegularFile { path, kind } => KeyProblem::NotRegularFile { path, kind },
        Error::Io { path, source, .. } => KeyProblem::Read {
            path,
            kind: source.kind(),
        },
        other => KeyProblem::Read {
            path: PathBuf::from(other.to_string()),
            kind: std::io::ErrorKind::Other,
        },
    }
}
