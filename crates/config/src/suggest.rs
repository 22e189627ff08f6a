//! "did you mean ...?" suggestions.

/// Levenshtein distance between two strings (by characters).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `input`, if it is close enough to be a likely
/// typo: a case-insensitive match, or an edit distance of at most a third of
/// the length (at least 1, at most 3).
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == input {
            continue;
        }
        let d = if c.eq_ignore_ascii_case(input) {
            0
        } else {
            distance(&lower, c)
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let limit = (input.chars().count() / 3).clamp(1, 3);
    best.filter(|&(d, _)| d <= limit).map(|(_, c)| c)
}

/// `; did you mean "x"?` or nothing.
pub(crate) fn hint<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(input, candidates) {
        Some(c) => format!("; did you mean \"{c}\"?"),
        None => String::new(),
    }
}

/// The suggestion for a boolean written the YAML 1.1 / other-language way.
pub(crate) fn bool_hint(input: &str) -> String {
    let lower = input.to_ascii_lowercase();
    let guess = match lower.as_str() {
        "true" | "yes" | "y" | "on" | "1" | "enable" | "enabled" => Some("true"),
        "false" | "no" | "n" | "off" | "0" | "disable" | "disabled" => Some("false"),
        _ => closest(input, ["true", "false"]),
    };
    match guess {
        Some(g) => format!("; did you mean \"{g}\"?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("fnvla_64", ["fnv1a_64", "fnv1_64", "md5"]),
            Some("fnv1a_64")
        );
        assert_eq!(
            closest("Ketama", ["ketama", "modula", "random"]),
            Some("ketama")
        );
        assert_eq!(closest("zzzzzz", ["ketama", "modula", "random"]), None);
        assert_eq!(bool_hint("yes"), "; did you mean \"true\"?");
        assert_eq!(bool_hint("True"), "; did you mean \"true\"?");
        assert_eq!(bool_hint("maybe"), "");
    }
}
