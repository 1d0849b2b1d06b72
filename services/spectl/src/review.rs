//! `spectl review`: data controllers' side of the egress review (list requests, show one, vote,
//! return, revoke), and the owner's side of one run (`spectl run egress`, `spectl run answer`).

use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::{Api, Body, Failure};
use crate::output::{Table, field, short_digest};
use crate::print_json;

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Review requests, oldest first.
    List {
        #[arg(long, value_parser = ["open", "returned", "decided"])]
        state: Option<String>,
        /// Only runs of this workflow version: NAME@VERSION.
        #[arg(long)]
        workflow: Option<String>,
        /// Only requests opened at least this many seconds ago.
        #[arg(long = "older-than", value_name = "SECONDS")]
        older_than: Option<u64>,
    },
    /// One request: each file with its state, reason, checks and votes; its history.
    Show { run_id: String },
    /// Look at one output: its digest, a preview (table, text, image, hex) and a table's
    /// summary per column (min, non-zero min, max, sum, multiples of 5 and 6, missing).
    Preview { run_id: String, path: String },
    /// Approve a held file (bound to its bytes as they are now).
    Approve {
        run_id: String,
        path: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a held file: it never leaves.
    Reject {
        run_id: String,
        path: String,
        /// Why (required; the researcher sees it).
        #[arg(long)]
        comment: String,
    },
    /// Send the request back to its researcher with a question.
    Return {
        run_id: String,
        #[arg(long)]
        comment: String,
    },
    /// Withdraw a released file: its object is removed and no link is issued for it again.
    Revoke {
        run_id: String,
        path: String,
        #[arg(long)]
        comment: String,
    },
}

