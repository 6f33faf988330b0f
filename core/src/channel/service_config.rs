//! Service config documents (grpc/grpc `doc/service_config.md`), parsed and validated as
//! grpc-go's `parseServiceConfig` does.
//!
//! A service config is a JSON object; this module reads the fields the channel acts on:
//!
//! - `loadBalancingConfig`: a list of single-key objects `{"policy_name": {config}}`; the
//!   first policy the channel supports is chosen. A malformed entry met before it is an
//!   error, and so is a list without any supported policy.
//! - `loadBalancingPolicy` (deprecated): a policy name, consulted only when
//!   `loadBalancingConfig` is absent. Like grpc-go, an unsupported name is not an error:
//!   the channel's default policy is used ([`ServiceConfig::load_balancing`] is `None`).
//! - `methodConfig`: per-method settings ([`MethodConfig`]) with their `name` lists.
//! - `retryThrottling`: [`RetryThrottling`].
//!
//! Unknown fields are ignored, including `healthCheckConfig` and `hedgingPolicy`: this
//! channel does not hedge, so a hedging policy is neither validated nor used. Field
//! names are matched exactly in their lowerCamelCase JSON form. A `null` value counts as
//! an absent field. Any invalid value for a field this module reads rejects the whole
//! document (gRFC A21: the channel then keeps its previous config).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::grpc::code::Code;

/// The most attempts a retry policy may ask for; larger `maxAttempts` values are lowered
/// to this (grpc-go's `defaultMaxCallAttempts`, gRFC A6).
pub const MAX_RETRY_ATTEMPTS: u32 = 5;

/// The largest `seconds` a `google.protobuf.Duration` may hold (about 10,000 years).
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

/// A parsed and validated service config.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// The load-balancing policy chosen from `loadBalancingConfig` (or the deprecated
    /// `loadBalancingPolicy`); `None` means the channel's default policy (pick_first).
    pub load_balancing: Option<LbPolicy>,
    /// The retry throttling parameters, if the document has `retryThrottling`.
    pub retry_throttling: Option<RetryThrottling>,
    /// Every `methodConfig` entry, in document order.
    method_configs: Vec<MethodConfig>,
    /// Name lookup into `method_configs`.
    index: MethodIndex,
}

/// The chosen load-balancing policy and its configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct LbPolicy {
    /// The policy name, as written in the document (names are case-sensitive).
    pub name: String,
    /// The policy's configuration: a JSON object, unvalidated here (the policy parses
    /// it). For the deprecated `loadBalancingPolicy` field it is an empty object.
    pub config: Value,
}

/// Settings for the calls a `methodConfig` entry names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodConfig {
    /// `waitForReady`: whether calls wait for a ready connection instead of failing
    /// fast; the application's own setting takes precedence.
    pub wait_for_ready: Option<bool>,
    /// `timeout`: the default deadline of a call; the smaller of this and the
    /// application's deadline applies.
    pub timeout: Option<Duration>,
    /// `maxRequestMessageBytes`: the largest message the client may send. Values beyond
    /// `usize` are lowered to `usize::MAX`, as grpc-go lowers them to its `int` range.
    pub max_request_message_bytes: Option<usize>,
    /// `maxResponseMessageBytes`: the largest message the client accepts.
    pub max_response_message_bytes: Option<usize>,
    /// `retryPolicy`: how failed calls are retried.
    pub retry_policy: Option<RetryPolicy>,
}

/// A method's retry policy (gRFC A6), validated as grpc-go does.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the original included: at least 2, at most
    /// [`MAX_RETRY_ATTEMPTS`] (larger values in the document are lowered to it).
    pub max_attempts: u32,
    /// The upper bound of the random delay before the first retry; positive.
    pub initial_backoff: Duration,
    /// The cap on the backoff bound; positive.
    pub max_backoff: Duration,
    /// The growth of the backoff bound per retry; positive.
    pub backoff_multiplier: f64,
    /// The status codes that may be retried: non-empty, in document order, without
    /// duplicates.
    pub retryable_status_codes: Vec<Code>,
}

/// Retry throttling (gRFC A6): retries stop while the channel's token count is at most
/// half of `max_tokens`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryThrottling {
    /// The initial and highest token count, in `(0, 1000]`. Each failed call takes one.
    pub max_tokens: f64,
    /// The tokens each successful call gives back; positive.
    pub token_ratio: f64,
}

/// Why a service config was rejected: the field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfigError {
    field: String,
    kind: ServiceConfigErrorKind,
}

