-- Identities become (issuer, sub) pairs: `sub` is unique only within its issuer. Every column
-- that names a person (run owners, actors, registrars, approvers, share principals, link
-- recipients) now holds the key `<issuer> <sub>`, and group shares `<issuer> <entitlement URN>`.
-- Rows written before this migration name people of the deployment's primary issuer: the
-- service that migrates puts it in the temporary table spe_migration_context (spe-store's
-- `Store::connect_for`). A database with rows and no primary issuer given stops here.
CREATE TEMP TABLE IF NOT EXISTS spe_migration_context (issuer TEXT);
DO $$
BEGIN
    IF ((SELECT COUNT(*) FROM runs) + (SELECT COUNT(*) FROM workflow_versions)
        + (SELECT COUNT(*) FROM datasets) + (SELECT COUNT(*) FROM registry_events)) > 0
       AND NOT EXISTS (SELECT 1 FROM spe_migration_context WHERE issuer IS NOT NULL AND issuer <> '') THEN
        RAISE EXCEPTION 'existing rows name people by sub alone: migrate by starting wes-api, which knows the primary issuer (auth.oidc.issuer)';
    END IF;
END $$;

UPDATE runs SET owner = (SELECT issuer FROM spe_migration_context) || ' ' || owner;

ALTER TABLE run_events DISABLE TRIGGER run_events_no_change;
UPDATE run_events SET actor = (SELECT issuer FROM spe_migration_context) || ' ' || actor
WHERE actor NOT IN ('submitter', 'reconciler', 'bench');
ALTER TABLE run_events ENABLE TRIGGER run_events_no_change;

ALTER TABLE workflow_versions DISABLE TRIGGER workflow_versions_content_fixed;
UPDATE workflow_versions SET
    registered_by = (SELECT issuer FROM spe_migration_context) || ' ' || registered_by,
    approved_by = (SELECT issuer FROM spe_migration_context) || ' ' || approved_by,
    retired_by = (SELECT issuer FROM spe_migration_context) || ' ' || retired_by;
ALTER TABLE workflow_versions ENABLE TRIGGER workflow_versions_content_fixed;

UPDATE datasets SET created_by = (SELECT issuer FROM spe_migration_context) || ' ' || created_by;

ALTER TABLE registry_events DISABLE TRIGGER registry_events_no_change;
UPDATE registry_events SET actor = (SELECT issuer FROM spe_migration_context) || ' ' || actor;
ALTER TABLE registry_events ENABLE TRIGGER registry_events_no_change;

UPDATE run_shares SET
    principal = (SELECT issuer FROM spe_migration_context) || ' ' || principal,
    created_by = (SELECT issuer FROM spe_migration_context) || ' ' || created_by;

ALTER TABLE result_links DISABLE TRIGGER result_links_no_change;
UPDATE result_links SET issued_to = (SELECT issuer FROM spe_migration_context) || ' ' || issued_to;
ALTER TABLE result_links ENABLE TRIGGER result_links_no_change;
