-- 0003: planning (zoning / land-use plan lots and their regulations) and city layers.
CREATE SCHEMA IF NOT EXISTS planning;

CREATE TABLE planning.plans (
    plan_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,          -- e.g. "QHPK 1/2000 Khu đô thị mới Thủ Thiêm"
    level         text,                          -- general, zoning (1/2000, 1/5000), detailed (1/500)
    decision_no   text,                          -- số quyết định phê duyệt
    approval_date date,
    authority     text,
    source        text,
    licence       text
);

CREATE TABLE planning.lots (
    lot_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id       bigint NOT NULL REFERENCES planning.plans (plan_id),
    lot_code      text   NOT NULL,               -- ký hiệu lô
    use_class     text   NOT NULL,               -- chức năng sử dụng đất (e.g. residential, mixed, green)
    use_code      text,                          -- the plan's own code (e.g. ODT, CC, CX)
    use_name      text,
    max_storeys   integer CHECK (max_storeys >= 0),
    max_height_m  double precision CHECK (max_height_m >= 0),
    max_far       double precision CHECK (max_far >= 0),          -- hệ số sử dụng đất
    max_coverage  double precision CHECK (max_coverage BETWEEN 0 AND 1),  -- mật độ xây dựng
    max_density_pph double precision CHECK (max_density_pph >= 0),  -- persons per hectare
    area_m2       double precision,
    run_id        bigint REFERENCES ingest.runs (run_id),
    row_hash      text   NOT NULL,
    geom          geometry(MultiPolygon, 4326) NOT NULL,
    UNIQUE (plan_id, lot_code)
);
CREATE INDEX lots_geom_idx ON planning.lots USING gist (geom);

CREATE SCHEMA IF NOT EXISTS city;

CREATE TABLE city.buildings (
    building_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    source_id   text NOT NULL,
    name        text,
    use         text,
    height_m    double precision CHECK (height_m >= 0),
    storeys     integer CHECK (storeys >= 0),
    licence     text,
    run_id      bigint REFERENCES ingest.runs (run_id),
    row_hash    text NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX buildings_geom_idx ON city.buildings USING gist (geom);

CREATE TABLE city.roads (
    road_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text NOT NULL,
    source_id  text NOT NULL,
    name       text,
    road_class text,                       -- motorway, trunk, primary, ... (OSM highway classes)
    lanes      integer CHECK (lanes > 0),
    width_m    double precision CHECK (width_m > 0),
    oneway     boolean,
    maxspeed_kmh double precision CHECK (maxspeed_kmh > 0),
    licence    text,
    run_id     bigint REFERENCES ingest.runs (run_id),
    row_hash   text NOT NULL,
    geom       geometry(MultiLineString, 4326) NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX roads_geom_idx ON city.roads USING gist (geom);

CREATE TABLE city.poi (
    poi_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source    text NOT NULL,
    source_id text NOT NULL,
    name      text,
    category  text NOT NULL,              -- hospital, clinic, school, university, market, ...
    subtype   text,
    capacity  integer CHECK (capacity >= 0),   -- beds, pupils, ... where known
    address   text,
    licence   text,
    run_id    bigint REFERENCES ingest.runs (run_id),
    row_hash  text NOT NULL,
    geom      geometry(Point, 4326) NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX poi_geom_idx ON city.poi USING gist (geom);
CREATE INDEX poi_category_idx ON city.poi (category);
