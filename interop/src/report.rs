//! The verdict of an interop run: one line per case, with the cases known to fail
//! against a peer (and why) kept honest — a known failure that starts passing fails
//! the run, so the list cannot go stale.

/// Cases known to fail against one peer, with the reason.
pub type Known = &'static [(&'static str, &'static str)];

/// Prints `results` under `title` and panics with every unexpected outcome: a case
/// that failed without being listed in `known`, or a listed case that passed.
pub fn report<S: AsRef<str>>(title: &str, results: &[(S, Result<(), String>)], known: Known) {
    eprintln!("{title}");
    let mut failed = Vec::new();
    for (case, r) in results {
        let case = case.as_ref();
        let reason = known.iter().find(|(c, _)| *c == case).map(|(_, why)| *why);
        match (r, reason) {
            (Ok(()), None) => eprintln!("  {case:<30} PASS"),
            (Ok(()), Some(_)) => {
                eprintln!("  {case:<30} PASS (listed as a known failure!)");
                failed.push(format!(
                    "{case}: passes now; remove it from the known failures"
                ));
            }
            (Err(e), Some(why)) => eprintln!("  {case:<30} FAIL (known: {why})  {e}"),
            (Err(e), None) => {
                eprintln!("  {case:<30} FAIL  {e}");
                failed.push(format!("{case}: {e}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{title}: failed cases:\n{}",
        failed.join("\n")
    );
}
