//! `deploy/kubernetes/` holds manifests a cluster accepts and a config the binary
//! accepts: every file is valid YAML with the kind it should have; the ConfigMap's
//! `config.toml` passes `bootsource check-config`; the DaemonSet drops every
//! capability and adds back only ones the systemd unit's bounding set also grants,
//! keeps state on the node (hostPath), selects nodes and tolerates their taints, and
//! probes `/healthz` on the port the PodMonitor scrapes.
//!
//! YAML is read with python3-yaml (no YAML crate for a test of static files).

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::bootsource::{self as bs};
use crate::common::tools;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

fn load(name: &str) -> Value {
    tools::require("python3", "python3-yaml");
    let out = tools::run_command(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        &format!("{DIR}/{name}"),
    ]));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_manifests_are_what_they_say() {
    let kustomization = load("kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for (file, kind) in [
        ("namespace.yaml", "Namespace"),
        ("configmap.yaml", "ConfigMap"),
        ("daemonset.yaml", "DaemonSet"),
        ("podmonitor.yaml", "PodMonitor"),
    ] {
        assert!(resources.contains(&file), "{file} not in kustomization");
        assert_eq!(load(file)["kind"], kind, "{file}");
    }

    let ds = load("daemonset.yaml");
    let pod = &ds["spec"]["template"]["spec"];
    assert!(pod["nodeSelector"].is_object() && pod["tolerations"].is_array());
    let container = &pod["containers"][0];
    let caps = &container["securityContext"]["capabilities"];
    assert_eq!(caps["drop"], serde_json::json!(["ALL"]));
    let unit = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/bootsource.service"),
    )
    .unwrap();
    let bounding = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap();
    for cap in caps["add"].as_array().unwrap() {
        let cap = cap.as_str().unwrap();
        assert!(
            bounding.contains(&format!("CAP_{cap}")),
            "{cap} is not in the unit's {bounding}"
        );
    }
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let host_paths: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    assert_eq!(host_paths, ["/var/lib/bootsource"]);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let port = container["ports"][0]["name"].as_str().unwrap();
    let monitor = load("podmonitor.yaml");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], port);
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        ds["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_configmap_holds_a_config_the_daemon_accepts() {
    let map = load("configmap.yaml");
    let config = map["data"]["config.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, config).unwrap();
    let mut command = bs::command(["check-config"]);
    command.arg(&file);
    let out = tools::run_any_status(&mut command);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective = String::from_utf8_lossy(&out.stdout);
    // Scrapable from the pod network, and on the port the DaemonSet exposes.
    assert!(
        effective.contains("metrics_address = \"0.0.0.0:9478\""),
        "{effective}"
    );
    let ds = load("daemonset.yaml");
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        9478
    );
}
