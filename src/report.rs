//! Error output: the whole cause chain, then what to do about it.
//!
//! A hint is chosen by the error's type and variant somewhere in the chain (the
//! importer, the place written, the store), never by searching the message text.

use bootsource_importer::Error as ImportError;
use bootsource_place::{Error as PlaceError, Unusable};
use bootsource_storage::Error as StoreError;

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
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<ImportError>() {
            import_hint(e)
        } else if let Some(e) = cause.downcast_ref::<PlaceError>() {
            place_hint(e)
        } else if let Some(e) = cause.downcast_ref::<StoreError>() {
            store_hint(e)
        } else {
            None
        }
    })
}

fn import_hint(e: &ImportError) -> Option<&'static str> {
    match e {
        ImportError::DigestMismatch { .. } | ImportError::SizeMismatch { .. } => Some(
            "the registry or layout served bytes that do not match the manifest; nothing was imported",
        ),
        ImportError::DiskTooLarge { .. } => Some(
            "raise --max-virtual-size (max_virtual_size in the config) if you trust this image",
        ),
        ImportError::NoMatchingPlatform { .. } => {
            Some("choose one of the offered platforms with --platform")
        }
        e @ ImportError::Registry { .. } if e.is_unauthorized() => {
            Some("log in (podman login / docker login) or pass --auth-file")
        }
        e @ ImportError::Registry { .. } if e.is_untrusted_certificate() => Some(
            "pass --cert-dir with the registry's CA certificate, or --tls-verify=false for a test registry",
        ),
        e @ ImportError::Registry { .. } if e.is_not_tls() => Some(
            "the registry does not speak TLS there; use --tls-verify=false for a plain-HTTP registry",
        ),
        e @ ImportError::Registry { .. } if e.is_unreachable() => Some(
            "check that the registry is reachable; use --tls-verify=false for a plain-HTTP registry",
        ),
        _ => None,
    }
}

fn place_hint(e: &PlaceError) -> Option<&'static str> {
    match e {
        PlaceError::TooSmall { .. } => Some("use a larger device, or a file target"),
        PlaceError::BelowReserve { .. } => {
            Some("free space on that filesystem, or lower --min-free (min_free in the config)")
        }
        PlaceError::Unusable {
            problem: Unusable::IsDirectory,
            ..
        } => Some("name the image file to create inside that directory"),
        _ => None,
    }
}

fn store_hint(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::PoolExhausted { .. } => Some(
            "add a device to the block pool, or lower imports_to_keep so old versions make room",
        ),
        _ => None,
    }
}