pub async fn command(api: &Api, json: bool, command: ReviewCommand) -> Result<(), Failure> {
    match command {
        ReviewCommand::List {
            state,
            workflow,
            older_than,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(s) = state {
                query.push(("state", s));
            }
            if let Some(w) = workflow {
                query.push(("workflow", w));
            }
            if let Some(o) = older_than {
                query.push(("older_than", o.to_string()));
            }
            let v = api.get(&["admin", "reviews"], &query).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut table = Table::new(&["RUN ID", "STATE", "WORKFLOW", "HELD", "OPENED", ""]);
            for r in v["requests"].as_array().cloned().unwrap_or_default() {
                table.row(vec![
                    field(&r, "run_id"),
                    field(&r, "state"),
                    field(&r, "workflow"),
                    field(&r, "held_files"),
                    field(&r, "opened_at"),
                    if r["overdue"].as_bool() == Some(true) {
                        "overdue".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            table.print();
        }
        ReviewCommand::Show { run_id } => {
            let v = api.get(&["admin", "reviews", &run_id], &[]).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            println!(
                "run {}  workflow {}  request {}  approvals required {}",
                field(&v, "run_id"),
                field(&v, "workflow"),
                field(&v, "state"),
                field(&v, "approvals_required"),
            );
            if v["you_may_vote"].as_bool() == Some(false) {
                println!("you own this run: another data controller must review it");
            }
            let mut table = Table::new(&["PATH", "STATE", "DECISION", "VOTES", "SIZE", "REASON"]);
            for f in v["files"].as_array().cloned().unwrap_or_default() {
                let r = &f["review"];
                table.row(vec![
                    field(&f, "path"),
                    field(&f, "state"),
                    field(r, "decision"),
                    format!("+{} -{}", field(r, "approvals"), field(r, "rejections")),
                    field(&f, "size"),
                    field(&f, "reason"),
                ]);
            }
            table.print();
            let events = v["events"].as_array().cloned().unwrap_or_default();
            if !events.is_empty() {
                println!();
                let mut table = Table::new(&["AT", "KIND", "PATH", "VOTE", "SHA256", "COMMENT"]);
                for e in events {
                    table.row(vec![
                        field(&e, "at"),
                        field(&e, "kind"),
                        field(&e, "path"),
                        field(&e, "vote"),
                        short_digest(&e["sha256"]),
                        field(&e, "comment"),
                    ]);
                }
                table.print();
            }
        }
        ReviewCommand::Preview { run_id, path } => {
            let v = api
                .get(&["admin", "reviews", &run_id, "preview"], &[("path", path)])
                .await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            print_preview(&v);
        }
        ReviewCommand::Approve {
            run_id,
            path,
            comment,
        } => vote(api, json, &run_id, &path, "approve", comment).await?,
        ReviewCommand::Reject {
            run_id,
            path,
            comment,
        } => vote(api, json, &run_id, &path, "reject", Some(comment)).await?,
        ReviewCommand::Return { run_id, comment } => {
            let v = api
                .post(
                    &["admin", "reviews", &run_id, "return"],
                    Body::Json(json!({ "comment": comment })),
                )
                .await?;
            report(
                json,
                &v,
                &format!("review of run {run_id} returned to its researcher"),
            );
        }
        ReviewCommand::Revoke {
            run_id,
            path,
            comment,
        } => {
            let v = api
                .post(
                    &["admin", "reviews", &run_id, "revoke"],
                    Body::Json(json!({ "path": path, "comment": comment })),
                )
                .await?;
            report(
                json,
                &v,
                &format!("{path} of run {run_id}: release revoked"),
            );
        }
    }
    Ok(())
}

fn print_preview(v: &Value) {
    println!(
        "{}  {} bytes  sha256 {}  {}",
        field(v, "path"),
        field(v, "size"),
        field(v, "sha256"),
        field(v, "state")
    );
    let p = &v["preview"];
    match p["kind"].as_str() {
        Some("table") => {
            let header: Vec<String> = p["header"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(crate::output::text)
                .collect();
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            let mut table = Table::new(&names);
            for row in p["rows"].as_array().cloned().unwrap_or_default() {
                table.row(
                    row.as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(crate::output::text)
                        .collect(),
                );
            }
            table.print();
        }
        Some("text") => println!("{}", field(p, "text")),
        Some("image") => println!(
            "an image ({}); --json carries it as base64",
            field(p, "media_type")
        ),
        _ => println!("{}", field(p, "head")),
    }
    if let Some(columns) = v["summary"]["columns"].as_array() {
        println!();
        let mut table = Table::new(&[
            "COLUMN",
            "MIN",
            "NON-ZERO MIN",
            "MAX",
            "SUM",
            "DIV 5",
            "DIV 6",
            "MISSING",
        ]);
        for c in columns {
            table.row(vec![
                field(c, "name"),
                field(c, "min"),
                field(c, "non_zero_min"),
                field(c, "max"),
                field(c, "sum"),
                field(c, "divisible_by_5"),
                field(c, "divisible_by_6"),
                field(c, "missing"),
            ]);
        }
        table.print();
    }
}

async fn vote(
    api: &Api,
    json: bool,
    run_id: &str,
    path: &str,
    vote: &str,
    comment: Option<String>,
) -> Result<(), Failure> {
    let mut body = json!({ "path": path, "vote": vote });
    if let Some(c) = comment {
        body["comment"] = Value::String(c);
    }
    let v = api
        .post(&["admin", "reviews", run_id, "votes"], Body::Json(body))
        .await?;
    let reset = if v["votes_reset"].as_bool() == Some(true) {
        " (the file changed since earlier votes: they were reset)"
    } else {
        ""
    };
    report(
        json,
        &v,
        &format!(
            "{path}: {vote} recorded; decision {}{reset}",
            field(&v, "decision")
        ),
    );
    Ok(())
}

fn report(json: bool, v: &Value, line: &str) {
    if json {
        print_json(v);
    } else {
        println!("{line}");
    }
}

/// `spectl run egress RUN_ID`: where each output of one's run stands, and what reviewers said.
pub async fn egress(api: &Api, json: bool, run_id: &str) -> Result<(), Failure> {
    let v = api.get(&["runs", run_id, "egress"], &[]).await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    if !v["egress_error"].is_null() {
        println!("egress: {}", field(&v, "egress_error"));
    }
    if !v["review"].is_null() {
        println!("review: {}", field(&v, "review"));
    }
    let mut table = Table::new(&["PATH", "STATE", "DECISION", "SIZE", "REASON"]);
    for f in v["files"].as_array().cloned().unwrap_or_default() {
        table.row(vec![
            field(&f, "path"),
            field(&f, "state"),
            field(&f, "decision"),
            field(&f, "size"),
            field(&f, "reason"),
        ]);
    }
    table.print();
    for m in v["messages"].as_array().cloned().unwrap_or_default() {
        println!(
            "{} {}: {}",
            field(&m, "at"),
            field(&m, "kind"),
            field(&m, "comment")
        );
    }
    Ok(())
}

/// `spectl run answer RUN_ID --comment ...`: answers a returned review.
pub async fn answer(api: &Api, json: bool, run_id: &str, comment: String) -> Result<(), Failure> {
    let v = api
        .post(
            &["runs", run_id, "egress", "answer"],
            Body::Json(json!({ "comment": comment })),
        )
        .await?;
    report(
        json,
        &v,
        &format!("answered; the review of run {run_id} is open again"),
    );
    Ok(())
}