/// What is wrong with a service config field ([`ServiceConfigError::kind`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServiceConfigErrorKind {
    /// The document is empty.
    Empty,
    /// The document is not valid JSON; the parser's message.
    Syntax(String),
    /// The value has the wrong JSON type; the type that was expected.
    WrongType(&'static str),
    /// A duration is not in the proto3 JSON form (`"1.5s"`); why.
    InvalidDuration(&'static str),
    /// An integer is negative, fractional, out of range or not a decimal string; why.
    InvalidInteger(&'static str),
    /// A required field is absent.
    Missing,
    /// A value is outside its allowed range; the rule it breaks.
    OutOfRange(&'static str),
    /// A status code is neither a known upper-case name nor a number below 17.
    InvalidStatusCode(String),
    /// A method name has a `method` but no `service`.
    MethodWithoutService,
    /// The same name appears in two places; the name as `/service/method`.
    DuplicateName(String),
    /// A `loadBalancingConfig` entry is not an object with exactly one field.
    MalformedLbEntry,
    /// `loadBalancingConfig` names no supported policy; the names it has.
    NoSupportedPolicy(Vec<String>),
}

impl ServiceConfigError {
    fn new(field: impl Into<String>, kind: ServiceConfigErrorKind) -> Self {
        ServiceConfigError {
            field: field.into(),
            kind,
        }
    }

    /// The path of the offending field, such as `methodConfig[2].retryPolicy.maxAttempts`;
    /// empty for errors about the whole document.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    pub fn kind(&self) -> &ServiceConfigErrorKind {
        &self.kind
    }
}

impl fmt::Display for ServiceConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ServiceConfigErrorKind as K;
        match self {
            K::Empty => f.write_str("no service config provided"),
            K::Syntax(msg) => write!(f, "not valid JSON: {msg}"),
            K::WrongType(expected) => write!(f, "must be {expected}"),
            K::InvalidDuration(why) => write!(f, "invalid duration: {why}"),
            K::InvalidInteger(why) => write!(f, "invalid integer: {why}"),
            K::Missing => f.write_str("is required"),
            K::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            K::InvalidStatusCode(code) => write!(f, "unknown status code {code}"),
            K::MethodWithoutService => {
                f.write_str("a name with a 'method' must have a non-empty 'service'")
            }
            K::DuplicateName(name) => write!(f, "duplicate method name {name:?}"),
            K::MalformedLbEntry => {
                f.write_str("each entry must be an object with exactly one policy")
            }
            K::NoSupportedPolicy(names) => write!(f, "no supported policy among {names:?}"),
        }
    }
}

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid service config: {}", self.kind)
        } else {
            write!(f, "invalid service config: {}: {}", self.field, self.kind)
        }
    }
}

impl std::error::Error for ServiceConfigError {}

type Result<T> = std::result::Result<T, ServiceConfigError>;

/// Method names to indices into `method_configs`, so that a lookup is at most two hash
/// probes with borrowed keys and allocates nothing.
#[derive(Clone, Debug, Default, PartialEq)]
struct MethodIndex {
    /// The entry named `{}` (or `{"service": ""}`): every method of every service.
    default: Option<usize>,
    /// Entries by service name.
    services: HashMap<String, ServiceIndex>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ServiceIndex {
    /// The entry naming the service without a method.
    all_methods: Option<usize>,
    /// Entries naming a method of the service.
    methods: HashMap<String, usize>,
}

impl MethodIndex {
    /// Records that `name` selects entry `at`; a name seen before is an error.
    fn insert(&mut self, service: &str, method: &str, at: usize, field: &str) -> Result<()> {
        let slot = if service.is_empty() {
            if !method.is_empty() {
                return Err(ServiceConfigError::new(
                    field,
                    ServiceConfigErrorKind::MethodWithoutService,
                ));
            }
            &mut self.default
        } else {
            let svc = self.services.entry(service.to_owned()).or_default();
            if method.is_empty() {
                &mut svc.all_methods
            } else {
                match svc.methods.entry(method.to_owned()) {
                    Entry::Vacant(v) => {
                        v.insert(at);
                        return Ok(());
                    }
                    Entry::Occupied(_) => {
                        return Err(duplicate(service, method, field));
                    }
                }
            }
        };
        if slot.is_some() {
            return Err(duplicate(service, method, field));
        }
        *slot = Some(at);
        Ok(())
    }
}

fn duplicate(service: &str, method: &str, field: &str) -> ServiceConfigError {
    let path = if service.is_empty() {
        "{} (the default)".to_owned()
    } else {
        format!("/{service}/{method}")
    };
    ServiceConfigError::new(field, ServiceConfigErrorKind::DuplicateName(path))
}

impl ServiceConfig {
    /// Parses and validates a service config document.
    ///
    /// `is_supported_policy` tells whether the channel has a load-balancing policy of
    /// the given name (names are compared as written: grpc-go's balancer registry is
    /// case-sensitive).
    pub fn parse(
        json: &str,
        is_supported_policy: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<ServiceConfig, ServiceConfigError> {
        if json.trim().is_empty() {
            return Err(ServiceConfigError::new("", ServiceConfigErrorKind::Empty));
        }
        let doc: Value = serde_json::from_str(json).map_err(|e| {
            ServiceConfigError::new("", ServiceConfigErrorKind::Syntax(e.to_string()))
        })?;
        let Value::Object(doc) = doc else {
            return Err(ServiceConfigError::new(
                "",
                ServiceConfigErrorKind::WrongType("a JSON object"),
            ));
        };

        let load_balancing = parse_load_balancing(&doc, is_supported_policy)?;

        let mut method_configs = Vec::new();
        let mut index = MethodIndex::default();
        if let Some(list) = field(&doc, "methodConfig") {
            let list = as_array(list, "methodConfig")?;
            for (i, entry) in list.iter().enumerate() {
                let path = format!("methodConfig[{i}]");
                let entry = as_object(entry, &path)?;
                let config = parse_method_config(entry, &path)?;
                // grpc-go skips an entry without `name`; it still has to be valid.
                let Some(names) = field(entry, "name") else {
                    continue;
                };
                let at = method_configs.len();
                let names_path = format!("{path}.name");
                for (j, name) in as_array(names, &names_path)?.iter().enumerate() {
                    let name_path = format!("{names_path}[{j}]");
                    let name = as_object(name, &name_path)?;
                    let service = opt_string(name, "service", &name_path)?.unwrap_or("");
                    let method = opt_string(name, "method", &name_path)?.unwrap_or("");
                    index.insert(service, method, at, &name_path)?;
                }
                method_configs.push(config);
            }
        }

        let retry_throttling = match field(&doc, "retryThrottling") {
            None => None,
            Some(v) => Some(parse_retry_throttling(v)?),
        };

        Ok(ServiceConfig {
            load_balancing,
            retry_throttling,
            method_configs,
            index,
        })
    }

    /// The method config that applies to a call of `method` on `service`: the entry
    /// naming both, else the entry naming the service alone, else the default entry
    /// (named `{}`), else none.
    pub fn method_config(&self, service: &str, method: &str) -> Option<&MethodConfig> {
        let index = &self.index;
        let at = index
            .services
            .get(service)
            .and_then(|s| s.methods.get(method).copied().or(s.all_methods))
            .or(index.default)?;
        self.method_configs.get(at)
    }

    /// Every method config that has a `name` list, in document order.
    pub fn method_configs(&self) -> &[MethodConfig] {
        &self.method_configs
    }
}

/// A field's value; `null` counts as absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn wrong_type(path: &str, expected: &'static str) -> ServiceConfigError {
    ServiceConfigError::new(path, ServiceConfigErrorKind::WrongType(expected))
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| wrong_type(path, "an object"))
}

fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| wrong_type(path, "an array"))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn opt_string<'a>(obj: &'a Map<String, Value>, name: &str, path: &str) -> Result<Option<&'a str>> {
    field(obj, name)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| wrong_type(&join(path, name), "a string"))
        })
        .transpose()
}

fn opt_bool(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<bool>> {
    field(obj, name)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| wrong_type(&join(path, name), "a boolean"))
        })
        .transpose()
}

fn opt_f64(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<f64>> {
    field(obj, name)
        .map(|v| {
            v.as_f64()
                .ok_or_else(|| wrong_type(&join(path, name), "a number"))
        })
        .transpose()
}

fn opt_duration(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<Duration>> {
    field(obj, name)
        .map(|v| {
            let path = join(path, name);
            let s = v
                .as_str()
                .ok_or_else(|| wrong_type(&path, "a duration string such as \"1.5s\""))?;
            parse_duration(s).map_err(|why| {
                ServiceConfigError::new(path, ServiceConfigErrorKind::InvalidDuration(why))
            })
        })
        .transpose()
}

/// An optional non-negative integer no larger than `max`, as a JSON number or a decimal
/// string (proto3 JSON writes 64-bit integers as strings).
fn opt_uint(obj: &Map<String, Value>, name: &str, path: &str, max: u64) -> Result<Option<u64>> {
    field(obj, name)
        .map(|v| {
            parse_uint(v, max).map_err(|why| {
                let kind = match why {
                    None => ServiceConfigErrorKind::WrongType("an integer (number or string)"),
                    Some(why) => ServiceConfigErrorKind::InvalidInteger(why),
                };
                ServiceConfigError::new(join(path, name), kind)
            })
        })
        .transpose()
}

/// Reads an integer; `Err(None)` for a value of the wrong type.
fn parse_uint(v: &Value, max: u64) -> std::result::Result<u64, Option<&'static str>> {
    let n = match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u
            } else if n.as_i64().is_some() {
                return Err(Some("must not be negative"));
            } else {
                // A float: fractional, written with an exponent, or beyond 64 bits.
                let f = n.as_f64().unwrap_or(f64::NAN);
                return Err(Some(if f < 0.0 {
                    "must not be negative"
                } else if f >= 18_446_744_073_709_551_616.0 {
                    "too large"
                } else {
                    "must be a whole number without fraction or exponent"
                }));
            }
        }
        Value::String(s) => {
            if s.starts_with('-') && s.len() > 1 {
                return Err(Some("must not be negative"));
            }
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Some("a string integer must be decimal digits only"));
            }
            s.parse::<u64>().map_err(|_| Some("too large"))?
        }
        _ => return Err(None),
    };
    if n > max {
        return Err(Some("too large"));
    }
    Ok(n)
}

/// Parses a `google.protobuf.Duration` in its JSON form: decimal seconds with up to
/// nine fractional digits and an `s` suffix (`"1s"`, `"0.25s"`, `".5s"`, `"3.s"`).
/// grpc-go's reader accepts the same forms; unlike it, negative durations are rejected
/// (a negative timeout or backoff means nothing), and so are seconds beyond the proto
/// limit of 315,576,000,000 instead of being clamped.
fn parse_duration(s: &str) -> std::result::Result<Duration, &'static str> {
    let Some(number) = s.strip_suffix('s') else {
        return Err("missing the 's' unit suffix (for example \"1.5s\")");
    };
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err("no digits");
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err("only decimal digits and one '.' may precede the 's'");
    }
    if frac.len() > 9 {
        return Err("more than 9 fractional digits");
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| "too large")?
    };
    if secs > MAX_DURATION_SECONDS {
        return Err("more than 315576000000 seconds");
    }
    let mut nanos = 0u32;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    if negative && (secs != 0 || nanos != 0) {
        return Err("must not be negative");
    }
    Ok(Duration::new(secs, nanos))
}

/// The status code a `retryableStatusCodes` element names: an upper-case name as in
/// statuscodes.md (grpc-go matches names case-sensitively) or a JSON number below 17.
fn parse_code(v: &Value) -> Option<Code> {
    match v {
        Value::String(s) => Code::ALL.iter().copied().find(|c| c.name() == s),
        Value::Number(n) => n
            .as_u64()
            .filter(|&n| n < Code::ALL.len() as u64)
            .map(|n| Code::from_u32(n as u32)),
        _ => None,
    }
}

