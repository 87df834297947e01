-- 0007: tiles. How each collection is cut into vector tiles (fields per zoom, generalisation, map
-- style), which rasters are published as raster tiles (colour map, rescaling), and the change log
-- that invalidates the server-side tile cache when data under a tile changes.

-- Vector tiles of a collection (gis_meta.collections.min_zoom/max_zoom bound the zooms):
--   {"fields": {"column": min_zoom, ...}  public fields in the tiles and from which zoom
--                                          (absent: every public field at every zoom),
--    "min_px": 0.5,                        drop features whose bounding box is smaller than this
--                                          many screen pixels (256-px tiles) on both axes,
--    "simplify_px": 0.5,                   simplification tolerance, in screen pixels (lines, polygons),
--    "basemap": true,                      in the multi-layer tiles at /tiles by default,
--    "style": {...}}                       how the web map draws it (type, colours, legend)
ALTER TABLE gis_meta.collections ADD COLUMN tiles jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(tiles) = 'object');

UPDATE gis_meta.collections SET tiles = '{
  "fields": {"land_use": 12, "commune_code": 15, "sheet_no": 15, "parcel_no": 15,
             "legal_area_m2": 17, "address": 17, "owner_type": 17, "valid_from": 17},
  "min_px": 1, "simplify_px": 0, "basemap": true,
  "style": {"type": "fill", "by": "land_use", "outline": "#5b4a3a", "opacity": 0.55,
            "colors": {"ODT": "#e8a27c", "CLN": "#8fcf7a", "TMD": "#d98ec8", "DGD": "#7aa6e2",
                       "DYT": "#e27a7a", "DGT": "#bdbdbd", "SON": "#7ac0e2", "DKV": "#a6d96a",
                       "TON": "#c2a5cf"},
            "default": "#e4d4b8"}}'::jsonb
WHERE id = 'parcels';
UPDATE gis_meta.collections SET tiles = '{"fields": {"land_use": 12, "commune_code": 15, "sheet_no": 15,
  "parcel_no": 15, "valid_from": 15, "valid_to": 15}, "min_px": 0.5, "basemap": false,
  "style": {"type": "line", "color": "#7a5c3e", "width": 0.6}}'::jsonb
WHERE id = 'parcel-history';
UPDATE gis_meta.collections SET tiles = '{"fields": {"code": 0, "name": 0, "population": 10},
  "simplify_px": 0.5, "basemap": true,
  "style": {"type": "line", "color": "#6a3d9a", "width": 1.5}}'::jsonb
WHERE id IN ('wards-2025', 'wards-2019');
UPDATE gis_meta.collections SET tiles = '{"fields": {"code": 0, "name": 0, "population": 10},
  "simplify_px": 0.5, "basemap": false, "style": {"type": "line", "color": "#333333", "width": 2.5}}'::jsonb
WHERE id = 'districts-2019';
UPDATE gis_meta.collections SET tiles = '{"min_px": 0.5, "basemap": true,
  "style": {"type": "fill", "color": "#fdbf6f", "outline": "#e08214", "opacity": 0.35}}'::jsonb
WHERE relation_schema = 'planning';
UPDATE gis_meta.collections SET tiles = '{"min_px": 0.5, "basemap": true,
  "style": {"type": "fill", "color": "#9e9ac8", "outline": "#54278f", "opacity": 0.8}}'::jsonb
WHERE id = 'buildings';
UPDATE gis_meta.collections SET tiles = '{"fields": {"name": 10, "road_class": 10, "lanes": 14, "width_m": 14,
  "oneway": 14, "maxspeed_kmh": 14}, "simplify_px": 0.5, "basemap": true,
  "style": {"type": "line", "color": "#e31a1c", "width": 2}}'::jsonb
WHERE id = 'roads';
UPDATE gis_meta.collections SET tiles = '{"fields": {"name": 10, "category": 10, "subtype": 14, "capacity": 14,
  "address": 14}, "basemap": true,
  "style": {"type": "circle", "by": "category", "radius": 5, "outline": "#ffffff",
            "colors": {"health": "#e7298a", "education": "#1f78b4", "market": "#ff7f00"},
            "default": "#33a02c"}}'::jsonb
WHERE id = 'poi';

-- Size of a geometry's bounding box (read from the geometry's header: no decoding), for the
-- generalisation of tiles: features under a pixel are left out of low-zoom tiles.
CREATE FUNCTION gis_meta.bbox_width(g geometry) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ST_XMax(Box2D(g)) - ST_XMin(Box2D(g)) $$;
CREATE FUNCTION gis_meta.bbox_height(g geometry) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ST_YMax(Box2D(g)) - ST_YMin(Box2D(g)) $$;
CREATE FUNCTION gis_meta.bbox_area(g geometry) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (ST_XMax(Box2D(g)) - ST_XMin(Box2D(g))) * (ST_YMax(Box2D(g)) - ST_YMin(Box2D(g))) $$;

-- Overview index of the parcels: only parcels big enough to be drawn at zoom 13 and below (a bounding
-- box of at least one square pixel of a 256-px zoom-13 tile, at any latitude up to 60 degrees), so
-- low-zoom tiles read a few rows instead of every parcel of a district. Small: few parcels qualify.
CREATE INDEX parcels_tiles_overview_idx ON cadastral.parcels USING gist (geom)
    WHERE gis_meta.bbox_area(geom) >= 1.47e-8;

