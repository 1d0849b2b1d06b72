-- Quota windows without counting (docs/ARCHITECTURE.md, "Hot paths"). A submission's quota check
-- counted the owner's runs of the last minute and day, a range of the runs index as long as the
-- window is full: the longest step of a submission's write transaction when one user submits
-- thousands. Each owner now has, per window length, the submissions of the newest fixed bucket
-- of that length and of the bucket before it. A window of that length ending now lies inside
-- those two buckets, so their sum bounds what it holds; the check counts the window exactly only
-- when the bound could exceed the limit (or the newest bucket is not the current one).
-- Counts only grow here: a deleted run leaves the bound above the truth, never below.
CREATE TABLE owner_submission_buckets (
    owner     TEXT NOT NULL,
    span_us   INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    runs      INTEGER NOT NULL,
    prev_runs INTEGER NOT NULL,
    PRIMARY KEY (owner, span_us)
);
INSERT INTO owner_submission_buckets (owner, span_us, bucket, runs, prev_runs)
    SELECT o.owner, o.span, o.last,
        (SELECT COUNT(*) FROM runs r WHERE r.owner = o.owner
            AND r.created_at >= o.last * o.span AND r.created_at < (o.last + 1) * o.span),
        (SELECT COUNT(*) FROM runs r WHERE r.owner = o.owner
            AND r.created_at >= (o.last - 1) * o.span AND r.created_at < o.last * o.span)
    FROM (SELECT runs.owner AS owner, s.span AS span, MAX(runs.created_at) / s.span AS last
          FROM runs, (SELECT 60000000 AS span UNION ALL SELECT 86400000000) AS s
          GROUP BY runs.owner, s.span) AS o;

-- A submission in the newest bucket adds to it; one in the next moves the newest to the one
-- before; one in the bucket before (a clock a little behind on another instance) adds there.
CREATE TRIGGER owner_submission_buckets_on_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO owner_submission_buckets (owner, span_us, bucket, runs, prev_runs)
        SELECT NEW.owner, s.span, NEW.created_at / s.span, 1, 0
        FROM (SELECT 60000000 AS span UNION ALL SELECT 86400000000) AS s WHERE true
        ON CONFLICT (owner, span_us) DO UPDATE SET
            prev_runs = CASE
                WHEN excluded.bucket = bucket THEN prev_runs
                WHEN excluded.bucket = bucket + 1 THEN runs
                WHEN excluded.bucket > bucket THEN 0
                WHEN excluded.bucket = bucket - 1 THEN prev_runs + 1
                ELSE prev_runs END,
            runs = CASE
                WHEN excluded.bucket = bucket THEN runs + 1
                WHEN excluded.bucket > bucket THEN 1
                ELSE runs END,
            bucket = MAX(bucket, excluded.bucket);
END;
