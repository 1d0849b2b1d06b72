//! Tasks of a run, read from the engine's own records: Snakemake's log (the runner keeps the
//! engine's stderr) and Nextflow's trace file. One task per Snakemake rule job or Nextflow
//! process.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: String,
    pub name: String,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub exit_code: Option<i32>,
    /// Engine-specific notes (e.g. Nextflow's status word).
    pub notes: Vec<String>,
}

/// Snakemake's job log: `[timestamp]` lines, `rule NAME:` / `localrule NAME:` blocks with a
/// `jobid: N` line, `Finished jobid: N (Rule: NAME)` (Snakemake 8+) or `Finished job N.`, and
/// `Error in rule NAME:` blocks. Timestamps are read as UTC (jobs run with no TZ set).
///
/// One pass over the lines, each looked at a bounded number of times, and one map lookup per
/// `jobid`/`Finished` line: the work is linear in the log's size (the log is up to 16 MiB of
/// text a workflow controls, so a scan per line over the tasks found so far would be quadratic).
/// A job that fails several times (retries) carries one `failed` note, so a task's size is
/// bounded too.
pub fn parse_snakemake_log(text: &str) -> Vec<TaskRecord> {
    let mut tasks: Vec<TaskRecord> = Vec::new();
    // Position in `tasks` of each job id seen in a rule block.
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut stamp: Option<Timestamp> = None;
    // The rule block being read: its name, and whether it is an error report.
    let mut block: Option<(String, bool)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(inner) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
            && let Ok(at) = NaiveDateTime::parse_from_str(inner, "%a %b %e %H:%M:%S %Y")
        {
            stamp = Some(Timestamp::from_datetime(at.and_utc()));
            continue;
        }
        if !line.starts_with(' ') {
            let rule = trimmed
                .strip_prefix("localrule ")
                .or_else(|| trimmed.strip_prefix("rule "))
                .and_then(|r| r.strip_suffix(':'));
            let error = trimmed
                .strip_prefix("Error in rule ")
                .and_then(|r| r.strip_suffix(':'));
            block = match (rule, error) {
                (Some(name), _) => Some((name.to_owned(), false)),
                (_, Some(name)) => Some((name.to_owned(), true)),
                _ => None,
            };
        }
        if let Some(id) = trimmed.strip_prefix("jobid: ") {
            let id = id.trim();
            match &block {
                Some((name, false)) if !by_id.contains_key(id) => {
                    by_id.insert(id.to_owned(), tasks.len());
                    tasks.push(TaskRecord {
                        id: id.to_owned(),
                        name: name.clone(),
                        start_time: stamp,
                        end_time: None,
                        exit_code: None,
                        notes: Vec::new(),
                    })
                }
                Some((_, true)) => {
                    if let Some(task) = by_id.get(id).and_then(|&i| tasks.get_mut(i)) {
                        task.end_time = stamp;
                        task.exit_code = Some(1);
                        if !task.notes.iter().any(|n| n == "failed") {
                            task.notes.push("failed".into());
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let finished = trimmed
            .strip_prefix("Finished jobid: ")
            .and_then(|r| r.split_whitespace().next())
            .or_else(|| {
                trimmed
                    .strip_prefix("Finished job ")
                    .and_then(|r| r.strip_suffix('.'))
            });
        if let Some(id) = finished
            && let Some(task) = by_id.get(id).and_then(|&i| tasks.get_mut(i))
        {
            task.end_time = stamp;
            task.exit_code = Some(0);
        }
    }
    tasks
}

/// Nextflow's trace file (`-with-trace`): tab-separated with a header naming the columns;
/// `task_id`, `name`, `status`, `exit`, `submit`, `start`, `complete` are read when present.
pub fn parse_nextflow_trace(text: &str) -> Vec<TaskRecord> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split('\t').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(id_col), Some(name_col)) = (col("task_id"), col("name")) else {
        return Vec::new();
    };
    let time = |cells: &[&str], name: &str| {
        col(name)
            .and_then(|i| cells.get(i))
            .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f").ok())
            .map(|at| Timestamp::from_datetime(at.and_utc()))
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            Some(TaskRecord {
                id: cells.get(id_col)?.to_string(),
                name: cells.get(name_col)?.to_string(),
                start_time: time(&cells, "start").or_else(|| time(&cells, "submit")),
                end_time: time(&cells, "complete"),
                exit_code: col("exit")
                    .and_then(|i| cells.get(i))
                    .and_then(|v| v.parse().ok()),
                notes: col("status")
                    .and_then(|i| cells.get(i))
                    .map(|s| vec![format!("status: {s}")])
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAKEMAKE: &str = "Select jobs to execute...\n\
        [Sun Nov 22 17:58:49 2026]\n\
        localrule plot_quals:\n    input: data/calls.tsv\n    output: plots/quals.svg\n    jobid: 2\n\
        [Sun Nov 22 17:58:51 2026]\n\
        Finished jobid: 2 (Rule: plot_quals)\n\
        [Sun Nov 22 17:58:51 2026]\n\
        rule summarize:\n    jobid: 1\n\
        [Sun Nov 22 17:58:54 2026]\n\
        Error in rule summarize:\n    message: None\n    jobid: 1\n\
        [Sun Nov 22 17:58:55 2026]\n\
        rule all:\n    jobid: 0\n";

    #[test]
    fn snakemake_jobs_become_tasks() {
        let tasks = parse_snakemake_log(SNAKEMAKE);
        assert_eq!(tasks.len(), 3);
        assert_eq!(
            (tasks[0].id.as_str(), tasks[0].name.as_str()),
            ("2", "plot_quals")
        );
        assert_eq!(tasks[0].exit_code, Some(0));
        assert_eq!(
            tasks[0].start_time.unwrap().to_wes(),
            "2026-11-22T17:58:49Z"
        );
        assert_eq!(tasks[0].end_time.unwrap().to_wes(), "2026-11-22T17:58:51Z");
        assert_eq!(tasks[1].name, "summarize");
        assert_eq!(tasks[1].exit_code, Some(1));
        assert_eq!(tasks[2].exit_code, None, "still running");
        assert!(parse_snakemake_log("").is_empty());
    }

    #[test]
    fn older_snakemake_finish_lines_count_too() {
        let text = "[Mon Jan  5 10:00:00 2026]\nrule a:\n    jobid: 1\n[Mon Jan  5 10:00:02 2026]\nFinished job 1.\n";
        let tasks = parse_snakemake_log(text);
        assert_eq!(tasks[0].exit_code, Some(0));
        assert_eq!(
            tasks[0].start_time.unwrap().to_wes(),
            "2026-01-05T10:00:00Z"
        );
    }

    #[test]
    fn nextflow_trace_rows_become_tasks() {
        let text = "task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tduration\trealtime\n\
                    1\tab/123456\t42\tsayHello (1)\tCOMPLETED\t0\t2026-11-22 17:58:49.123\t1s\t0ms\n\
                    2\tcd/654321\t43\tsayHello (2)\tFAILED\t1\t2026-11-22 17:58:50.000\t1s\t0ms\n";
        let tasks = parse_nextflow_trace(text);
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].name, "sayHello (1)");
        assert_eq!(tasks[1].exit_code, Some(1));
        assert_eq!(
            tasks[0].start_time.unwrap().to_wes(),
            "2026-11-22T17:58:49Z"
        );
        assert_eq!(tasks[1].notes, vec!["status: FAILED".to_owned()]);
        assert!(parse_nextflow_trace("garbage").is_empty());
    }

    /// A synthetic log near the size the API reads at most (16 MiB; this one is about 15 MB), in the shape Snakemake writes:
    /// every job started, then finished or failed, the finish lines naming ids in the reverse
    /// order of the starts. The old parser looked each id up by scanning the tasks found so far:
    /// about n²/2 = 5·10⁹ string comparisons here (tens of seconds in a debug build); this one does
    /// one map lookup per line. Timings are in docs/benchmarks.md, not asserted here.
    #[test]
    fn a_maximal_log_parses_into_every_task() {
        let n = 100_000usize;
        let mut log = String::with_capacity(17 * 1024 * 1024);
        for i in 0..n {
            log.push_str(&format!(
                "[Sun Nov 22 17:58:49 2026]\nrule step_{}:\n    input: data/{i}.tsv\n    jobid: {i}\n",
                i % 7
            ));
        }
        for i in (0..n).rev() {
            if i % 10 == 0 {
                log.push_str(&format!(
                    "[Sun Nov 22 18:00:00 2026]\nError in rule step_{}:\n    jobid: {i}\n",
                    i % 7
                ));
            } else {
                log.push_str(&format!(
                    "[Sun Nov 22 18:00:01 2026]\nFinished jobid: {i} (Rule: step_{})\n",
                    i % 7
                ));
            }
        }
        assert!(log.len() <= 16 * 1024 * 1024, "{}", log.len());
        let tasks = parse_snakemake_log(&log);
        assert_eq!(tasks.len(), n);
        let last = &tasks[n - 1];
        assert_eq!((last.id.as_str(), last.name.as_str()), ("99999", "step_4"));
        assert_eq!(last.exit_code, Some(0));
        assert_eq!(last.end_time.unwrap().to_wes(), "2026-11-22T18:00:01Z");
        assert_eq!(tasks[0].exit_code, Some(1));
        assert_eq!(tasks[0].notes, vec!["failed".to_owned()]);
        assert_eq!(
            tasks.iter().filter(|t| t.exit_code == Some(1)).count(),
            n / 10
        );
    }

    /// Snakemake reports a job that is retried once per failed attempt; its task keeps one note.
    #[test]
    fn a_job_failing_repeatedly_keeps_one_failed_note() {
        let attempt = "[Mon Jan  5 10:00:02 2026]\nError in rule a:\n    jobid: 1\n";
        let text = format!(
            "[Mon Jan  5 10:00:00 2026]\nrule a:\n    jobid: 1\n{}",
            attempt.repeat(1000)
        );
        let tasks = parse_snakemake_log(&text);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].notes, vec!["failed".to_owned()]);
        assert_eq!(tasks[0].exit_code, Some(1));
    }
}
