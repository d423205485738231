//! Dotted numeric versions as NVIDIA drivers and tools print them (`580.159.04`, `470.82.01`, `1.17.8`),
//! compared part by part as numbers, so `470.103.01` is newer than `470.82.01`.

use std::cmp::Ordering;

/// Compares two dotted versions numerically, part by part. A missing part counts as 0 (`535` equals
/// `535.0.0`), and so does a part that is not a plain number (`x`, `04-1`, an empty part).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (parts(a), parts(b));
    let part = |p: &[u64], i: usize| p.get(i).copied().unwrap_or(0);
    (0..pa.len().max(pb.len()))
        .map(|i| part(&pa, i).cmp(&part(&pb, i)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn parts(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::*;

    #[test]
    fn parts_compare_as_numbers_not_text() {
        assert_eq!(compare("470.103.01", "470.82.01"), Greater);
        assert_eq!(compare("470.82.01", "470.103.01"), Less);
        assert_eq!(compare("580.159.04", "470.82.01"), Greater);
        assert_eq!(compare("450.80.02", "470.82.01"), Less);
        assert_eq!(compare("1.17.10", "1.17.8"), Greater);
        assert_eq!(compare("470.82.01", "470.82.01"), Equal);
        // Leading zeros are not significant.
        assert_eq!(compare("470.82.01", "470.82.1"), Equal);
    }

    #[test]
    fn missing_parts_count_as_zero() {
        assert_eq!(compare("535", "535.0.0"), Equal);
        assert_eq!(compare("470.82", "470.82.01"), Less);
        assert_eq!(compare("470.82.01", "470.82"), Greater);
        assert_eq!(compare("", "0"), Equal);
    }

    #[test]
    fn non_numeric_parts_count_as_zero() {
        assert_eq!(compare("470.x.01", "470.0.01"), Equal);
        assert_eq!(compare("470.x", "470.1"), Less);
        assert_eq!(compare("580.159.04-1", "580.159"), Equal);
        assert_eq!(compare("580..04", "580.0.04"), Equal);
        assert_eq!(compare("-1", "0"), Equal);
    }
}
