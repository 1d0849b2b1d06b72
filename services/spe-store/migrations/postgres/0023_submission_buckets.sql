-- Quota windows without counting (docs/ARCHITECTURE.md, "Hot paths"). A submission's quota check
-- counted the owner's runs of the last minute and day, a range of the runs index as long as the
-- window is full: the longest step of a submission's write transaction when one user submits
-- thousands. Each owner now has, per window length, the submissions of the newest fixed bucket
-- of that length and of the bucket before it. A window of that length ending now lies inside
-- those two buckets, so their sum bounds what it holds; the check counts the window exactly only
-- when the bound could exceed the limit (or the newest bucket is not the current one).
-- Counts only grow here: a deleted run leaves the bound above the truth, never below. The
-- owner's rows add no contention: submissions of one owner queue on its advisory lock already.
CREATE TABLE owner_submission_buckets (
    owner     TEXT NOT NULL,
    span_us   BIGINT NOT NULL,
    bucket    BIGINT NOT NULL,
    runs      BIGINT NOT NULL,
    prev_runs BIGINT NOT NULL,
    PRIMARY KEY (owner, span_us)
);
INSERT INTO owner_submission_buckets (owner, span_us, bucket, runs, prev_runs)
    SELECT o.owner, o.span, o.last,
        (SELECT COUNT(*) FROM runs r WHERE r.owner = o.owner
            AND r.created_at >= o.last * o.span AND r.created_at < (o.last + 1) * o.span),
        (SELECT COUNT(*) FROM runs r WHERE r.owner = o.owner
            AND r.created_at >= (o.last - 1) * o.span AND r.created_at < o.last * o.span)
    FROM (SELECT runs.owner AS owner, s.span AS span, MAX(runs.created_at) / s.span AS last
          FROM runs, (VALUES (60000000::BIGINT), (86400000000::BIGINT)) AS s(span)
          GROUP BY runs.owner, s.span) AS o;

-- A submission in the newest bucket adds to it; one in the next moves the newest to the one
-- before; one in the bucket before (a clock a little behind on another instance) adds there.
CREATE FUNCTION owner_submission_buckets_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO owner_submission_buckets AS b (owner, span_us, bucket, runs, prev_runs)
        SELECT NEW.owner, s.span, NEW.created_at / s.span, 1, 0
        FROM (VALUES (60000000::BIGINT), (86400000000::BIGINT)) AS s(span)
        ON CONFLICT (owner, span_us) DO UPDATE SET
            prev_runs = CASE
                WHEN excluded.bucket = b.bucket THEN b.prev_runs
                WHEN excluded.bucket = b.bucket + 1 THEN b.runs
                WHEN excluded.bucket > b.bucket THEN 0
                WHEN excluded.bucket = b.bucket - 1 THEN b.prev_runs + 1
                ELSE b.prev_runs END,
            runs = CASE
                WHEN excluded.bucket = b.bucket THEN b.runs + 1
                WHEN excluded.bucket > b.bucket THEN 1
                ELSE b.runs END,
            bucket = GREATEST(b.bucket, excluded.bucket);
    RETURN NULL;
END;
$$;
CREATE TRIGGER owner_submission_buckets_on_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION owner_submission_buckets_keep();
