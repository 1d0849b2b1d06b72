-- Identity (GA4GH Passports). runs.access_visas: a JSON array, written once at submission, of
-- the visas that authorised the run's datasets: for each dataset that needs a visa, the
-- dataset id and the visa's iss, type, value, source, by, asserted and exp. Never the visa JWT.
-- NULL for runs that used no dataset needing a visa, or were accepted with `auth: disabled`.
ALTER TABLE runs ADD COLUMN access_visas TEXT;
