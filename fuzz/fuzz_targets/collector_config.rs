//! `collector.toml`, with the `[snmp]`, `[tickets]`, `[[connectors]]` and `[[routes]]` sections
//! it includes. What parses must also survive `init`'s commented rendering: that text parses
//! again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_collector::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let rendered = config.to_commented_toml();
    if let Err(error) = Config::parse(&rendered) {
        panic!("a parsed config renders to text that does not parse: {error}\n{rendered}");
    }
});
