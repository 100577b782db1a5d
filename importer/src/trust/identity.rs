//! `signedIdentity`: does the reference a signature names fit the image?
//!
//! Pure, and the rules are containers': the image's own reference is the one the
//! user asked for ([`super::scope::Subject`]); a signature naming a bare repository
//! never matches; the manifest digest is checked elsewhere, so "digest references match
//! by repository" is safe. An `oci:` layout has no docker reference, so only the
//! `exact*` forms can match for it.

use super::policy::IdentityRule;
use super::reference::DockerRef;

/// Whether a signature naming `signed` satisfies `rule` for an image known as
/// `intended` (`None` for an image with no docker reference).
pub fn matches(rule: &IdentityRule, intended: Option<&DockerRef>, signed: &DockerRef) -> bool {
    match rule {
        IdentityRule::MatchExact => intended.is_some_and(|i| exact(i, signed)),
        IdentityRule::MatchRepoDigestOrExact => {
            intended.is_some_and(|i| repo_digest_or_exact(i, signed))
        }
        IdentityRule::MatchRepository => intended.is_some_and(|i| i.name() == signed.name()),
        IdentityRule::ExactReference(reference) => exact(reference, signed),
        IdentityRule::ExactRepository(repository) => repository.name() == signed.name(),
        IdentityRule::RemapIdentity {
            prefix,
            signed_prefix,
        } => intended
            .and_then(|i| i.remapped(prefix, signed_prefix))
            .is_some_and(|i| repo_digest_or_exact(&i, signed)),
    }
}

fn exact(intended: &DockerRef, signed: &DockerRef) -> bool {
    !intended.is_name_only() && !signed.is_name_only() && intended == signed
}

fn repo_digest_or_exact(intended: &DockerRef, signed: &DockerRef) -> bool {
    if signed.is_name_only() {
        return false;
    }
    if intended.is_digest_only() {
        intended.name() == signed.name()
    } else {
        !intended.is_name_only() && intended == signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    fn r(text: &str) -> DockerRef {
        DockerRef::parse(text).unwrap()
    }

    fn digest() -> String {
        Digest::of(b"manifest").to_string()
    }

    #[test]
    fn match_repo_digest_or_exact_is_exact_for_tags_and_by_repository_for_digests() {
        let rule = IdentityRule::MatchRepoDigestOrExact;
        let tagged = r("r.io/os/img:1");
        assert!(matches(&rule, Some(&tagged), &r("r.io/os/img:1")));
        assert!(!matches(&rule, Some(&tagged), &r("r.io/os/img:2")));
        assert!(!matches(&rule, Some(&tagged), &r("r.io/os/other:1")));
        assert!(!matches(&rule, Some(&tagged), &r("r.io/os/img")));
        let pinned = r(&format!("r.io/os/img@{}", digest()));
        assert!(matches(&rule, Some(&pinned), &r("r.io/os/img:anything")));
        assert!(!matches(&rule, Some(&pinned), &r("r.io/os/other:1")));
        assert!(!matches(&rule, None, &r("r.io/os/img:1")));
    }

    #[test]
    fn exact_repository_and_fixed_forms() {
        let image = r("r.io/os/img:1");
        assert!(!matches(
            &IdentityRule::MatchExact,
            Some(&image),
            &r("r.io/os/img:2")
        ));
        assert!(matches(
            &IdentityRule::MatchExact,
            Some(&image),
            &r("r.io/os/img:1")
        ));
        assert!(matches(
            &IdentityRule::MatchRepository,
            Some(&image),
            &r("r.io/os/img:2")
        ));
        assert!(!matches(
            &IdentityRule::MatchRepository,
            Some(&image),
            &r("r.io/x/img:1")
        ));
        let fixed = IdentityRule::ExactReference(r("vendor.io/img:stable"));
        assert!(matches(&fixed, None, &r("vendor.io/img:stable")));
        assert!(!matches(&fixed, Some(&image), &r("r.io/os/img:1")));
        let repo = IdentityRule::ExactRepository(r("vendor.io/img"));
        assert!(matches(&repo, None, &r("vendor.io/img:any")));
        assert!(!matches(&repo, None, &r("vendor.io/other:any")));
    }

    #[test]
    fn remap_identity_judges_a_mirror_by_the_name_it_was_signed_under() {
        let rule = IdentityRule::RemapIdentity {
            prefix: "127.0.0.1:5000/mirror".into(),
            signed_prefix: "vendor.io/os".into(),
        };
        let image = r("127.0.0.1:5000/mirror/img:1");
        assert!(matches(&rule, Some(&image), &r("vendor.io/os/img:1")));
        assert!(!matches(
            &rule,
            Some(&image),
            &r("127.0.0.1:5000/mirror/img:1")
        ));
        let elsewhere = r("other.io/img:1");
        assert!(matches(&rule, Some(&elsewhere), &r("other.io/img:1")));
    }
}
