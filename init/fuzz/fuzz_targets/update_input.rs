//! What the update endpoints and the boot partition hand init: activation
//! queries, request headers, the first bytes and the length of an upload,
//! `syslinux.cfg` and the ADV. Never a panic, and the invariants the router
//! relies on: a copy hashes exactly what it wrote and never reports a short
//! body as complete; a commit rewrites only the DEFAULT line; a trial command
//! line always boots its own slot on trial; the ADV round-trips.
#![no_main]

use bootslot::Slot;
use init::update::slots::PartKind;
use init::update::{upload, web};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match selector % 5 {
        0 => {
            let url = format!("/update/activate?{text}");
            let (_, query) = runtime::control::split_query(&url);
            if let Ok(a) = web::parse_activation(&query) {
                assert!(bootslot::api::TRIAL_SECONDS_RANGE.contains(&a.trial_seconds));
                assert!(a.kind == "update" || a.kind == "rollback");
            }
            let headers: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect();
            if web::refuse_change(&headers).is_none() {
                assert!(!headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin")));
            }
        }
        1 | 2 => {
            let part = if selector % 5 == 1 { PartKind::Root } else { PartKind::Kernel };
            // The declared length: what came, or more (a cut-off body).
            let extra = u64::from(selector / 5);
            let declared = rest.len() as u64 + extra;
            let mut out = Vec::new();
            let head_ok = upload::check_head(part, rest, declared).is_ok();
            match upload::copy(part, &mut &rest[..], &mut out, declared) {
                Ok(sha) => {
                    assert_eq!(extra, 0, "a short body reported complete");
                    assert_eq!(out, rest);
                    assert_eq!(sha, upload::hex(&Sha256::digest(rest)));
                }
                Err(upload::UploadError::Invalid(_)) => assert!(out.is_empty(), "written before the check"),
                Err(_) => assert!(extra > 0 || rest.is_empty() || !head_ok),
            }
        }
        3 => {
            let cfg = text.as_ref();
            for slot in Slot::ALL {
                if let Ok(new) = bootslot::loader::set_default(cfg, slot) {
                    assert_eq!(bootslot::loader::default_slot(&new), Some(slot));
                    assert_eq!(new.lines().count(), cfg.lines().count());
                }
                if let Ok(line) = bootslot::loader::trial_cmdline(cfg, slot) {
                    assert!(line.ends_with(" router.trial=1"));
                    let ours: Vec<&str> = line.split_whitespace().filter(|w| w.starts_with("router.")).collect();
                    assert_eq!(ours[ours.len() - 2..], [format!("router.slot={slot}").as_str(), "router.trial=1"]);
                    assert_eq!(ours.iter().filter(|w| w.starts_with("router.slot=")).count(), 1);
                    assert_eq!(line.split_whitespace().filter(|w| w.starts_with("router.trial=")).count(), 1);
                }
            }
            let _ = bootslot::api::ImageVersion::parse(cfg);
        }
        _ => {
            let mut adv = [0u8; bootslot::adv::ADV_BYTES];
            let n = rest.len().min(adv.len());
            adv[..n].copy_from_slice(&rest[..n]);
            let cmd = String::from_utf8_lossy(&rest[n..]).into_owned();
            if let Ok(new) = bootslot::adv::with_boot_once(&adv, Some(&cmd)) {
                assert_eq!(bootslot::adv::boot_once(&new).ok().flatten().as_deref(), Some(cmd.as_str()));
                let cleared = bootslot::adv::with_boot_once(&new, None).expect("a valid ADV stays valid");
                assert_eq!(bootslot::adv::boot_once(&cleared).ok().flatten(), None);
            }
        }
    }
});
