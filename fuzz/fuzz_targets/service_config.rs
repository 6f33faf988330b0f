//! Arbitrary bytes (read as lossy UTF-8) into `ServiceConfig::parse`.
//!
//! Checks that parsing never panics, that errors format, and that an accepted config
//! keeps its promises: retry policies and throttling are within the validated ranges,
//! the chosen policy is a supported one, and `method_config` follows the lookup order
//! (an exact `service`+`method` entry wins over the service's entry, which wins over
//! the default entry). The expected entry is worked out independently from the
//! document's own `name` lists.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use grpc_sansio::channel::service_config::{MAX_RETRY_ATTEMPTS, MethodConfig, ServiceConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn supported(name: &str) -> bool {
    matches!(name, "pick_first" | "round_robin")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let config = match ServiceConfig::parse(&text, &supported) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    if let Some(lb) = &config.load_balancing {
        assert!(supported(&lb.name));
        assert!(lb.config.is_object());
    }
    if let Some(t) = &config.retry_throttling {
        assert!(t.max_tokens > 0.0 && t.max_tokens <= 1000.0);
        assert!(t.token_ratio > 0.0);
    }
    for mc in config.method_configs() {
        if let Some(rp) = &mc.retry_policy {
            assert!((2..=MAX_RETRY_ATTEMPTS).contains(&rp.max_attempts));
            assert!(rp.initial_backoff > Duration::ZERO && rp.max_backoff > Duration::ZERO);
            assert!(rp.backoff_multiplier > 0.0);
            assert!(!rp.retryable_status_codes.is_empty());
        }
    }

    // The oracle: (service, method) -> position among the entries that have names.
    let doc: Value = serde_json::from_str(&text).expect("accepted documents are JSON");
    let mut exact: HashMap<(String, String), usize> = HashMap::new();
    let mut default = None;
    let mut named = 0;
    let entries = doc.get("methodConfig").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let Some(names) = entry.get("name").and_then(Value::as_array) else {
            continue;
        };
        for name in names {
            let field = |k: &str| name.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let (service, method) = (field("service"), field("method"));
            if service.is_empty() {
                default = Some(named);
            } else {
                exact.insert((service, method), named);
            }
        }
        named += 1;
    }
    assert_eq!(config.method_configs().len(), named);

    let configs = config.method_configs();
    let expect = |service: &str, method: &str| -> Option<&MethodConfig> {
        let at = exact
            .get(&(service.to_owned(), method.to_owned()))
            .or_else(|| exact.get(&(service.to_owned(), String::new())))
            .copied()
            .or(default)?;
        Some(&configs[at])
    };
    let same = |a: Option<&MethodConfig>, b: Option<&MethodConfig>| match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (None, None) => true,
        _ => false,
    };

    let mut probes: Vec<(String, String)> = vec![
        (String::new(), String::new()),
        ("no.such.Service".into(), "Method".into()),
    ];
    for (service, method) in exact.keys() {
        probes.push((service.clone(), method.clone()));
        probes.push((service.clone(), format!("{method}~other")));
        probes.push((format!("{service}~other"), method.clone()));
    }
    for (service, method) in &probes {
        let got = config.method_config(service, method);
        assert!(
            same(got, expect(service, method)),
            "lookup of /{service}/{method}"
        );
        // Whatever the name, a default entry means some config applies.
        if default.is_some() {
            assert!(got.is_some());
        }
    }
});
