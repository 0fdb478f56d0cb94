//! Property lists (XML and binary) as the macOS sources read them: the top-level dictionary,
//! then an application's `Info.plist` and a pkgutil receipt built from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_agent::inventory::software::{macos_apps, pkgutil, plist};

fuzz_target!(|data: &[u8]| {
    let Ok(dict) = plist::top_level(data) else {
        return;
    };
    let _ = macos_apps::app(&dict, "Fuzz");
    let _ = pkgutil::receipt(&dict, "org.example.fuzz");
});
