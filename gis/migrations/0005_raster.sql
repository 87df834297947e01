-- 0005: the raster catalog (STAC-shaped) and the schema of zonal statistics.
--
-- Pixels stay in Cloud-Optimised GeoTIFFs in the raster store (a folder, Settings.raster_dir);
-- PostGIS holds their footprints and metadata. One row of raster.items is one STAC Item with one
-- data asset (the COG); raster.stac_items / raster.stac_collections render the STAC JSON so that a
-- STAC API (or a Coverages API) can be served from these tables without another copy.
CREATE SCHEMA IF NOT EXISTS raster;
COMMENT ON SCHEMA raster IS 'Raster catalog: STAC collections and items; pixels live in COGs in the raster store.';

CREATE TABLE raster.collections (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    license     text NOT NULL DEFAULT 'other',        -- SPDX id or "other"
    keywords    text[] NOT NULL DEFAULT '{}',
    providers   jsonb NOT NULL DEFAULT '[]'::jsonb,    -- STAC providers
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb,    -- other STAC fields (summaries, item_assets, ...)
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE raster.items (
    collection     text NOT NULL REFERENCES raster.collections (id) ON UPDATE CASCADE,
    id             text NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    -- footprint of the grid (its outline reprojected with densified edges), lon/lat
    geom           geometry(Polygon, 4326) NOT NULL,
    -- STAC: either an instant (datetime) or an interval (start_datetime, end_datetime)
    datetime       timestamptz,
    start_datetime timestamptz,
    end_datetime   timestamptz,
    dt_start       timestamptz GENERATED ALWAYS AS (coalesce(start_datetime, datetime)) STORED,
    dt_end         timestamptz GENERATED ALWAYS AS (coalesce(end_datetime, datetime)) STORED,
    -- projection (STAC proj extension)
    epsg           integer,                     -- NULL for a CRS without an EPSG code
    crs_wkt        text NOT NULL,               -- WKT2 of the native CRS
    transform      double precision[] NOT NULL CHECK (cardinality(transform) = 6),  -- affine a,b,c,d,e,f
    width          integer NOT NULL CHECK (width > 0),
    height         integer NOT NULL CHECK (height > 0),
    resolution     double precision[] NOT NULL CHECK (cardinality(resolution) = 2),  -- x, y (CRS units)
    data_type      text NOT NULL,               -- numpy/GDAL name: uint16, float32, ...
    -- [{"name", "description", "eo:common_name", "unit", "raster:scale", "raster:offset", "nodata",
    --   "data_type", "datetime" (bands that are time steps)}], in band order (STAC 1.1 "bands")
    bands          jsonb NOT NULL CHECK (jsonb_typeof(bands) = 'array' AND jsonb_array_length(bands) > 0),
    sensor         text,                        -- gis.raster.sensors profile, if declared
    checksum       text NOT NULL,               -- sha256 of the source file
    source_path    text NOT NULL,
    asset_href     text NOT NULL UNIQUE,        -- the COG, relative to the raster store
    asset_size     bigint NOT NULL CHECK (asset_size > 0),
    asset_checksum text NOT NULL,               -- sha256 of the COG
    properties     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- other STAC properties (cube:dimensions, ...)
    row_hash       text NOT NULL,               -- source checksum + everything the job derived
    run_id         bigint REFERENCES ingest.runs (run_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, id),
    CHECK ((datetime IS NOT NULL AND start_datetime IS NULL AND end_datetime IS NULL)
           OR (datetime IS NULL AND start_datetime IS NOT NULL AND end_datetime IS NOT NULL
               AND start_datetime <= end_datetime))
);
CREATE INDEX items_geom_idx ON raster.items USING gist (geom);
CREATE INDEX items_time_idx ON raster.items (dt_start, dt_end);
CREATE INDEX items_collection_time_idx ON raster.items (collection, dt_start DESC);
CREATE INDEX items_checksum_idx ON raster.items (checksum);

CREATE FUNCTION raster.rfc3339(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- The STAC Item of each row. Links are left to the API (self, parent, collection, root depend on
-- its base URL) and the asset href is relative to the raster store: the API prefixes its own
-- asset route (or an object-store URL) when it serves the item.
CREATE VIEW raster.stac_items AS
SELECT i.collection, i.id, i.geom, i.dt_start, i.dt_end,
    jsonb_build_object(
        'type', 'Feature',
        'stac_version', '1.1.0',
        'stac_extensions', jsonb_build_array(
            'https://stac-extensions.github.io/projection/v2.0.0/schema.json',
            'https://stac-extensions.github.io/raster/v2.0.0/schema.json',
            'https://stac-extensions.github.io/eo/v2.0.0/schema.json',
            'https://stac-extensions.github.io/file/v2.1.0/schema.json'),
        'id', i.id,
        'collection', i.collection,
        'geometry', ST_AsGeoJSON(i.geom, 9)::jsonb,
        'bbox', jsonb_build_array(ST_XMin(i.geom), ST_YMin(i.geom), ST_XMax(i.geom), ST_YMax(i.geom)),
        'properties', i.properties || jsonb_strip_nulls(jsonb_build_object(
            'datetime', raster.rfc3339(i.datetime),
            'start_datetime', raster.rfc3339(i.start_datetime),
            'end_datetime', raster.rfc3339(i.end_datetime),
            'created', raster.rfc3339(i.created_at),
            'updated', raster.rfc3339(i.updated_at),
            'proj:code', CASE WHEN i.epsg IS NOT NULL THEN 'EPSG:' || i.epsg END,
            'proj:wkt2', CASE WHEN i.epsg IS NULL THEN i.crs_wkt END,
            'proj:shape', jsonb_build_array(i.height, i.width),
            'proj:transform', to_jsonb(i.transform),
            'gsd', CASE WHEN i.epsg IS DISTINCT FROM 4326 THEN abs(i.resolution[1]) END,
            'instruments', CASE WHEN i.sensor IS NOT NULL THEN jsonb_build_array(i.sensor) END))
            -- STAC requires "datetime": null when an interval is given
            || CASE WHEN i.datetime IS NULL THEN '{"datetime": null}'::jsonb ELSE '{}'::jsonb END,
        'links', '[]'::jsonb,
        'assets', jsonb_build_object('data', jsonb_build_object(
            'href', i.asset_href,
            'type', 'image/tiff; application=geotiff; profile=cloud-optimized',
            'roles', jsonb_build_array('data'),
            'file:size', i.asset_size,
            'file:checksum', '1220' || i.asset_checksum,   -- multihash: sha2-256
            'bands', i.bands))
    ) AS content
FROM raster.items i;

-- The STAC Collection of each row, with its extent computed from its items.
CREATE VIEW raster.stac_collections AS
SELECT c.id,
    jsonb_build_object(
        'type', 'Collection',
        'stac_version', '1.1.0',
        'id', c.id,
        'title', c.title,
        'description', c.description,
        'license', c.license,
        'keywords', to_jsonb(c.keywords),
        'providers', c.providers,
        'extent', jsonb_build_object(
            'spatial', jsonb_build_object('bbox', CASE WHEN e.box IS NULL THEN '[[-180, -90, 180, 90]]'::jsonb
                ELSE jsonb_build_array(jsonb_build_array(ST_XMin(e.box), ST_YMin(e.box),
                                                         ST_XMax(e.box), ST_YMax(e.box))) END),
            'temporal', jsonb_build_object('interval', jsonb_build_array(jsonb_build_array(
                raster.rfc3339(e.t0), raster.rfc3339(e.t1))))),
        'links', '[]'::jsonb
    ) || c.properties AS content,
    e.n_items
FROM raster.collections c
LEFT JOIN LATERAL (
    SELECT ST_Extent(i.geom) AS box, min(i.dt_start) AS t0, max(i.dt_end) AS t1, count(*) AS n_items
    FROM raster.items i WHERE i.collection = c.id
) e ON true;

-- Zonal statistics written back by gis.raster.zonal: one table stats.zonal_<name> per result,
-- replaced atomically; this registry says what each table was computed from.
CREATE SCHEMA IF NOT EXISTS stats;
COMMENT ON SCHEMA stats IS 'Derived statistics (zonal statistics of rasters, change summaries).';
CREATE TABLE stats.tables (
    table_name  text PRIMARY KEY,                -- relation name in schema stats
    kind        text NOT NULL CHECK (kind IN ('zonal', 'change-polygons')),
    collection  text,
    item        text,
    item_b      text,                            -- second item of a change
    bands       integer[],
    zones       text,                            -- zone layer (preset name or relation)
    n_rows      bigint NOT NULL,
    statistics  text[] NOT NULL DEFAULT '{}',
    options     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    duration_s  double precision
);
