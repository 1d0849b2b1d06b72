-- Where a run's owner hears about it: the address from their token's `email` claim when they
-- submitted it, if there was one (docs/notifications.md). Kept apart from `runs`, which needs
-- none; an address is personal data, never put in a message or a log.
CREATE TABLE run_contacts (
    run_id TEXT PRIMARY KEY NOT NULL,
    email  TEXT NOT NULL
);
