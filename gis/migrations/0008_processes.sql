-- 0008: jobs of OGC API - Processes (gis.analysis.jobs).
--
-- One row per execution of an analysis (synchronous or not). The database is the only place a
-- job's status lives, so that every API worker process answers the same thing about it. A worker
-- runs a job while holding the session advisory lock (727000100, hashtext(job_id::text)): a job
-- 'running' whose lock nobody holds was interrupted (its server stopped) and is marked failed on
-- the next start-up.
--
-- The schema is not one the catalog watches (api.state reloads on writes to the schemas of
-- gis_meta.collections): progress updates do not reload the catalog. A successful job's result
-- is published as stats.job_<12 hex> (gis.analysis.output.write_table), which does.
CREATE SCHEMA IF NOT EXISTS processes;

CREATE TABLE processes.jobs (
    job_id            uuid PRIMARY KEY,
    process_id        text NOT NULL,                        -- gis.analysis.registry id
    status            text NOT NULL DEFAULT 'accepted'
                      CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
    mode              text NOT NULL DEFAULT 'async' CHECK (mode IN ('sync', 'async')),
    inputs            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(inputs) = 'object'),
    execution         jsonb NOT NULL DEFAULT '{}'::jsonb,   -- response and outputs asked for
    progress          smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    message           text,
    error_code        text,                                 -- gis.errors code of a failure
    error_status      smallint,                             -- its HTTP status
    created           timestamptz NOT NULL DEFAULT now(),
    started           timestamptz,
    finished          timestamptz,
    updated           timestamptz NOT NULL DEFAULT now(),
    runner            text,                                 -- host:pid of the worker that ran it
    result_dir        text,                                 -- folder of the result files
    result_formats    text[] NOT NULL DEFAULT '{}',         -- file names in it
    result_table      text,                                 -- stats.<name> when published
    result_collection text,                                 -- its gis_meta.collections id
    result_rows       bigint CHECK (result_rows >= 0),
    result_meta       jsonb NOT NULL DEFAULT '{}'::jsonb,   -- title, units, summary of the result
    CHECK (status <> 'successful' OR finished IS NOT NULL)
);
CREATE INDEX jobs_created_idx ON processes.jobs (created DESC, job_id);
CREATE INDEX jobs_open_idx ON processes.jobs (status) WHERE status IN ('accepted', 'running');
COMMENT ON TABLE processes.jobs IS
    'Executions of the analyses (OGC API - Processes jobs): status, progress and where the results are.';