fn parse_load_balancing(
    doc: &Map<String, Value>,
    is_supported_policy: &dyn Fn(&str) -> bool,
) -> Result<Option<LbPolicy>> {
    if let Some(list) = field(doc, "loadBalancingConfig") {
        let list = as_array(list, "loadBalancingConfig")?;
        let mut names = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let path = format!("loadBalancingConfig[{i}]");
            let single = entry
                .as_object()
                .filter(|obj| obj.len() == 1)
                .and_then(|obj| obj.iter().next());
            let Some((name, config)) = single else {
                return Err(ServiceConfigError::new(
                    path,
                    ServiceConfigErrorKind::MalformedLbEntry,
                ));
            };
            if !is_supported_policy(name) {
                names.push(name.clone());
                continue;
            }
            if !config.is_object() {
                return Err(wrong_type(&join(&path, name), "an object"));
            }
            return Ok(Some(LbPolicy {
                name: name.clone(),
                config: config.clone(),
            }));
        }
        return Err(ServiceConfigError::new(
            "loadBalancingConfig",
            ServiceConfigErrorKind::NoSupportedPolicy(names),
        ));
    }
    let name = opt_string(doc, "loadBalancingPolicy", "")?;
    Ok(name.filter(|n| is_supported_policy(n)).map(|n| LbPolicy {
        name: n.to_owned(),
        config: Value::Object(Map::new()),
    }))
}

fn parse_method_config(entry: &Map<String, Value>, path: &str) -> Result<MethodConfig> {
    let bytes = |name: &str| -> Result<Option<usize>> {
        Ok(opt_uint(entry, name, path, i64::MAX as u64)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    };
    Ok(MethodConfig {
        wait_for_ready: opt_bool(entry, "waitForReady", path)?,
        timeout: opt_duration(entry, "timeout", path)?,
        max_request_message_bytes: bytes("maxRequestMessageBytes")?,
        max_response_message_bytes: bytes("maxResponseMessageBytes")?,
        retry_policy: match field(entry, "retryPolicy") {
            None => None,
            Some(v) => Some(parse_retry_policy(v, &join(path, "retryPolicy"))?),
        },
    })
}

/// grpc-go's `convertRetryPolicy`: every field is required, `maxAttempts` above 1, the
/// backoffs and multiplier positive, the code list non-empty. grpc-go does not require
/// `maxBackoff >= initialBackoff`, and neither does this.
fn parse_retry_policy(v: &Value, path: &str) -> Result<RetryPolicy> {
    let obj = as_object(v, path)?;
    let missing =
        |name: &str| ServiceConfigError::new(join(path, name), ServiceConfigErrorKind::Missing);
    let out_of_range = |name: &str, rule: &'static str| {
        ServiceConfigError::new(join(path, name), ServiceConfigErrorKind::OutOfRange(rule))
    };

    let max_attempts = opt_uint(obj, "maxAttempts", path, i32::MAX as u64)?
        .ok_or_else(|| missing("maxAttempts"))?;
    if max_attempts < 2 {
        return Err(out_of_range("maxAttempts", "must be at least 2"));
    }
    let backoff = |name: &str| -> Result<Duration> {
        let d = opt_duration(obj, name, path)?.ok_or_else(|| missing(name))?;
        if d.is_zero() {
            return Err(out_of_range(name, "must be greater than zero"));
        }
        Ok(d)
    };
    let initial_backoff = backoff("initialBackoff")?;
    let max_backoff = backoff("maxBackoff")?;
    let backoff_multiplier =
        opt_f64(obj, "backoffMultiplier", path)?.ok_or_else(|| missing("backoffMultiplier"))?;
    if backoff_multiplier <= 0.0 {
        return Err(out_of_range(
            "backoffMultiplier",
            "must be greater than zero",
        ));
    }

    let codes_path = join(path, "retryableStatusCodes");
    let codes =
        field(obj, "retryableStatusCodes").ok_or_else(|| missing("retryableStatusCodes"))?;
    let codes = as_array(codes, &codes_path)?;
    if codes.is_empty() {
        return Err(out_of_range("retryableStatusCodes", "must not be empty"));
    }
    let mut retryable_status_codes = Vec::with_capacity(codes.len());
    for (i, c) in codes.iter().enumerate() {
        let code = parse_code(c).ok_or_else(|| {
            ServiceConfigError::new(
                format!("{codes_path}[{i}]"),
                ServiceConfigErrorKind::InvalidStatusCode(c.to_string()),
            )
        })?;
        if !retryable_status_codes.contains(&code) {
            retryable_status_codes.push(code);
        }
    }

    Ok(RetryPolicy {
        max_attempts: (max_attempts as u32).min(MAX_RETRY_ATTEMPTS),
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_status_codes,
    })
}

