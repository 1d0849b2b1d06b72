//! The route table ([`table`]) and one file per resource. Route files do HTTP only (reading
//! requests, shaping responses) and never import one another; shared HTTP helpers are in
//! `crate::http`, the work behind the handlers in `crate::app`.
//!
//! The table is the one list of endpoints: the router is built from it ([`configure`]), and
//! the tests derive from it the role x endpoint matrix (tests/auth.rs), the check of the
//! OpenAPI document's paths, security and roles, and the deny-by-default check (tests/api.rs).

pub mod audit;
pub mod datasets;
pub mod health;
pub mod keys;
pub mod login;
pub mod logs;
pub mod openapi;
pub mod reader_keys;
pub mod receipts;
pub mod results;
pub mod reviews;
pub mod runs;
pub mod service_info;
pub mod table;
pub mod tasks;
pub mod ui;
pub mod uploads;
pub mod usage;
pub mod workflows;

use actix_web::web;

use crate::auth::actions::*;
use table::Method::{Delete, Get, Post};
use table::{Base, RouteSpec, page, protected, public};

/// The WES base path, as the spec's server URL names it.
pub const WES_BASE: &str = "/ga4gh/wes/v1";

/// Every endpoint: method, path, OpenAPI operation, and who may call it (the action, checked
/// against the handler's first argument, or `public`). One line per route, hence unformatted.
#[rustfmt::skip]
pub fn table() -> Vec<RouteSpec> {
    vec![
        public(Get, Base::Wes, "/service-info", Some("GetServiceInfo"), service_info::get),
        protected(RunsRead, Get, "/runs", "ListRuns", runs::list),
        protected(RunsSubmit, Post, "/runs", "RunWorkflow", runs::submit),
        protected(RunsRead, Get, "/runs/{run_id}", "GetRunLog", runs::get),
        protected(RunsRead, Get, "/runs/{run_id}/status", "GetRunStatus", runs::status),
        protected(RunsCancel, Post, "/runs/{run_id}/cancel", "CancelRun", runs::cancel),
        protected(RunsRead, Get, "/runs/{run_id}/tasks", "ListTasks", tasks::list),
        // Use and quota limits (extension): the caller's own; every user's for operators.
        protected(RunsRead, Get, "/usage", "GetUsage", usage::get),
        protected(RunsRead, Get, "/runs/{run_id}/tasks/{task_id}", "GetTask", tasks::get),
        // Logs are egress: owners read released logs only, operators and data controllers all.
        protected(RunsLogsRead, Get, "/runs/{run_id}/logs/{stream}", "GetRunLogText", logs::get),
        // Results access (extension): owners share runs; collaborators list released files
        // and get presigned download links.
        protected(ResultsShare, Get, "/runs/{run_id}/shares", "ListShares", results::list_shares),
        protected(ResultsShare, Post, "/runs/{run_id}/shares", "AddShare", results::add_share),
        protected(ResultsShare, Delete, "/runs/{run_id}/shares", "RemoveShare", results::remove_share),
        protected(ResultsRead, Get, "/results", "ListResults", results::list),
        // The egress review (extension): the owner's view of their outputs and their answer to
        // a returned request; data controllers decide on held outputs under /admin/reviews.
        protected(RunsRead, Get, "/runs/{run_id}/egress", "GetRunEgress", reviews::researcher_view),
        protected(ReviewsAnswer, Post, "/runs/{run_id}/egress/answer", "AnswerReview", reviews::answer),
        protected(ReviewsManage, Get, "/admin/reviews", "ListReviews", reviews::list),
        protected(ReviewsManage, Get, "/admin/reviews/{run_id}", "GetReview", reviews::get),
        protected(ReviewsManage, Get, "/admin/reviews/{run_id}/preview", "PreviewOutput", reviews::preview),
        protected(ReviewsManage, Post, "/admin/reviews/{run_id}/votes", "VoteOnOutput", reviews::vote),
        protected(ReviewsManage, Post, "/admin/reviews/{run_id}/return", "ReturnReview", reviews::return_request),
        protected(ReviewsManage, Post, "/admin/reviews/{run_id}/revoke", "RevokeRelease", reviews::revoke),
        protected(ResultsRead, Get, "/results/{run_id}", "GetResults", results::get),
        protected(ResultsRead, Post, "/results/{run_id}/links", "CreateResultLink", results::create_link),
        // Results stored Crypt4GH-encrypted leave bound to the reader's own key.
        protected(ResultsRead, Get, "/results/{run_id}/crypt4gh", "DownloadEncryptedResult", results::download_encrypted),
        protected(ResultsRead, Get, "/me/crypt4gh-key", "GetMyCrypt4ghKey", reader_keys::get),
        protected(ResultsRead, Post, "/me/crypt4gh-key", "RegisterMyCrypt4ghKey", reader_keys::register),
        public(Get, Base::Wes, "/openapi.json", Some("GetOpenApi"), openapi::get),
        // The service's Crypt4GH public key, for data providers encrypting to it.
        public(Get, Base::Wes, "/keys/service.pub", Some("GetServicePublicKey"), keys::service_pub),
        // The registry (extensions): researchers see approved workflows and active datasets,
        // data controllers manage both under /admin.
        protected(WorkflowsRead, Get, "/workflows", "ListWorkflows", workflows::list_approved),
        protected(WorkflowsRead, Get, "/workflows/{name}/{version}", "GetWorkflow", workflows::get_approved),
        protected(DatasetsRead, Get, "/datasets", "ListDatasets", datasets::list),
        // WESkit's workflow listing, at the root where WESkit's client looks for it.
        protected(WorkflowsRead, Get, "/weskit/v1/wf-info", "WeskitWorkflowInfo", workflows::weskit_info).at_root(),
        protected(WorkflowsManage, Get, "/admin/workflows", "AdminListWorkflows", workflows::admin_list),
        protected(WorkflowsManage, Post, "/admin/workflows", "RegisterWorkflow", workflows::register),
        protected(WorkflowsManage, Get, "/admin/workflows/{name}/{version}", "AdminGetWorkflow", workflows::admin_get),
        protected(WorkflowsManage, Post, "/admin/workflows/{name}/{version}/approve", "ApproveWorkflow", workflows::approve),
        protected(WorkflowsManage, Post, "/admin/workflows/{name}/{version}/retire", "RetireWorkflow", workflows::retire),
        protected(DatasetsManage, Get, "/admin/datasets", "AdminListDatasets", datasets::admin_list),
        protected(DatasetsManage, Post, "/admin/datasets", "RegisterDataset", datasets::create),
        protected(DatasetsManage, Get, "/admin/datasets/{id}", "AdminGetDataset", datasets::admin_get),
        protected(DatasetsManage, Post, "/admin/datasets/{id}/retire", "RetireDataset", datasets::retire),
        // Ingress into Crypt4GH datasets: grants for data controllers; the upload itself is
        // authorised by the grant's token (X-SPE-Upload-Token), not a person's login.
        protected(DatasetsManage, Post, "/admin/datasets/{id}/uploads", "CreateUploadGrant", uploads::create_grant),
        protected(DatasetsManage, Get, "/admin/datasets/{id}/files", "ListDatasetFiles", uploads::list_files),
        public(Post, Base::Wes, "/uploads/{grant_id}", Some("UploadDatasetFile"), uploads::upload),
        protected(WorkflowsManage, Get, "/admin/events", "RegistryEvents", workflows::events),
        // Outside the WES base path: health checks, and browser login for the web UI
        // (auth.oidc.browser), which the OpenAPI document does not describe.
        public(Get, Base::Root, "/healthz", Some("Live"), health::live),
        public(Get, Base::Root, "/readyz", Some("Ready"), health::ready),
        public(Get, Base::Root, "/auth/login", None, login::login),
        public(Get, Base::Root, "/auth/callback", None, login::callback),
        public(Post, Base::Root, "/auth/logout", None, login::logout),
        protected(AuditRead, Get, "/admin/audit", "ListAuditRecords", audit::list),
        protected(RunsDelete, Delete, "/runs/{run_id}", "DeleteRunData", runs::delete_data),
        // A run's Five Safes RO-Crate, the receipt key, a receipt's chain head.
        protected(ResultsRead, Get, "/runs/{run_id}/ro-crate", "GetRunRoCrate", receipts::ro_crate),
        public(Get, Base::Wes, "/keys/receipt.pub", Some("GetReceiptPublicKey"), receipts::receipt_pub),
        protected(ResultsRead, Get, "/audit/heads/{sha256}", "FindAuditChainHead", receipts::chain_head),
        // The web UI (docs/ui.md): HTML pages, not in the OpenAPI document; the same actions
        // and run extractors as the API. Its two assets are public (the error pages use them).
        page(UiHome, Get, "/", ui::home),
        page(RunsRead, Get, "/ui/runs", ui::runs),
        page(RunsRead, Get, "/ui/runs/{run_id}", ui::run),
        page(RunsCancel, Post, "/ui/runs/{run_id}/cancel", ui::cancel),
        page(ReviewsAnswer, Post, "/ui/runs/{run_id}/answer", ui::answer),
        page(ResultsShare, Post, "/ui/runs/{run_id}/shares", ui::add_share),
        page(ResultsShare, Post, "/ui/runs/{run_id}/shares/remove", ui::remove_share),
        page(ResultsRead, Get, "/ui/results", ui::results),
        page(ResultsRead, Get, "/ui/results/{run_id}", ui::result),
        page(ResultsRead, Post, "/ui/results/{run_id}/link", ui::result_link),
        page(ResultsRead, Post, "/ui/results/{run_id}/key", ui::register_key),
        page(RunsSubmit, Get, "/ui/submit", ui::workflows),
        page(RunsSubmit, Get, "/ui/submit/{name}/{version}", ui::submit_form),
        page(RunsSubmit, Post, "/ui/submit/{name}/{version}", ui::submit),
        page(ReviewsManage, Get, "/ui/reviews", ui::reviews),
        page(ReviewsManage, Get, "/ui/reviews/{run_id}", ui::review),
        page(ReviewsManage, Post, "/ui/reviews/{run_id}/votes", ui::vote),
        page(ReviewsManage, Post, "/ui/reviews/{run_id}/return", ui::return_request),
        page(WorkflowsManage, Get, "/ui/workflows", ui::registry_page),
        page(WorkflowsManage, Post, "/ui/workflows", ui::register_workflow),
        page(WorkflowsManage, Get, "/ui/workflows/{name}/{version}", ui::workflow_page),
        page(DatasetsManage, Get, "/ui/datasets", ui::datasets_page),
        page(AuditRead, Get, "/ui/audit", ui::audit_page),
        page(AuditRead, Get, "/ui/audit/verification", ui::audit_verification),
        page(WorkflowsManage, Post, "/ui/workflows/{name}/{version}/approve", ui::approve_workflow),
        page(WorkflowsManage, Post, "/ui/workflows/{name}/{version}/retire", ui::retire_workflow),
        public(Get, Base::Root, "/ui/assets/{file}", None, ui::asset),
    ]
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    table::mount(cfg, &table());
}
