-- 0001: extensions, meta, ingest run log, administrative units.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE SCHEMA IF NOT EXISTS gis_meta;
CREATE TABLE gis_meta.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Every ingest job run: what was read, by whom, what happened.
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE ingest.runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text        NOT NULL,
    source_path  text        NOT NULL,
    source_layer text,
    checksum     text,                    -- sha256 of the source file(s)
    source_crs   text,
    mapping      text,
    options      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    os_user      text        NOT NULL DEFAULT current_user,
    db_user      text        NOT NULL DEFAULT current_user,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_s   double precision,
    outcome      text        NOT NULL CHECK (outcome IN ('loaded', 'unchanged', 'failed', 'interrupted')),
    n_read       bigint      NOT NULL DEFAULT 0,
    n_loaded     bigint      NOT NULL DEFAULT 0,   -- rows written (inserted + new versions)
    n_inserted   bigint      NOT NULL DEFAULT 0,
    n_updated    bigint      NOT NULL DEFAULT 0,
    n_unchanged  bigint      NOT NULL DEFAULT 0,
    n_retired    bigint      NOT NULL DEFAULT 0,
    n_repaired   bigint      NOT NULL DEFAULT 0,
    n_rejected   bigint      NOT NULL DEFAULT 0,
    rejects_path text,
    message      text
);
CREATE INDEX runs_kind_idx ON ingest.runs (kind, started_at DESC);

-- Administrative units. Validity is explicit: HCMC reorganised its wards on 2025-07-01 (districts
-- abolished, 168 communes and wards); units before that carry valid_to = '2025-07-01'.
CREATE SCHEMA IF NOT EXISTS admin;
CREATE TABLE admin.units (
    unit_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level         text    NOT NULL CHECK (level IN ('province', 'district', 'ward')),
    code          text    NOT NULL,          -- GSO administrative code (ma_xa / ma_huyen)
    name          text    NOT NULL,          -- Vietnamese, NFC
    name_en       text,
    unit_type     text,                      -- Phường, Xã, Đặc khu, Quận, Huyện, Thành phố
    parent_code   text,                      -- district of a pre-2025 ward; province of a 2025 ward
    population    bigint  CHECK (population >= 0),
    population_year integer,
    area_km2      double precision,
    valid_from    date    NOT NULL,
    valid_to      date,                      -- exclusive; NULL while in force
    source        text    NOT NULL,
    licence       text,
    run_id        bigint  REFERENCES ingest.runs (run_id),
    row_hash      text    NOT NULL,
    geom          geometry(MultiPolygon, 4326) NOT NULL,
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    UNIQUE (level, code, valid_from)
);
CREATE INDEX units_geom_idx ON admin.units USING gist (geom);
CREATE INDEX units_valid_idx ON admin.units (level, valid_from, valid_to);

CREATE VIEW admin.wards_2025 AS
    SELECT unit_id, code, name, name_en, unit_type, parent_code, population, population_year, area_km2,
           valid_from, valid_to, source, licence, geom
    FROM admin.units WHERE level = 'ward' AND valid_from >= DATE '2025-07-01';
CREATE VIEW admin.wards_2019 AS
    SELECT unit_id, code, name, name_en, unit_type, parent_code, population, population_year, area_km2,
           valid_from, valid_to, source, licence, geom
    FROM admin.units WHERE level = 'ward' AND valid_from < DATE '2025-07-01';
CREATE VIEW admin.districts AS
    SELECT unit_id, code, name, name_en, unit_type, population, population_year, area_km2,
           valid_from, valid_to, source, licence, geom
    FROM admin.units WHERE level = 'district';
