//! What a run's Five Safes RO-Crate is built from, read in one place for both services (wes-api
//! answering `GET /runs/{id}/ro-crate`, the crawler writing the released package's crate): the
//! run, its approved workflow version, the dataset ids its parameters named, its review history
//! and its released files. The document itself is `spe_core::rocrate::five_safes_crate`.

use serde_json::Value;
use spe_core::RunId;
use spe_core::manifest::Manifest;
use spe_core::rocrate::{
    CrateChainHead, CrateFile, CrateInput, CrateReview, CrateRun, CrateService, CrateWorkflow,
    five_safes_crate,
};
use spe_core::time::Timestamp;

use crate::{ReleasedFile, ReviewEvent, RunRecord, Store, StoreError, WorkflowVersion};

/// The stored facts about one run that its crate describes.
#[derive(Debug, Clone)]
pub struct RunCrateFacts {
    pub run: RunRecord,
    /// The version the run was admitted with (`None` if it is no longer in the registry).
    pub workflow: Option<WorkflowVersion>,
    pub datasets: Vec<String>,
    pub reviews: Vec<ReviewEvent>,
    pub files: Vec<ReleasedFile>,
}

impl Store {
    /// The facts of `run`'s crate; `None` for a run that does not exist.
    pub async fn run_crate_facts(&self, run: RunId) -> Result<Option<RunCrateFacts>, StoreError> {
        let Some(record) = self.get_run(run).await? else {
            return Ok(None);
        };
        let workflow = match record.workflow_url.rsplit_once('@') {
            Some((name, version)) => self.workflow_version(name, version).await?,
            None => None,
        };
        let datasets = match &workflow {
            Some(w) => {
                let manifest = Manifest::from_json(&w.manifest).map_err(|e| {
                    StoreError::Corrupt(format!("manifest of {}: {e}", record.workflow_url))
                })?;
                let mut ids: Vec<String> = manifest
                    .dataset_references(&record.submission.workflow_params)
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            }
            None => Vec::new(),
        };
        Ok(Some(RunCrateFacts {
            reviews: self.review_events(run).await?,
            files: self.released_files(run).await?,
            workflow,
            datasets,
            run: record,
        }))
    }
}

impl RunCrateFacts {
    /// When the crate's facts last changed: the latest release, review step or the run's end.
    /// Used as `datePublished`, so building the crate again from unchanged facts gives the same
    /// document.
    pub fn last_change(&self) -> Timestamp {
        self.files
            .iter()
            .map(|f| f.released_at)
            .chain(self.reviews.iter().map(|r| r.at))
            .chain([self.run.end_time.unwrap_or(self.run.updated_at)])
            .max()
            .unwrap_or(self.run.updated_at)
    }

    /// The `ro-crate-metadata.json` document, with the audit chain head if given.
    pub fn build(
        &self,
        service: CrateService<'_>,
        chain_head: Option<CrateChainHead<'_>>,
    ) -> Value {
        let (name, version) = self
            .run
            .workflow_url
            .rsplit_once('@')
            .unwrap_or((self.run.workflow_url.as_str(), ""));
        let reviews: Vec<CrateReview<'_>> = self
            .reviews
            .iter()
            .map(|e| CrateReview {
                seq: e.seq,
                kind: e.kind.as_str(),
                decision: e.vote.map(|v| v.as_str()),
                path: e.path.as_deref(),
                actor: &e.actor,
                sha256: e.sha256.as_deref(),
                at: e.at,
            })
            .collect();
        let files: Vec<CrateFile<'_>> = self
            .files
            .iter()
            .map(|f| CrateFile {
                path: &f.path,
                size: f.size,
                sha256: &f.sha256,
                released_at: f.released_at,
            })
            .collect();
        let wf = self.workflow.as_ref();
        five_safes_crate(&CrateInput {
            service,
            run: CrateRun {
                id: self.run.id,
                state: self.run.state,
                owner: &self.run.owner,
                created_at: self.run.created_at,
                start_time: self.run.start_time,
                end_time: self.run.end_time,
            },
            workflow: CrateWorkflow {
                name,
                version,
                workflow_type: self.run.workflow_type.as_str(),
                digest: wf.and_then(|w| w.digest.as_ref()).map(|d| d.as_str()),
                approved_by: wf.and_then(|w| w.approved_by.as_ref()),
                approved_at: wf.and_then(|w| w.approved_at),
            },
            datasets: &self.datasets,
            reviews: &reviews,
            files: &files,
            chain_head,
            generated_at: self.last_change(),
        })
    }
}
