//! Fuzzes target-string parsing (`channel::target`): on arbitrary text, parsing under
//! both of grpc-go's default schemes, the no-I/O resolvers, the dns host/port split and
//! the authority derivation must return rather than panic, and a parsed target's
//! `Display` form must parse back to the same target and print identically.
#![no_main]

use grpc_sansio::channel::target::{Target, dns_host_port, static_addresses};
use libfuzzer_sys::fuzz_target;

/// The built-in schemes plus one custom scheme, so custom targets are exercised too.
fn is_known(scheme: &str) -> bool {
    matches!(
        scheme,
        "dns" | "passthrough" | "unix" | "unix-abstract" | "ipv4" | "ipv6" | "custom"
    )
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for default_scheme in ["dns", "passthrough"] {
        let Ok(target) = Target::parse(&input, default_scheme, &is_known) else {
            continue;
        };
        if let Some(Ok(addresses)) = static_addresses(&target) {
            for address in addresses {
                let _ = address.to_string();
            }
        }
        let _ = dns_host_port(&target);
        let _ = target.authority_for_call(None);
        assert_eq!(target.authority_for_call(Some("override")), "override");

        let shown = target.to_string();
        let again = Target::parse(&shown, default_scheme, &is_known)
            .unwrap_or_else(|e| panic!("{input:?} displays as {shown:?}, which fails: {e}"));
        assert_eq!(again, target, "{input:?} displays as {shown:?}");
        assert_eq!(again.to_string(), shown);
    }
});
