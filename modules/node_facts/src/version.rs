//! Dotted numeric versions as NVIDIA drivers and tools print them (`580.159.04`, `470.82.01`, `1.17.8`),
//! compared part by part as numbers, so `470.103.01` is newer than `470.82.01`; and the loaded driver's
//! version as its kernel module reports it.

use std::cmp::Ordering;

/// The oldest NVIDIA driver accepted unless `min_driver_version` says otherwise: the default of that option
/// in both modules that take it, `nvidia_toolkit` and `gpu_validate`.
pub const MIN_DRIVER: &str = "470.82.01";

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

/// The driver version in the text of `/proc/driver/nvidia/version`: the first dotted number after "Module"
/// on its `NVRM version` line, in the open and in the proprietary kernel module's wording.
pub fn nvidia_driver(proc_text: &str) -> Option<String> {
    let line = proc_text.lines().find(|l| l.starts_with("NVRM version"))?;
    let after = line.split_once("Module").map_or(line, |(_, rest)| rest);
    after
        .split_whitespace()
        .find(|w| is_dotted_number(w))
        .map(String::from)
}

/// A version a user may give as a minimum (`min_driver_version`): digits in one or more dot-separated parts,
/// none empty (`535`, `535.104`, `470.82.01`; not `470..82`, `.470`, `470.82.01-beta` or ``). Both modules
/// that take a minimum driver version check it with this one rule.
pub fn is_minimum_version(value: &str) -> bool {
    value
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Digits in two or more dot-separated parts, none empty (`580.159.04`, not `x86_64` or `1.`).
pub fn is_dotted_number(word: &str) -> bool {
    word.contains('.')
        && word
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::{compare, is_minimum_version, nvidia_driver};

    #[test]
    fn minimum_versions_have_one_shape() {
        for good in ["535", "535.104", "470.82.01", "580.159.04", "1"] {
            assert!(is_minimum_version(good), "{:?} refused", good);
        }
        for bad in [
            "",
            "latest",
            "470..82",
            ".470",
            "470.",
            "470.82.01-beta",
            "v535",
            "535 ",
            "5 35",
        ] {
            assert!(!is_minimum_version(bad), "{:?} accepted", bad);
        }
    }
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

    #[test]
    fn reads_the_driver_version_of_both_kernel_modules() {
        // Recorded on a real H200 node (tests/fixtures/gpu-node/h200-2026-11-27, /proc/driver/nvidia/version).
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC) \n";
        assert_eq!(nvidia_driver(open).as_deref(), Some("580.159.04"));
        let proprietary =
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  Tue Oct 26 20:16:42 UTC 2021\n";
        assert_eq!(nvidia_driver(proprietary).as_deref(), Some("470.82.01"));
        assert_eq!(nvidia_driver("GCC version: 12.2.0\n"), None);
        assert_eq!(nvidia_driver("garbage"), None);
    }
}
