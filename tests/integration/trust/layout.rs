//! `oci:DIR:TAG` under a policy: judged by the `oci` transport's scopes (the layout's
//! directory, symlinks resolved, then its parents, then `""`, then `default`), never by
//! the `docker` transport's. A layout carries no signatures (as in containers), so a
//! `signedBy` requirement refuses it; skopeo, given the same policy, is the oracle for
//! every row, signature requirements included.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{
    anything, check_rows, disk_image, expect_error_text, fresh_target, reject, signed_by, verdicts,
};
use crate::common::bootsource::{ImportReport, assert_same_disk, expect_success, layout};
use crate::common::disk;
use crate::common::oci::Platform;
use crate::common::signing::GpgKey;

#[derive(Debug)]
struct Row {
    what: &'static str,
    policy: Value,
    /// Imported through a symlink to the layout rather than by its real path.
    via_symlink: bool,
    accepted: bool,
    /// What bootsource's refusal must say.
    says: &'static str,
}

/// A layout `DIR/layouts/img`, a symlink to it, and the policy rows about it.
struct Setup {
    dir: tempfile::TempDir,
    raw: PathBuf,
    source: String,
    symlinked: String,
    registries_d: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        disk::write_raw_disk(&raw, 1 << 20, 9);
        let image = disk_image(&raw, Platform::linux_amd64());
        let real = dir.path().join("layouts").join("img");
        fs::create_dir_all(&real).unwrap();
        let source = layout(&real, "1", &image);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let symlinked = format!("oci:{}:1", link.display());
        let registries_d = dir.path().join("registries.d");
        fs::create_dir(&registries_d).unwrap();
        Setup {
            dir,
            raw,
            source,
            symlinked,
            registries_d,
        }
    }

    /// The layout's directory and its parent, as the policy names them (resolved).
    fn scopes(&self) -> (String, String) {
        let real = fs::canonicalize(self.dir.path().join("layouts/img")).unwrap();
        let parent = real.parent().unwrap().display().to_string();
        (real.display().to_string(), parent)
    }

    fn judge(&self, row: &Row) -> bool {
        println!("row: {}", row.what);
        let path = self.dir.path().join("policy.json");
        fs::write(&path, serde_json::to_vec_pretty(&row.policy).unwrap()).unwrap();
        let target = fresh_target(self.dir.path());
        let source = if row.via_symlink {
            &self.symlinked
        } else {
            &self.source
        };
        let (accepted, output) = verdicts(source, &target, &path, &self.registries_d);
        if accepted {
            let report = ImportReport::parse(&expect_success(&output, "import"));
            assert_same_disk(&self.raw, &target, &report);
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            expect_error_text(&stderr, &["signature policy", row.says]);
        }
        accepted
    }
}

fn oci(scopes: Value, default: Value) -> Value {
    json!({"default": [default], "transports": {"oci": scopes}})
}

fn rows(setup: &Setup, key: &Path) -> Vec<Row> {
    let (dir, parent) = setup.scopes();
    let row = |what, policy, accepted, says| Row {
        what,
        policy,
        via_symlink: false,
        accepted,
        says,
    };
    let exact = json!({"type": "exactReference", "dockerReference": "vendor.example/os/img:1"});
    let mut signed_exact = signed_by(key);
    signed_exact["signedIdentity"] = exact;
    vec![
        row(
            "the directory's scope",
            oci(json!({ &dir: [anything()] }), reject()),
            true,
            "",
        ),
        row(
            "the parent's scope",
            oci(json!({ &parent: [anything()] }), reject()),
            true,
            "",
        ),
        row(
            "the directory over its parent",
            oci(
                json!({ &dir: [reject()], &parent: [anything()] }),
                anything(),
            ),
            false,
            "rejects every image",
        ),
        row(
            "the parent over the transport's default",
            oci(json!({ &parent: [reject()], "": [anything()] }), anything()),
            false,
            "rejects every image",
        ),
        row(
            "the transport's default",
            oci(json!({ "": [anything()] }), reject()),
            true,
            "",
        ),
        row(
            "the docker transport does not apply",
            json!({"default": [reject()], "transports": {"docker": {"": [anything()]}}}),
            false,
            "rejects every image",
        ),
        row(
            "signedBy: a layout has no signatures",
            oci(json!({ &dir: [signed_by(key)] }), anything()),
            false,
            "requires a signature",
        ),
        row(
            "signedBy with exactReference",
            oci(json!({ "": [signed_exact] }), anything()),
            false,
            "requires a signature",
        ),
        Row {
            via_symlink: true,
            ..row(
                "through a symlink, the real directory's scope",
                oci(json!({ &dir: [anything()] }), reject()),
                true,
                "",
            )
        },
        Row {
            via_symlink: true,
            ..row(
                "through a symlink, not the link's",
                oci(
                    json!({ setup.dir.path().join("link").display().to_string(): [anything()] }),
                    reject(),
                ),
                false,
                "rejects every image",
            )
        },
    ]
}

#[test]
fn trust_oci_layouts_are_judged_by_the_oci_scopes_as_in_skopeo() {
    let setup = Setup::new();
    let key = GpgKey::generate("vendor");
    let rows = rows(&setup, &key.public);
    check_rows(&rows, |row| row.accepted, |row| setup.judge(row));
}
