-- Identities become (issuer, sub) pairs: `sub` is unique only within its issuer. Every column
-- that names a person (run owners, actors, registrars, approvers, share principals, link
-- recipients) now holds the key `<issuer> <sub>`, and group shares `<issuer> <entitlement URN>`.
-- Rows written before this migration name people of the deployment's primary issuer: the
-- service that migrates puts it in the temporary table spe_migration_context (spe-store's
-- `Store::connect_for`). A database with rows and no primary issuer given stops here.
CREATE TEMP TABLE IF NOT EXISTS spe_migration_context (issuer TEXT);
CREATE TEMP TABLE spe_identity_guard (people INTEGER);
CREATE TEMP TRIGGER spe_identity_guard_check BEFORE INSERT ON spe_identity_guard
WHEN NEW.people > 0 AND NOT EXISTS (SELECT 1 FROM spe_migration_context WHERE issuer IS NOT NULL AND issuer <> '')
BEGIN SELECT RAISE(ABORT, 'existing rows name people by sub alone: migrate by starting wes-api, which knows the primary issuer (auth.oidc.issuer)'); END;
INSERT INTO spe_identity_guard
SELECT (SELECT COUNT(*) FROM runs) + (SELECT COUNT(*) FROM workflow_versions)
     + (SELECT COUNT(*) FROM datasets) + (SELECT COUNT(*) FROM registry_events);
DROP TABLE spe_identity_guard;

UPDATE runs SET owner = (SELECT issuer FROM spe_migration_context) || ' ' || owner;

DROP TRIGGER run_events_no_update;
UPDATE run_events SET actor = (SELECT issuer FROM spe_migration_context) || ' ' || actor
WHERE actor NOT IN ('submitter', 'reconciler', 'bench');
CREATE TRIGGER run_events_no_update BEFORE UPDATE ON run_events
BEGIN SELECT RAISE(ABORT, 'run_events is append-only'); END;

UPDATE workflow_versions SET
    registered_by = (SELECT issuer FROM spe_migration_context) || ' ' || registered_by,
    approved_by = (SELECT issuer FROM spe_migration_context) || ' ' || approved_by,
    retired_by = (SELECT issuer FROM spe_migration_context) || ' ' || retired_by;

UPDATE datasets SET created_by = (SELECT issuer FROM spe_migration_context) || ' ' || created_by;

DROP TRIGGER registry_events_no_update;
UPDATE registry_events SET actor = (SELECT issuer FROM spe_migration_context) || ' ' || actor;
CREATE TRIGGER registry_events_no_update BEFORE UPDATE ON registry_events
BEGIN SELECT RAISE(ABORT, 'registry_events is append-only'); END;

UPDATE run_shares SET
    principal = (SELECT issuer FROM spe_migration_context) || ' ' || principal,
    created_by = (SELECT issuer FROM spe_migration_context) || ' ' || created_by;

DROP TRIGGER result_links_no_update;
UPDATE result_links SET issued_to = (SELECT issuer FROM spe_migration_context) || ' ' || issued_to;
CREATE TRIGGER result_links_no_update BEFORE UPDATE ON result_links
BEGIN SELECT RAISE(ABORT, 'result_links is append-only'); END;
