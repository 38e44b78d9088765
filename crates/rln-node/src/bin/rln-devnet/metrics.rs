//! Reading a node's `/metrics` text: counters by name and label, and medians from histogram
//! buckets.

use std::collections::BTreeMap;

/// One scrape: `name{labels}` → value.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scrape {
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    pub(crate) fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect();
        Self { samples }
    }

    /// The sample named exactly `key` (with its labels, e.g. `x_total{type="spam"}`), or 0.
    pub(crate) fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// Every `name{label="v"}` sample: `(v, value)`.
    pub(crate) fn by_label(&self, name: &str, label: &str) -> Vec<(String, f64)> {
        let prefix = format!("{name}{{{label}=\"");
        self.samples
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                let value = rest.split('"').next()?;
                Some((value.to_string(), *v))
            })
            .collect()
    }

    /// The median of a histogram, as the upper bound of the bucket holding it.
    pub(crate) fn median(&self, name: &str) -> Option<f64> {
        let count = self.get(&format!("{name}_count"));
        if count == 0.0 {
            return None;
        }
        let mut buckets: Vec<(f64, f64)> = self
            .by_label(&format!("{name}_bucket"), "le")
            .into_iter()
            .filter_map(|(le, n)| {
                Some((
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    },
                    n,
                ))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
            .into_iter()
            .find(|(_, n)| *n >= count / 2.0)
            .map(|(le, _)| le)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_labels_and_medians() {
        let s = Scrape::parse(
            "# HELP x\nwaku_rln_valid_messages_total 7\nwaku_rln_invalid_messages_total{type=\"spam\"} 2\n\
             h_bucket{le=\"0.1\"} 1\nh_bucket{le=\"0.2\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_count 4\nh_sum 0.5\n",
        );
        assert_eq!(s.get("waku_rln_valid_messages_total"), 7.0);
        assert_eq!(
            s.by_label("waku_rln_invalid_messages_total", "type"),
            vec![("spam".to_string(), 2.0)]
        );
        assert_eq!(s.median("h"), Some(0.2));
        assert_eq!(s.median("missing"), None);
    }
}
