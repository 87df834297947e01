-- 0006: outputs of the analyses (gis.analysis) written to PostGIS.
--
-- `gis stats ... --table NAME` writes stats.NAME in one transaction and registers it in
-- gis_meta.collections (so the API publishes it) and here (what computed it, with which
-- parameters). Migration 0005 may create the schema too: both use IF NOT EXISTS.
CREATE SCHEMA IF NOT EXISTS stats;

CREATE TABLE stats.analysis_outputs (
    table_name    text PRIMARY KEY CHECK (table_name ~ '^[a-z][a-z0-9_]{0,62}$'),  -- relation in schema stats
    analysis      text NOT NULL,                 -- registry id, e.g. planning.land-use
    collection_id text,                          -- gis_meta.collections id
    title         text NOT NULL,
    n_rows        bigint NOT NULL CHECK (n_rows >= 0),
    parameters    jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- units, assumptions, totals (the result's attrs)
    os_user       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    duration_s    double precision
);
COMMENT ON TABLE stats.analysis_outputs IS 'Tables of schema stats written by gis.analysis, with the parameters and metadata of each.';