/// grpc-go: `maxTokens` in `(0, 1000]` and `tokenRatio` positive; both are required (an
/// absent one is zero in grpc-go, so out of range).
fn parse_retry_throttling(v: &Value) -> Result<RetryThrottling> {
    let path = "retryThrottling";
    let obj = as_object(v, path)?;
    let required = |name: &str| -> Result<f64> {
        opt_f64(obj, name, path)?.ok_or_else(|| {
            ServiceConfigError::new(join(path, name), ServiceConfigErrorKind::Missing)
        })
    };
    let max_tokens = required("maxTokens")?;
    if !(max_tokens > 0.0 && max_tokens <= 1000.0) {
        return Err(ServiceConfigError::new(
            join(path, "maxTokens"),
            ServiceConfigErrorKind::OutOfRange("must be in (0, 1000]"),
        ));
    }
    let token_ratio = required("tokenRatio")?;
    if token_ratio <= 0.0 {
        return Err(ServiceConfigError::new(
            join(path, "tokenRatio"),
            ServiceConfigErrorKind::OutOfRange("must be greater than zero"),
        ));
    }
    Ok(RetryThrottling {
        max_tokens,
        token_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn supported(name: &str) -> bool {
        matches!(name, "pick_first" | "round_robin" | "weighted_target")
    }

    fn parse(doc: &str) -> std::result::Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::parse(doc, &supported)
    }

    fn ok(doc: &str) -> ServiceConfig {
        parse(doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
    }

    /// Parses a document that must fail and returns the error.
    fn err(doc: &str) -> ServiceConfigError {
        match parse(doc) {
            Ok(c) => panic!("{doc} was accepted: {c:?}"),
            Err(e) => e,
        }
    }

    /// A method config holding only a timeout, wrapped in a document with `names`.
    fn with_names(names: &str) -> String {
        format!(r#"{{"methodConfig": [{{"name": {names}, "timeout": "1s"}}]}}"#)
    }

    /// A document with one method config whose retry policy is `policy`.
    fn with_retry(policy: &str) -> String {
        format!(r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {policy}}}]}}"#)
    }

    const GOOD_RETRY: &str = r#"{"maxAttempts": 3, "initialBackoff": "0.1s",
        "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#;

    #[test]
    fn every_field() {
        let c = ok(r#"{
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [{
                "name": [{"service": "pkg.Svc", "method": "Get"}],
                "waitForReady": true,
                "timeout": "1.5s",
                "maxRequestMessageBytes": 1024,
                "maxResponseMessageBytes": "2048",
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "10s",
                    "backoffMultiplier": 1.5,
                    "retryableStatusCodes": ["UNAVAILABLE", 4, "UNAVAILABLE"]
                },
                "hedgingPolicy": {"maxAttempts": "whatever"}
            }],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
            "healthCheckConfig": {"serviceName": "x"},
            "someFutureField": [1, 2, 3]
        }"#);
        assert_eq!(
            c.load_balancing,
            Some(LbPolicy {
                name: "round_robin".into(),
                config: json!({})
            })
        );
        assert_eq!(
            c.retry_throttling,
            Some(RetryThrottling {
                max_tokens: 10.0,
                token_ratio: 0.1
            })
        );
        let expected = MethodConfig {
            wait_for_ready: Some(true),
            timeout: Some(Duration::from_millis(1500)),
            max_request_message_bytes: Some(1024),
            max_response_message_bytes: Some(2048),
            retry_policy: Some(RetryPolicy {
                max_attempts: 4,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                backoff_multiplier: 1.5,
                retryable_status_codes: vec![Code::Unavailable, Code::DeadlineExceeded],
            }),
        };
        assert_eq!(c.method_config("pkg.Svc", "Get"), Some(&expected));
        assert_eq!(c.method_configs(), &[expected][..]);
        assert_eq!(c.method_config("pkg.Svc", "Put"), None);
        assert_eq!(c.method_config("other", "Get"), None);
    }

    #[test]
    fn empty_object_is_valid() {
        let c = ok("{}");
        assert_eq!(c.load_balancing, None);
        assert_eq!(c.retry_throttling, None);
        assert!(c.method_configs().is_empty());
        assert_eq!(c.method_config("a", "b"), None);
        // null fields count as absent.
        let c = ok(r#"{"loadBalancingConfig": null, "methodConfig": null,
            "retryThrottling": null, "loadBalancingPolicy": null}"#);
        assert_eq!(c, ok("{}"));
    }

    #[test]
    fn lookup_levels() {
        let c = ok(r#"{"methodConfig": [
            {"name": [{}], "timeout": "1s"},
            {"name": [{"service": "s"}], "timeout": "2s"},
            {"name": [{"service": "s", "method": "m"}, {"service": "t", "method": "m"}],
             "timeout": "3s"},
            {"name": [{"service": "u", "method": ""}], "timeout": "4s"}
        ]}"#);
        let timeout = |s: &str, m: &str| c.method_config(s, m).and_then(|mc| mc.timeout);
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(timeout("s", "m"), secs(3));
        assert_eq!(timeout("t", "m"), secs(3));
        assert_eq!(timeout("s", "other"), secs(2));
        assert_eq!(timeout("u", "anything"), secs(4));
        // `t` has only an exact entry: other methods of `t` fall to the default.
        assert_eq!(timeout("t", "other"), secs(1));
        assert_eq!(timeout("nobody", "m"), secs(1));
        assert_eq!(timeout("", ""), secs(1));
        assert_eq!(c.method_configs().len(), 4);

        // `{"service": ""}` is the default name as well.
        let c = ok(&with_names(r#"[{"service": ""}]"#));
        assert!(c.method_config("any", "thing").is_some());
    }

    #[test]
    fn entry_without_name_applies_to_nothing() {
        let c = ok(r#"{"methodConfig": [{"timeout": "1s"}]}"#);
        assert_eq!(c.method_config("a", "b"), None);
        assert!(c.method_configs().is_empty());
        // An empty name list is valid and also names nothing.
        let c = ok(&with_names("[]"));
        assert_eq!(c.method_config("a", "b"), None);
    }

    #[test]
    fn integers_as_numbers_or_strings() {
        let c = ok(r#"{"methodConfig": [{"name": [{}],
            "maxRequestMessageBytes": "0", "maxResponseMessageBytes": 9223372036854775807}]}"#);
        let mc = c.method_config("a", "b").unwrap();
        assert_eq!(mc.max_request_message_bytes, Some(0));
        assert_eq!(
            mc.max_response_message_bytes,
            Some(usize::try_from(i64::MAX as u64).unwrap_or(usize::MAX))
        );
        let c = ok(&with_retry(
            r#"{"maxAttempts": "2", "initialBackoff": "1s", "maxBackoff": "1s",
                "backoffMultiplier": 1, "retryableStatusCodes": [14]}"#,
        ));
        let rp = c
            .method_config("a", "b")
            .unwrap()
            .retry_policy
            .as_ref()
            .unwrap();
        assert_eq!(rp.max_attempts, 2);
        assert_eq!(rp.retryable_status_codes, vec![Code::Unavailable]);
    }

    #[test]
    fn max_attempts_capped_at_five() {
        let c = ok(&with_retry(
            r#"{"maxAttempts": 100, "initialBackoff": "1s", "maxBackoff": "1s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["ABORTED"]}"#,
        ));
        let rp = c
            .method_config("a", "b")
            .unwrap()
            .retry_policy
            .as_ref()
            .unwrap();
        assert_eq!(rp.max_attempts, MAX_RETRY_ATTEMPTS);
        // And maxBackoff below initialBackoff is accepted, as in grpc-go.
        ok(&with_retry(
            r#"{"maxAttempts": 2, "initialBackoff": "5s", "maxBackoff": "1s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["ABORTED"]}"#,
        ));
    }

    #[test]
    fn durations() {
        let cases = [
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("1s", Duration::from_secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("3.s", Duration::from_secs(3)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.123456789s", Duration::new(1, 123_456_789)),
            ("315576000000s", Duration::from_secs(315_576_000_000)),
            (
                "315576000000.999999999s",
                Duration::new(315_576_000_000, 999_999_999),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
            let c = ok(&format!(
                r#"{{"methodConfig": [{{"name": [{{}}], "timeout": "{text}"}}]}}"#
            ));
            assert_eq!(c.method_config("a", "b").unwrap().timeout, Some(expected));
        }
    }

    #[test]
    fn lb_config_first_supported_wins() {
        let c = ok(r#"{"loadBalancingConfig": [
            {"grpclb": {"childPolicy": []}},
            {"weighted_target": {"targets": {"a": {"weight": 1}}}},
            {"round_robin": {}}
        ]}"#);
        let lb = c.load_balancing.unwrap();
        assert_eq!(lb.name, "weighted_target");
        assert_eq!(lb.config, json!({"targets": {"a": {"weight": 1}}}));
        // Entries after the chosen one are not inspected, as in grpc-go.
        let c = ok(r#"{"loadBalancingConfig": [{"pick_first": {}}, 42]}"#);
        assert_eq!(c.load_balancing.unwrap().name, "pick_first");
        // loadBalancingConfig wins over the deprecated field.
        let c = ok(r#"{"loadBalancingPolicy": "pick_first",
            "loadBalancingConfig": [{"round_robin": {}}]}"#);
        assert_eq!(c.load_balancing.unwrap().name, "round_robin");
    }

    #[test]
    fn deprecated_load_balancing_policy() {
        let c = ok(r#"{"loadBalancingPolicy": "round_robin"}"#);
        assert_eq!(
            c.load_balancing,
            Some(LbPolicy {
                name: "round_robin".into(),
                config: json!({})
            })
        );
        // Unsupported names (names are case-sensitive) fall back to the default policy.
        assert_eq!(
            ok(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#).load_balancing,
            None
        );
        assert_eq!(
            ok(r#"{"loadBalancingPolicy": "nope"}"#).load_balancing,
            None
        );
    }

    /// Invalid documents: the field path and the kind of each error.
    #[test]
    fn invalid_documents() {
        use ServiceConfigErrorKind as K;
        let retry = |field: &str, value: &str| {
            let mut policy: Value = serde_json::from_str(GOOD_RETRY).unwrap();
            if value.is_empty() {
                policy.as_object_mut().unwrap().remove(field);
            } else {
                policy[field] = serde_json::from_str(value).unwrap();
            }
            with_retry(&policy.to_string())
        };
        let timeout =
            |t: &str| format!(r#"{{"methodConfig": [{{"name": [{{}}], "timeout": {t}}}]}}"#);
        let rp = "methodConfig[0].retryPolicy";
        let cases: Vec<(String, &str, K)> = vec![
            ("".into(), "", K::Empty),
            ("  \n".into(), "", K::Empty),
            ("[]".into(), "", K::WrongType("a JSON object")),
            ("null".into(), "", K::WrongType("a JSON object")),
            (r#"{"methodConfig": {}}"#.into(), "methodConfig", K::WrongType("an array")),
            (r#"{"methodConfig": [3]}"#.into(), "methodConfig[0]", K::WrongType("an object")),
            (
                r#"{"loadBalancingPolicy": 1}"#.into(),
                "loadBalancingPolicy",
                K::WrongType("a string"),
            ),
            (with_names("{}"), "methodConfig[0].name", K::WrongType("an array")),
            (with_names("[1]"), "methodConfig[0].name[0]", K::WrongType("an object")),
            (
                with_names(r#"[{"service": 1}]"#),
                "methodConfig[0].name[0].service",
                K::WrongType("a string"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "waitForReady": "yes"}]}"#.into(),
                "methodConfig[0].waitForReady",
                K::WrongType("a boolean"),
            ),
            (
                with_names(r#"[{"method": "m"}]"#),
                "methodConfig[0].name[0]",
                K::MethodWithoutService,
            ),
            (
                with_names(r#"[{"service": "", "method": "m"}]"#),
                "methodConfig[0].name[0]",
                K::MethodWithoutService,
            ),
            (
                with_names(r#"[{"service": "s", "method": "m"}, {"service": "s", "method": "m"}]"#),
                "methodConfig[0].name[1]",
                K::DuplicateName("/s/m".into()),
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}]}"#
                    .into(),
                "methodConfig[1].name[0]",
                K::DuplicateName("/s/".into()),
            ),
            (
                r#"{"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]}"#.into(),
                "methodConfig[1].name[0]",
                K::DuplicateName("{} (the default)".into()),
            ),
            (timeout("1.5"), "methodConfig[0].timeout", K::WrongType("a duration string such as \"1.5s\"")),
            (timeout(r#""1.5""#), "methodConfig[0].timeout", K::InvalidDuration("missing the 's' unit suffix (for example \"1.5s\")")),
            (timeout(r#""-1s""#), "methodConfig[0].timeout", K::InvalidDuration("must not be negative")),
            (timeout(r#""1.0000000001s""#), "methodConfig[0].timeout", K::InvalidDuration("more than 9 fractional digits")),
            (timeout(r#""s""#), "methodConfig[0].timeout", K::InvalidDuration("no digits")),
            (timeout(r#"".s""#), "methodConfig[0].timeout", K::InvalidDuration("no digits")),
            (timeout(r#""1.2.3s""#), "methodConfig[0].timeout", K::InvalidDuration("only decimal digits and one '.' may precede the 's'")),
            (timeout(r#""+1s""#), "methodConfig[0].timeout", K::InvalidDuration("only decimal digits and one '.' may precede the 's'")),
            (timeout(r#"" 1s""#), "methodConfig[0].timeout", K::InvalidDuration("only decimal digits and one '.' may precede the 's'")),
            (timeout(r#""1m""#), "methodConfig[0].timeout", K::InvalidDuration("missing the 's' unit suffix (for example \"1.5s\")")),
            (timeout(r#""315576000001s""#), "methodConfig[0].timeout", K::InvalidDuration("more than 315576000000 seconds")),
            (timeout(r#""99999999999999999999999s""#), "methodConfig[0].timeout", K::InvalidDuration("too large")),
            (
                r#"{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": -1}]}"#.into(),
                "methodConfig[0].maxRequestMessageBytes",
                K::InvalidInteger("must not be negative"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": "-1"}]}"#.into(),
                "methodConfig[0].maxRequestMessageBytes",
                K::InvalidInteger("must not be negative"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": 1.5}]}"#.into(),
                "methodConfig[0].maxRequestMessageBytes",
                K::InvalidInteger("must be a whole number without fraction or exponent"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxRequestMessageBytes": "12a"}]}"#.into(),
                "methodConfig[0].maxRequestMessageBytes",
                K::InvalidInteger("a string integer must be decimal digits only"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxResponseMessageBytes": "9223372036854775808"}]}"#.into(),
                "methodConfig[0].maxResponseMessageBytes",
                K::InvalidInteger("too large"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxResponseMessageBytes": 1e30}]}"#.into(),
                "methodConfig[0].maxResponseMessageBytes",
                K::InvalidInteger("too large"),
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "maxResponseMessageBytes": true}]}"#.into(),
                "methodConfig[0].maxResponseMessageBytes",
                K::WrongType("an integer (number or string)"),
            ),
            (with_retry("[]"), rp, K::WrongType("an object")),
            (retry("maxAttempts", ""), "methodConfig[0].retryPolicy.maxAttempts", K::Missing),
            (retry("maxAttempts", "1"), "methodConfig[0].retryPolicy.maxAttempts", K::OutOfRange("must be at least 2")),
            (retry("maxAttempts", "0"), "methodConfig[0].retryPolicy.maxAttempts", K::OutOfRange("must be at least 2")),
            (retry("maxAttempts", "2147483648"), "methodConfig[0].retryPolicy.maxAttempts", K::InvalidInteger("too large")),
            (retry("initialBackoff", ""), "methodConfig[0].retryPolicy.initialBackoff", K::Missing),
            (retry("initialBackoff", r#""0s""#), "methodConfig[0].retryPolicy.initialBackoff", K::OutOfRange("must be greater than zero")),
            (retry("maxBackoff", r#""0.0s""#), "methodConfig[0].retryPolicy.maxBackoff", K::OutOfRange("must be greater than zero")),
            (retry("maxBackoff", r#""-1s""#), "methodConfig[0].retryPolicy.maxBackoff", K::InvalidDuration("must not be negative")),
            (retry("backoffMultiplier", ""), "methodConfig[0].retryPolicy.backoffMultiplier", K::Missing),
            (retry("backoffMultiplier", "0"), "methodConfig[0].retryPolicy.backoffMultiplier", K::OutOfRange("must be greater than zero")),
            (retry("backoffMultiplier", "-1.5"), "methodConfig[0].retryPolicy.backoffMultiplier", K::OutOfRange("must be greater than zero")),
            (retry("backoffMultiplier", r#""2""#), "methodConfig[0].retryPolicy.backoffMultiplier", K::WrongType("a number")),
            (retry("retryableStatusCodes", ""), "methodConfig[0].retryPolicy.retryableStatusCodes", K::Missing),
            (retry("retryableStatusCodes", "[]"), "methodConfig[0].retryPolicy.retryableStatusCodes", K::OutOfRange("must not be empty")),
            (retry("retryableStatusCodes", r#""UNAVAILABLE""#), "methodConfig[0].retryPolicy.retryableStatusCodes", K::WrongType("an array")),
            (retry("retryableStatusCodes", r#"["UNAVAILABLE", "unavailable"]"#), "methodConfig[0].retryPolicy.retryableStatusCodes[1]", K::InvalidStatusCode("\"unavailable\"".into())),
            (retry("retryableStatusCodes", "[17]"), "methodConfig[0].retryPolicy.retryableStatusCodes[0]", K::InvalidStatusCode("17".into())),
            (retry("retryableStatusCodes", r#"["14"]"#), "methodConfig[0].retryPolicy.retryableStatusCodes[0]", K::InvalidStatusCode("\"14\"".into())),
            (retry("retryableStatusCodes", "[null]"), "methodConfig[0].retryPolicy.retryableStatusCodes[0]", K::InvalidStatusCode("null".into())),
            (r#"{"loadBalancingConfig": {}}"#.into(), "loadBalancingConfig", K::WrongType("an array")),
            (r#"{"loadBalancingConfig": []}"#.into(), "loadBalancingConfig", K::NoSupportedPolicy(vec![])),
            (
                r#"{"loadBalancingConfig": [{"grpclb": {}}, {"xds": {}}]}"#.into(),
                "loadBalancingConfig",
                K::NoSupportedPolicy(vec!["grpclb".into(), "xds".into()]),
            ),
            (
                r#"{"loadBalancingConfig": [{"Round_Robin": {}}]}"#.into(),
                "loadBalancingConfig",
                K::NoSupportedPolicy(vec!["Round_Robin".into()]),
            ),
            (r#"{"loadBalancingConfig": [{}]}"#.into(), "loadBalancingConfig[0]", K::MalformedLbEntry),
            (
                r#"{"loadBalancingConfig": [{"grpclb": {}}, {"a": {}, "round_robin": {}}]}"#.into(),
                "loadBalancingConfig[1]",
                K::MalformedLbEntry,
            ),
            (r#"{"loadBalancingConfig": ["round_robin"]}"#.into(), "loadBalancingConfig[0]", K::MalformedLbEntry),
            (
                r#"{"loadBalancingConfig": [{"round_robin": []}]}"#.into(),
                "loadBalancingConfig[0].round_robin",
                K::WrongType("an object"),
            ),
            (r#"{"retryThrottling": 1}"#.into(), "retryThrottling", K::WrongType("an object")),
            (r#"{"retryThrottling": {"tokenRatio": 1}}"#.into(), "retryThrottling.maxTokens", K::Missing),
            (r#"{"retryThrottling": {"maxTokens": 10}}"#.into(), "retryThrottling.tokenRatio", K::Missing),
            (r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 1}}"#.into(), "retryThrottling.maxTokens", K::OutOfRange("must be in (0, 1000]")),
            (r#"{"retryThrottling": {"maxTokens": 1000.5, "tokenRatio": 1}}"#.into(), "retryThrottling.maxTokens", K::OutOfRange("must be in (0, 1000]")),
            (r#"{"retryThrottling": {"maxTokens": -3, "tokenRatio": 1}}"#.into(), "retryThrottling.maxTokens", K::OutOfRange("must be in (0, 1000]")),
            (r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}"#.into(), "retryThrottling.tokenRatio", K::OutOfRange("must be greater than zero")),
            (r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": -0.1}}"#.into(), "retryThrottling.tokenRatio", K::OutOfRange("must be greater than zero")),
            (r#"{"retryThrottling": {"maxTokens": "10", "tokenRatio": 1}}"#.into(), "retryThrottling.maxTokens", K::WrongType("a number")),
            // A method config without a name is still validated.
            (r#"{"methodConfig": [{"timeout": "x"}]}"#.into(), "methodConfig[0].timeout", K::InvalidDuration("missing the 's' unit suffix (for example \"1.5s\")")),
        ];
        for (doc, field, kind) in cases {
            let e = err(&doc);
            assert_eq!((e.field(), e.kind()), (field, &kind), "{doc}");
        }
        // Syntax errors carry serde_json's message.
        for doc in ["{", "{\"a\": }", "{} {}", "{'a': 1}", "{\"a\": 1e400}"] {
            let e = err(doc);
            assert!(matches!(e.kind(), K::Syntax(_)), "{doc}: {e:?}");
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
        // Throttling is accepted at the edge of its range.
        ok(r#"{"retryThrottling": {"maxTokens": 1000, "tokenRatio": 0.001}}"#);
    }

    #[test]
    fn error_messages_name_the_field() {
        let e = err(&with_retry(r#"{"maxAttempts": 1}"#));
        assert_eq!(
            e.to_string(),
            "invalid service config: methodConfig[0].retryPolicy.maxAttempts: \
             out of range: must be at least 2"
        );
        let e = err(&with_names(r#"[{"method": "m"}]"#));
        assert!(e.to_string().contains("non-empty 'service'"), "{e}");
        let e = err(r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#);
        assert_eq!(
            e.to_string(),
            "invalid service config: loadBalancingConfig: no supported policy among [\"grpclb\"]"
        );
        assert_eq!(
            err("").to_string(),
            "invalid service config: no service config provided"
        );
    }

    #[test]
    fn status_code_names() {
        for code in Code::ALL {
            assert_eq!(parse_code(&json!(code.name())), Some(code));
            assert_eq!(parse_code(&json!(code.as_u32())), Some(code));
        }
        assert_eq!(parse_code(&json!("Unavailable")), None);
        assert_eq!(parse_code(&json!("CANCELED")), None);
        assert_eq!(parse_code(&json!(-1)), None);
        assert_eq!(parse_code(&json!(14.0)), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_json_like(s in r#"[{}\[\]":,0-9a-zA-Z.\-s ]{0,64}"#) {
            let _ = parse(&s);
        }

        #[test]
        fn duration_round_trip(secs in 0u64..=MAX_DURATION_SECONDS, nanos in 0u32..1_000_000_000) {
            let text = format!("{secs}.{nanos:09}s");
            prop_assert_eq!(parse_duration(&text), Ok(Duration::new(secs, nanos)));
        }
    }
}
