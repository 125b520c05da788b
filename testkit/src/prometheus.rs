//! A strict check of Prometheus' text exposition format (0.0.4), for the
//! tests of the pool's and the node's `/metrics`.

use std::collections::HashMap;

/// Checks Prometheus' text format (0.0.4) strictly: every line a HELP, a
/// TYPE before its samples, or a sample with a valid name, labels and
/// value; histogram buckets cumulative up to `+Inf` = `_count`. Returns the
/// samples as `name{labels}` → value.
///
/// # Panics
/// On the first line that breaks the format, or a name without `prefix`.
pub fn check_text_format(text: &str, prefix: &str) -> HashMap<String, f64> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let mut buckets: HashMap<String, Vec<f64>> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name, true) && name.starts_with(prefix), "HELP name: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "one TYPE per family: {line}");
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line: {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels close")),
                None => (series, ""),
            };
            assert!(is_name(name, true) && name.starts_with(prefix), "sample name: {line}");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (label, quoted) = pair.split_once('=').expect("label=value");
                assert!(is_name(label, false), "label name: {line}");
                assert!(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'), "quoted: {line}");
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
                .unwrap_or(name);
            assert!(types.contains_key(family), "TYPE before samples: {line}");
            if name.ends_with("_bucket") {
                let others: String = labels.split(',').filter(|p| !p.starts_with("le=")).collect::<Vec<_>>().join(",");
                let key = format!("{family}{{{others}}}");
                let list = buckets.entry(key).or_default();
                assert!(list.last().is_none_or(|last| *last <= value), "cumulative buckets: {line}");
                list.push(value);
                if labels.contains("le=\"+Inf\"") {
                    samples.insert(format!("{family}_inf{{{others}}}"), value);
                }
            }
            samples.insert(series.to_owned(), value);
        }
    }
    for (key, value) in &samples {
        if let Some(rest) = key.split_once("_inf{") {
            let count =
                format!("{}_count{}", rest.0, if rest.1 == "}" { String::new() } else { format!("{{{}", rest.1) });
            assert_eq!(samples.get(&count), Some(value), "+Inf bucket = {count}");
        }
    }
    samples
}
