//! Which scope of `policy.json` applies: for each level (repo:tag, repo, namespace,
//! host, `*.domain`, the transport's `""`, then `default`) a row where it is the most
//! specific scope present and overrides the next less specific one, both ways round
//! (accept over reject, reject over accept); bootsource and skopeo judge each row.

use serde_json::{Map, Value, json};

use crate::common::oci::Artifact as _;

use super::{Case, anything, check_rows, reject};

/// A scope level; `{H}` is the registry's `HOST:PORT`.
const TAG: &str = "{H}/os/img:1";
/// The image pinned by digest (`{D}`), when it is pulled so.
const DIGEST: &str = "{H}/os/img@{D}";
const REPO: &str = "{H}/os/img";
const NAMESPACE: &str = "{H}/os";
const HOST: &str = "{H}";
const WILDCARD: &str = "*.0.0.1";
const TRANSPORT: &str = "";
/// Not a scope: the policy's `default`.
const DEFAULT: &str = "default";

#[derive(Debug)]
struct Row {
    /// The more specific scope and whether it accepts.
    specific: (&'static str, bool),
    /// The less specific one, with the opposite verdict.
    general: &'static str,
    /// Pulled by digest rather than by tag.
    by_digest: bool,
}

impl Row {
    fn expected(&self) -> bool {
        self.specific.1
    }

    /// The policy: `specific` says the row's verdict, `general` the opposite, and
    /// `default` (unless it is `general`) the opposite too.
    fn policy(&self, case: &Case) -> Value {
        let verdict = |accept: bool| if accept { anything() } else { reject() };
        let (specific, accept) = self.specific;
        let mut docker = Map::new();
        docker.insert(fill(case, specific), json!([verdict(accept)]));
        if self.general != DEFAULT {
            docker.insert(fill(case, self.general), json!([verdict(!accept)]));
        }
        json!({"default": [verdict(!accept)], "transports": {"docker": docker}})
    }
}

fn fill(case: &Case, scope: &str) -> String {
    scope
        .replace("{H}", &case.host())
        .replace("{D}", case.image.digest())
}

fn rows() -> Vec<Row> {
    let levels = [TAG, REPO, NAMESPACE, HOST, WILDCARD, TRANSPORT, DEFAULT];
    let mut rows = Vec::new();
    for pair in levels.windows(2) {
        for accept in [true, false] {
            rows.push(Row {
                specific: (pair[0], accept),
                general: pair[1],
                by_digest: false,
            });
        }
    }
    // By digest, the digest's scope is the most specific; the tag's does not apply.
    for accept in [true, false] {
        for (specific, general) in [(DIGEST, REPO), (REPO, TAG)] {
            rows.push(Row {
                specific: (specific, accept),
                general,
                by_digest: true,
            });
        }
    }
    rows
}

#[test]
fn trust_the_most_specific_scope_wins_as_in_skopeo() {
    let case = Case::new();
    check_rows(&rows(), Row::expected, |row| {
        let policy = case.policy(row.policy(&case));
        let source = if row.by_digest {
            case.by_digest()
        } else {
            case.source.clone()
        };
        case.judge_source(&source, &policy).0
    });
}
