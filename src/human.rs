//! Sizes and rates for people: `1.5 GiB`, `210 MB/s`, `64M` on the command line; and
//! text from outside (a registry's error body) made safe to show them on a terminal.

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes per second in decimal megabytes, as disk tools print them.
pub fn rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".into();
    }
    format!("{:.0} MB/s", bytes as f64 / seconds / 1e6)
}

/// `90` → `1m30s`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // display rounding of a non-negative time
pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Parses `4096`, `64K`, `64M`, `2G`, `1T` (binary multiples, optional `iB`/`B`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &t[digits.len()..];
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 64M"))?;
    let shift = match suffix
        .to_ascii_uppercase()
        .trim_end_matches('B')
        .trim_end_matches('I')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("invalid size {text:?}: unknown unit {suffix:?}")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// A size as the configuration writes it, exactly: `64M`, `1T`, `1000` (the largest
/// binary unit that divides it).
pub fn size_setting(n: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// `text` under `label`, safe for a terminal whoever wrote it
/// ([`bootsource_importer::escape_controls`]),
/// each further line indented under the first: so a registry's error body cannot pass
/// for a line of ours (`hint: …`).
pub fn labelled(label: &str, text: &str) -> String {
    let indent = " ".repeat(label.chars().count());
    let lines = text.trim_end_matches('\n').split('\n');
    let mut out = String::with_capacity(label.len() + text.len());
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(if i == 0 { label } else { &indent });
        out.push_str(&bootsource_importer::escape_controls(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(4 << 30), "4.0 GiB");
        assert_eq!(rate(200_000_000, 2.0), "100 MB/s");
        assert_eq!(duration(90.4), "1m30s");
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn text_from_outside_is_escaped_and_cannot_forge_a_line() {
        let body = "\x1b]0;owned\x07\x1b[2Jred\u{9b}1m\r\nhint: run this\n";
        assert_eq!(
            labelled("error: ", body),
            "error: \\u{1b}]0;owned\\u{7}\\u{1b}[2Jred\\u{9b}1m\\u{d}\n       hint: run this"
        );
        assert_eq!(labelled("  e: ", "a\u{202e}b\tc"), "  e: a\\u{202e}b\tc");
        assert_eq!(labelled("x: ", "plain"), "x: plain");
    }
}
