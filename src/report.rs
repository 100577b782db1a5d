//! Error output: the whole cause chain, then what to do about it.

use bootsource_importer::Error as ImportError;

use crate::human;

/// Prints `error: …`, each cause on its own line, and a hint when one applies.
pub fn print_error(e: &anyhow::Error) {
    // Causes may quote a registry's answer: escaped, never obeyed.
    eprintln!("{}", human::labelled("error: ", &e.to_string()));
    for cause in e.chain().skip(1) {
        eprintln!("{}", human::labelled("  caused by: ", &cause.to_string()));
    }
    if let Some(hint) = hint(e) {
        eprintln!("hint: {hint}");
    }
}

fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let text = format!("{e:#}");
    let import = e.chain().find_map(|c| c.downcast_ref::<ImportError>());
    match import {
        Some(ImportError::DigestMismatch { .. } | ImportError::SizeMismatch { .. }) => Some(
            "the registry or layout served bytes that do not match the manifest; nothing was imported",
        ),
        Some(ImportError::TargetTooSmall { .. }) => Some("use a larger device, or a file target"),
        Some(ImportError::NoMatchingPlatform { .. }) => {
            Some("choose one of the offered platforms with --platform")
        }
        Some(e @ ImportError::Registry { .. }) if e.is_unauthorized() => {
            Some("log in (podman login / docker login) or pass --auth-file")
        }
        Some(ImportError::Registry { .. })
            if text.contains("certificate") || text.contains("InvalidCertificate") =>
        {
            Some(
                "pass --cert-dir with the registry's CA certificate, or --tls-verify=false for a test registry",
            )
        }
        Some(ImportError::Registry { .. })
            if text.contains("Connection refused") || text.contains("error sending request") =>
        {
            Some(
                "check that the registry is reachable; use --tls-verify=false for a plain-HTTP registry",
            )
        }

        _ => None,
    }
}