-- Raster layers: a STAC collection of the raster catalog (schema raster) rendered as tiles.
CREATE TABLE gis_meta.raster_layers (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$'),
    collection  text NOT NULL,               -- raster.collections id (the items may come later)
    item        text,                        -- one item id; NULL: the collection's latest item
    band        integer NOT NULL DEFAULT 1 CHECK (band >= 1),
    colormap    text NOT NULL DEFAULT 'viridis',  -- a rio-tiler colour map name
    rescale     double precision[] CHECK (rescale IS NULL OR cardinality(rescale) = 2),
    title_vi    text NOT NULL,
    title_en    text NOT NULL,
    unit        text,
    attribution text,
    min_zoom    integer NOT NULL DEFAULT 0,
    max_zoom    integer NOT NULL DEFAULT 18,
    public      boolean NOT NULL DEFAULT true,
    sort_order  integer NOT NULL DEFAULT 100
);
INSERT INTO gis_meta.raster_layers (id, collection, item, band, colormap, rescale, title_vi, title_en, unit,
                                    attribution, min_zoom, max_zoom, sort_order) VALUES
 ('population', 'worldpop', NULL, 1, 'ylorrd', '{0, 40000}', 'Dân số (WorldPop, 1 km)',
  'Population (WorldPop, 1 km)', 'persons/km2', 'WorldPop (CC BY 4.0)', 0, 16, 10);

-- The tile cache's change log: one row per changed area of a tracked table, written by statement
-- triggers in the writing transaction. xid is that transaction: the tile server compares it with
-- the snapshot a cached tile was rendered under, so a tile is re-rendered exactly when a change it
-- did not see touches its area (NULL box: anywhere).
CREATE TABLE gis_meta.tile_changes (
    change_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_schema text NOT NULL,
    table_name   text NOT NULL,
    op           text NOT NULL,
    min_x double precision, min_y double precision, max_x double precision, max_y double precision,
    changed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tile_changes_xid_idx ON gis_meta.tile_changes (xid);

-- Changed rows are grouped in cells of 1/50 degree (about 2 km): scattered edits invalidate the
-- tiles around each, not the box around all of them.
CREATE FUNCTION gis_meta.note_tile_changes() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    g text := TG_ARGV[0];
    src text;
BEGIN
    IF TG_OP = 'TRUNCATE' OR g IS NULL THEN
        INSERT INTO gis_meta.tile_changes (table_schema, table_name, op)
        VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP);
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        src := format('SELECT %I AS g FROM new_rows', g);
    ELSIF TG_OP = 'DELETE' THEN
        src := format('SELECT %I AS g FROM old_rows', g);
    ELSE
        src := format('SELECT %1$I AS g FROM new_rows UNION ALL SELECT %1$I FROM old_rows', g);
    END IF;
    EXECUTE 'INSERT INTO gis_meta.tile_changes (table_schema, table_name, op, min_x, min_y, max_x, max_y) '
         || 'SELECT $1, $2, $3, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ('
         || '  SELECT ST_Extent(g) AS e FROM (SELECT ST_Transform(g, 4326) AS g FROM (' || src || ') s0'
         || '    WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)) s'
         || '  GROUP BY floor(ST_XMin(g) * 50), floor(ST_YMin(g) * 50)) c'
        USING TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
    RETURN NULL;
END
$fn$;

-- Track a table: its writes are logged for the tile cache. geom_column NULL: a table without
-- geometry (any write changes every tile of the layers that use it).
CREATE FUNCTION gis_meta.track_tile_changes(tbl regclass, geom_column text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    arg text := CASE WHEN geom_column IS NULL THEN '' ELSE quote_literal(geom_column) END;
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS tile_changes_ins ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS tile_changes_upd ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS tile_changes_del ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS tile_changes_trunc ON %s', tbl);
    IF geom_column IS NULL THEN
        EXECUTE format('CREATE TRIGGER tile_changes_ins AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION gis_meta.note_tile_changes()', tbl);
    ELSE
        EXECUTE format('CREATE TRIGGER tile_changes_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION gis_meta.note_tile_changes(%s)', tbl, arg);
        EXECUTE format('CREATE TRIGGER tile_changes_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows '
                       'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gis_meta.note_tile_changes(%s)',
                       tbl, arg);
        EXECUTE format('CREATE TRIGGER tile_changes_del AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION gis_meta.note_tile_changes(%s)', tbl, arg);
    END IF;
    EXECUTE format('CREATE TRIGGER tile_changes_trunc AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION gis_meta.note_tile_changes()', tbl);
END
$fn$;

SELECT gis_meta.track_tile_changes('admin.units', 'geom');
SELECT gis_meta.track_tile_changes('cadastral.parcels', 'geom');
SELECT gis_meta.track_tile_changes('planning.lots', 'geom');
SELECT gis_meta.track_tile_changes('planning.plans', NULL);
SELECT gis_meta.track_tile_changes('city.buildings', 'geom');
SELECT gis_meta.track_tile_changes('city.roads', 'geom');
SELECT gis_meta.track_tile_changes('city.poi', 'geom');
