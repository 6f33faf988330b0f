//! Hand-rolled parsing of the interop binaries' `--flag=value` / `--flag value` command
//! lines.

use std::collections::HashMap;

/// Parsed `--name[=value]` flags.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `args` (without the program name). Each flag is `--name=value`,
    /// `--name value`, or a bare `--name` (boolean, "true"); only `known` names are
    /// accepted.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
        boolean: &[&str],
    ) -> Result<Flags, String> {
        let mut values = HashMap::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let name = body.split_once('=').map_or(body, |(n, _)| n);
            if !known.contains(&name) {
                return Err(format!(
                    "unknown flag --{name} (known: {})",
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let is_bool = boolean.contains(&body);
                    let next_is_value = args.peek().is_some_and(|n| !n.starts_with('-'));
                    if is_bool && !args.peek().is_some_and(|n| n == "true" || n == "false") {
                        (body.to_owned(), "true".to_owned())
                    } else if next_is_value || !is_bool {
                        match args.next() {
                            Some(v) => (body.to_owned(), v),
                            None => return Err(format!("flag --{body} needs a value")),
                        }
                    } else {
                        (body.to_owned(), "true".to_owned())
                    }
                }
            };
            values.insert(name, value);
        }
        Ok(Flags { values })
    }

    /// The flag's value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The flag's value or `default`.
    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// A boolean flag: absent is false; `true`/`1` are true, `false`/`0` false.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(format!("--{name}: expected true or false, got {v:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        Flags::parse(
            args.iter().map(|s| s.to_string()),
            &["port", "use_tls", "test_case"],
            &["use_tls"],
        )
    }

    #[test]
    fn both_forms_and_booleans() {
        let f = parse(&["--port=10", "--test_case", "large_unary", "--use_tls"]).unwrap();
        assert_eq!(f.get("port"), Some("10"));
        assert_eq!(f.get("test_case"), Some("large_unary"));
        assert!(f.bool("use_tls").unwrap());
        let f = parse(&["--use_tls", "false", "--port", "5"]).unwrap();
        assert!(!f.bool("use_tls").unwrap());
        assert_eq!(f.get("port"), Some("5"));
        assert!(parse(&["--nope=1"]).is_err());
        assert!(parse(&["--port"]).is_err());
    }
}
