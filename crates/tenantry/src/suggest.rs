//! "Did you mean …?": the existing names closest to one a person typed.

/// At most this many suggestions.
const MAX: usize = 3;

/// How alike two names are, 0 to 1, compared case-insensitively; `None` when they
/// are not close enough to suggest. Names of several `/`-separated parts
/// (`@scope/name`) are compared part by part, and every part must be equal or close:
/// two plugins of one scope share a prefix that says nothing about whether their
/// names are alike. Parts are close when their normalized Levenshtein similarity is
/// at least 0.7 or their Jaro-Winkler similarity at least 0.85.
fn closeness(typed: &str, candidate: &str) -> Option<f64> {
    let (a, b) = (typed.to_lowercase(), candidate.to_lowercase());
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    let pairs: Vec<(&str, &str)> = if pa.len() == pb.len() {
        pa.into_iter().zip(pb).collect()
    } else {
        vec![(a.as_str(), b.as_str())]
    };
    let mut worst = 1.0f64;
    for (x, y) in pairs.into_iter().filter(|(x, y)| x != y) {
        worst = worst.min(part_closeness(x, y)?);
    }
    Some(worst)
}

fn part_closeness(a: &str, b: &str) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let lev = strsim::normalized_levenshtein(a, b);
    let jw = strsim::jaro_winkler(a, b);
    (lev >= 0.7 || jw >= 0.85).then_some(lev.max(jw))
}

/// The (at most three) names among `candidates` closest to `typed`, best first;
/// none that is `typed` itself.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter(|c| *c != typed)
        .filter_map(|c| closeness(typed, c).map(|s| (s, c)))
        .collect();
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
    scored.dedup_by(|x, y| x.1 == y.1);
    scored
        .into_iter()
        .take(MAX)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// `"; did you mean X?"`, `"; did you mean X or Y?"`, or "" when nothing is close.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let names = closest(typed, candidates);
    match names.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGINS: [&str; 6] = [
        "@examples/echo",
        "@examples/kv-counter",
        "@examples/secret-user",
        "@examples/tool-caller",
        "@examples/http-fetch",
        "@examples/attacks",
    ];

    #[test]
    fn a_typo_in_a_plugin_name_suggests_the_plugin() {
        assert_eq!(closest("@examples/ecko", PLUGINS), ["@examples/echo"]);
        assert_eq!(
            closest("@examples/kv-countr", PLUGINS),
            ["@examples/kv-counter"]
        );
        assert_eq!(closest("@exmples/echo", PLUGINS), ["@examples/echo"]);
        assert_eq!(closest("@Examples/Echo", PLUGINS), ["@examples/echo"]);
    }

    #[test]
    fn a_far_off_name_suggests_nothing_even_in_the_same_scope() {
        assert!(closest("@examples/zzz", PLUGINS).is_empty());
        assert!(closest("@examples/weather", PLUGINS).is_empty());
        assert!(closest("@other/thing", PLUGINS).is_empty());
        assert_eq!(did_you_mean("@examples/zzz", PLUGINS), "");
    }

    #[test]
    fn short_names_and_several_matches() {
        assert_eq!(closest("bott", ["bot", "alice", "robot-x"]), ["bot"]);
        assert_eq!(
            did_you_mean("acme", ["acme1", "acme2", "acme3", "acme4", "globex"]),
            "; did you mean acme1, acme2 or acme3?"
        );
        assert_eq!(did_you_mean("bott", ["bot"]), "; did you mean bot?");
        assert!(closest("", ["a"]).is_empty());
    }
}
