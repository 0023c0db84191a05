//! Any bytes as a manifest: never a panic, and what is accepted keeps the
//! promises the shell relies on.
#![no_main]

use init::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::parse(std::path::Path::new("fuzz.json"), data) else { return };
    let mut names = std::collections::BTreeSet::new();
    for s in &m.services {
        assert!(names.insert(s.name.clone()), "duplicate name accepted");
        assert!(s.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
        assert!(s.path.is_absolute());
        assert!(!s.path.components().any(|c| matches!(c, std::path::Component::ParentDir)));
        assert!((100..=100_000).contains(&s.log_lines));
        assert_eq!(s.capability_mask.count_ones() as usize, s.capabilities.len());
        assert!(!s.env.contains_key("HOME"));
    }
    assert!(m.shared_gid > 0);
    assert!(m.password_gid > 0 && m.password_gid != u32::MAX);
});
