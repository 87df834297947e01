-- 0009: open-data downloads. One row per file built by `gis publish` (gis/downloads.py) under
-- <data_dir>/downloads/<collection_id>/<filename>: what it is, its checksum, and the version of the data it
-- was built from (so the publishing job rebuilds only what changed). A row is written only after its
-- file is complete and renamed into place; a failed build leaves the previous row and file as they were.
CREATE TABLE gis_meta.downloads (
    collection_id text NOT NULL REFERENCES gis_meta.collections (id) ON DELETE CASCADE ON UPDATE CASCADE,
    format        text NOT NULL CHECK (format IN ('gpkg', 'parquet', 'fgb', 'csv', 'geojson', 'geojsonseq',
                                                  'shp.zip', 'pmtiles', 'mbtiles', 'cog')),
    filename      text NOT NULL CHECK (filename ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
    media_type    text NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    built_at      timestamptz NOT NULL DEFAULT now(),
    data_version  text NOT NULL,
    feature_count bigint,
    seconds       double precision,
    PRIMARY KEY (collection_id, filename)
);
CREATE INDEX downloads_format_idx ON gis_meta.downloads (collection_id, format);
