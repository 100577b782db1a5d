//! `bootsource inspect SOURCE`: what an image holds, without importing it.

use anyhow::Context;
use bootsource_importer::{DiskSize, ImageInfo, Verdict};

use crate::cli::InspectArgs;
use crate::human;

pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    let options = super::options(&args.registry, &args.trust, &args.file).await?;
    let info = bootsource_importer::inspect(&args.source, &options)
        .await
        .with_context(|| format!("inspecting {}", args.source))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", text(&info));
    }
    Ok(())
}

fn text(info: &ImageInfo) -> String {
    let mut out = format!(
        "Source:          {}\nDigest:          {}\n",
        info.image, info.digest
    );
    if info.manifest_digest != info.digest {
        out += &format!("Manifest digest: {}\n", info.manifest_digest);
    }
    if let Some(p) = &info.platform {
        out += &format!("Platform:        {p}\n");
    }
    if !info.layers.is_empty() {
        out += "Layers:\n";
    }
    for l in &info.layers {
        out += &format!(
            "  {}  {:>10}  {}\n",
            l.digest,
            human::bytes(l.size),
            l.media_type
        );
    }
    let d = &info.disk;
    let size = d
        .file_size
        .map_or_else(|| "? bytes".to_owned(), human::bytes);
    let disk = match (&info.layers[..], d.layer) {
        ([], _) => format!("{} ({size})", d.name),
        (_, Some(layer)) => format!("disk/{} ({size} in layer {})", d.name, layer.short()),
        (_, None) => format!("disk/{} ({size})", d.name),
    };
    let virtual_size = match d.virtual_size {
        DiskSize::Known(n) => format!("{} ({n} bytes)", human::bytes(n)),
        DiskSize::Unknown { .. } => "known at the end of the disk".to_owned(),
    };
    out += &format!(
        "Disk:            {disk}\nFormat:          {}\nVirtual size:    {virtual_size}\n",
        match d.subformat {
            Some(sub) => format!("{} ({sub})", d.format),
            None => d.format.to_string(),
        },
    );
    if let Some(q) = &d.qcow2 {
        out += &format!(
            "qcow2:           version {}, {} clusters, {:?} compression{}\n",
            q.version,
            human::bytes(q.cluster_size),
            q.compression,
            if q.extended_l2 { ", extended L2" } else { "" }
        );
    }
    out + &info.trust.as_ref().map(trust).unwrap_or_default()
}

/// The policy's decision and who signed the image.
fn trust(verdict: &Verdict) -> String {
    let decision = match &verdict.refusal {
        None => "accepted".to_owned(),
        Some(refusal) => format!("REFUSED: {refusal}"),
    };
    let mut out = format!(
        "Policy:          {} ({}): {decision}\nSignatures:      {}\n",
        verdict.policy,
        verdict.scope,
        if verdict.signatures.is_empty() {
            "none"
        } else {
            ""
        }
    );
    for s in &verdict.signatures {
        let signer = s.signer.as_deref().unwrap_or("unknown key");
        let checked = if s.verified {
            "verified"
        } else {
            "not verified"
        };
        out += &format!(
            "  {} by {signer} ({checked}) for {} at {}\n",
            s.format,
            s.identity.as_deref().unwrap_or("?"),
            s.manifest_digest.as_deref().unwrap_or("?"),
        );
        if let Some(problem) = &s.problem {
            out += &format!("    {problem}\n");
        }
    }
    out
}
