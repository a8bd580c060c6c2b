//! The file backend built as a plugin against the built-in one: interleaved A/B rounds.

use std::path::Path;

use super::child::bench_child;
use super::report::print_bench;

/// How the file backend built as a plugin compares with the built-in one.
pub(super) struct AbResult {
    /// Median events/s of the plugin runs.
    pub(super) plugin: f64,
    /// Median events/s of the built-in runs.
    pub(super) builtin: f64,
    /// Each round's plugin / built-in ratio (the two runs of a round ran back to back),
    /// sorted: the median is the figure judged against the target.
    pub(super) ratios: Vec<f64>,
}

/// The built-in file backend and the same code loaded as a plugin, `events` each, in
/// `rounds` interleaved rounds (A B, B A, A B, ...) so the machine's drift hits both alike;
/// each run in a fresh directory, removed afterwards.
pub(super) fn file_plugin_ab(
    lib: &Path,
    events: usize,
    rounds: usize,
    dir: &Path,
    json: bool,
) -> Result<AbResult, String> {
    let n = events.to_string();
    let lib_arg = format!("plugin:{}", lib.display());
    let (mut plugin, mut builtin, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!(
            "suite: file plugin vs built-in, round {} of {rounds} ...",
            round + 1
        );
        let mut order = [false, true];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut pair = [0.0; 2];
        for is_plugin in order {
            let run_dir = dir.join(if is_plugin { "ab-plugin" } else { "ab-builtin" });
            let mut a: Vec<String> = vec![
                "--events".into(),
                n.clone(),
                "--no-baseline".into(),
                "--dir".into(),
                run_dir.to_string_lossy().into_owned(),
            ];
            if is_plugin {
                a.extend(["--backend".into(), lib_arg.clone()]);
            }
            let r = bench_child(&a);
            let _ = std::fs::remove_dir_all(&run_dir);
            let r = r?;
            if json {
                print_bench(&r, true);
            }
            pair[usize::from(is_plugin)] = r.events_per_s;
        }
        builtin.push(pair[0]);
        plugin.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plugin, builtin) = (median(&mut plugin), median(&mut builtin));
    ratios.sort_by(f64::total_cmp);
    Ok(AbResult {
        plugin,
        builtin,
        ratios,
    })
}
