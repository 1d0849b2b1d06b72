//! What a notification says: what happened, what to do next, and a link. Built from the stored
//! notification only (run id, event, run state, workflow name@version, owner), so a message
//! cannot carry file contents, file names, dataset locations or parameters.

use serde_json::{Value, json};
use spe_core::config::HttpUrl;
use spe_store::{Notification, NotificationEvent};

/// One notification as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A one-line subject (the e-mail's Subject).
    pub subject: String,
    /// What happened.
    pub summary: String,
    /// What the reader should do next.
    pub next_step: String,
    /// Where to look (`<public_url>/ga4gh/wes/v1/runs/<id>`), when `public_url` is configured.
    pub link: Option<String>,
}

impl Message {
    pub fn of(n: &Notification, public_url: Option<&HttpUrl>) -> Message {
        let run = n.run_id;
        let wf = &n.workflow_url;
        let (summary, next_step) = match n.event {
            NotificationEvent::RunEnded => (
                format!("Run {run} of {wf} ended: {}.", n.run_state.as_str()),
                if n.run_state == spe_core::RunState::Complete {
                    "Researcher: outputs the approved rules release appear in the run's \
                     outputs; any held for review will be announced separately."
                        .to_owned()
                } else {
                    "Researcher: see the run's status and log summary (spectl run show).".to_owned()
                },
            ),
            NotificationEvent::Held => (
                format!("An output of run {run} of {wf} is held for review."),
                format!(
                    "Data controllers: review it (spectl review show {run}). Researcher: nothing \
                     to do until the review decides."
                ),
            ),
            NotificationEvent::Approved => (
                format!("A held output of run {run} of {wf} was approved in review."),
                "Researcher: it will be released; download it from the run's outputs.".to_owned(),
            ),
            NotificationEvent::Rejected => (
                format!("A held output of run {run} of {wf} was rejected in review."),
                "Researcher: it will not be released; the reviewer's reason is in the review \
                 history (spectl run egress)."
                    .to_owned(),
            ),
            NotificationEvent::Returned => (
                format!("The review of run {run} of {wf} was returned to its researcher."),
                format!(
                    "Researcher: read the reviewer's comment and answer (spectl run answer {run})."
                ),
            ),
            NotificationEvent::Answered => (
                format!("The researcher answered the returned review of run {run} of {wf}."),
                format!("Data controllers: the request is open again (spectl review show {run})."),
            ),
            NotificationEvent::Revoked => (
                format!("A released output of run {run} of {wf} was withdrawn."),
                "Everyone: it can no longer be downloaded; delete copies you hold.".to_owned(),
            ),
            NotificationEvent::Overdue => (
                format!("The review of run {run} of {wf} is overdue."),
                format!("Data controllers: decide its held outputs (spectl review show {run})."),
            ),
        };
        let subject =
            format!("[SPE] {}", n.event.as_str().replace('_', " ")) + &format!(": run {run}");
        Message {
            subject,
            summary,
            next_step,
            link: public_url.map(|u| {
                format!(
                    "{}/ga4gh/wes/v1/runs/{run}",
                    u.as_str().trim_end_matches('/')
                )
            }),
        }
    }

    /// The e-mail body: plain text.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n{}\n", self.summary, self.next_step);
        if let Some(link) = &self.link {
            out.push_str(&format!("\n{link}\n"));
        }
        out
    }

    /// The webhook body: the message with the facts it is built from, the delivery id and the
    /// time of sending (both inside the signed body, so a replay is recognisable).
    pub fn webhook_body(&self, n: &Notification, delivery_id: &str, sent_at: &str) -> Value {
        json!({
            "delivery_id": delivery_id,
            "sent_at": sent_at,
            "event": n.event.as_str(),
            "run_id": n.run_id.to_string(),
            "run_state": n.run_state.as_str(),
            "workflow": n.workflow_url,
            "owner": { "iss": n.owner.issuer(), "sub": n.owner.sub() },
            "occurred_at": n.created_at.to_rfc3339_micros(),
            "summary": self.summary,
            "next_step": self.next_step,
            "link": self.link,
        })
    }
}

#[cfg(test)]
mod tests {
    use spe_core::time::Timestamp;
    use spe_core::{RunId, RunState, Subject};
    use spe_store::{Notification, NotificationEvent};

    use super::*;

    #[test]
    fn every_event_says_what_happened_what_next_and_links_the_run() {
        let url = HttpUrl::try_from("https://spe.example.org/".to_owned()).unwrap();
        let run = RunId::new_random();
        for event in NotificationEvent::ALL {
            let n = Notification {
                id: 1,
                run_id: run,
                event,
                owner: Subject::new("https://login.example.org", "alice").unwrap(),
                workflow_url: "quals@1.0.0".into(),
                run_state: RunState::Complete,
                created_at: Timestamp::from_micros(0),
            };
            let m = Message::of(&n, Some(&url));
            assert!(m.summary.contains(&run.to_string()), "{m:?}");
            assert!(m.subject.contains(&run.to_string()), "{m:?}");
            assert!(!m.next_step.is_empty(), "{m:?}");
            assert_eq!(
                m.link.as_deref(),
                Some(format!("https://spe.example.org/ga4gh/wes/v1/runs/{run}").as_str())
            );
            let who = match event {
                NotificationEvent::Held
                | NotificationEvent::Answered
                | NotificationEvent::Overdue => "Data controllers:",
                NotificationEvent::Revoked => "Everyone:",
                _ => "Researcher:",
            };
            assert!(m.next_step.contains(who), "{event:?}: {m:?}");
        }
    }
}
