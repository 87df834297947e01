"""Open-data downloads: every public collection as files in the formats people use.

A download is built from ONE consistent snapshot of the data (a REPEATABLE READ transaction), streamed
in Arrow record batches (bounded memory whatever the layer's size; the database read runs in a thread a
few batches ahead of the writer, so reading and writing overlap), written to a temporary file beside
the target and renamed into place only when complete, with a ``.sha256`` checksum file. A failed or
interrupted build leaves the previous file served and no partial file.

Only the catalog's public fields (:mod:`gis.catalog`) are ever read: the export's SELECT names them, so
an internal column cannot reach a file. Built files are registered in ``gis_meta.downloads`` (migration
0009) with the version of the data they were built from; :func:`publish` rebuilds only what changed.
Nothing here knows about HTTP: the API serves the registered files (``api/downloads.py``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from gis import catalog as gcat
from gis.errors import GisError, InputError, NotFoundError


@dataclass(frozen=True)
class Format:
    """A download format: short name, file suffix, media type, title in English and in Vietnamese."""

    name: str
    suffix: str
    media_type: str
    title: str
    title_vi: str = ""

    def title_in(self, lang: str) -> str:
        """The title in ``lang`` (``"vi"`` or ``"en"``)."""
        return self.title_vi if lang == "vi" and self.title_vi else self.title


#: the download formats, by short name (the ``--format`` values), in the order they are listed
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("gpkg", ".gpkg", "application/geopackage+sqlite3", "GeoPackage", "GeoPackage"),
    Format("parquet", ".parquet", "application/vnd.apache.parquet", "GeoParquet 1.1", "GeoParquet 1.1"),
    Format("fgb", ".fgb", "application/flatgeobuf", "FlatGeobuf (with spatial index)",
           "FlatGeobuf (có chỉ mục không gian)"),
    Format("csv", ".csv", "text/csv; charset=utf-8", "CSV (geometry as WKT)", "CSV (hình học dạng WKT)"),
    Format("geojson", ".geojson", "application/geo+json", "GeoJSON", "GeoJSON"),
    Format("geojsonseq", ".geojsonl", "application/geo+json-seq",
           "GeoJSON, one feature per line (GeoJSONSeq)", "GeoJSON, mỗi dòng một đối tượng (GeoJSONSeq)"),
    Format("shp.zip", ".shp.zip", "application/zip", "Shapefile (zipped, UTF-8 .cpg)",
           "Shapefile (nén zip, .cpg UTF-8)"),
    Format("pmtiles", ".pmtiles", "application/vnd.pmtiles", "PMTiles vector tiles", "Gói tile vector PMTiles"),
    Format("mbtiles", ".mbtiles", "application/vnd.mapbox-vector-tile+sqlite3", "MBTiles vector tiles",
           "Gói tile vector MBTiles"),
    Format("cog", ".tif", "image/tiff; application=geotiff; profile=cloud-optimized",
           "Cloud-Optimised GeoTIFF", "GeoTIFF tối ưu cho đám mây (COG)"),
)}

#: formats built by :func:`publish` by default (COGs are already files of the raster store)
VECTOR_FORMATS = ("gpkg", "parquet", "fgb", "csv", "geojson", "geojsonseq", "shp.zip", "pmtiles", "mbtiles")


@dataclass(frozen=True)
class DownloadFile:
    """A published download: one built file of one public collection.

    Attributes
    ----------
    collection_id : str
        The collection (a feature collection of the catalog, or a raster layer for ``cog``).
    format : str
        Short format name, a key of :data:`FORMATS`.
    media_type : str
        IANA media type of the file.
    filename : str
        File name (no folder), unique within the collection.
    size : int
        Size in bytes.
    sha256 : str
        Hex SHA-256 of the file's bytes (also in ``<filename>.sha256`` beside it).
    built_at : datetime
        When the file was built (timezone-aware).
    feature_count : int or None
        Features in the file (None for tile packages and rasters).
    """

    collection_id: str
    format: str
    media_type: str
    filename: str
    size: int
    sha256: str
    built_at: datetime
    feature_count: int | None

    @property
    def path(self) -> str:
        """The URL path of the file under the API root."""
        return f"/downloads/{self.collection_id}/{self.filename}"

    @property
    def title(self) -> str:
        """A human title of the format (``"GeoPackage"``...)."""
        return self.title_in("en")

    def title_in(self, lang: str) -> str:
        """The title of the format in ``lang`` (``"vi"`` or ``"en"``)."""
        fmt = FORMATS.get(self.format)
        return fmt.title_in(lang) if fmt else self.format


PUBLISHED_SQL = """
SELECT d.collection_id, d.format, d.media_type, d.filename, d.size, d.sha256, d.built_at, d.feature_count
FROM gis_meta.downloads d
JOIN gis_meta.collections c ON c.id = d.collection_id
WHERE c.public AND (%(cid)s::text IS NULL OR d.collection_id = %(cid)s)
ORDER BY c.sort_order, c.id, array_position(%(order)s::text[], d.format), d.filename
"""

COG_SQL = """
SELECT l.id, i.id, i.asset_size, i.asset_checksum, i.updated_at
FROM gis_meta.raster_layers l
JOIN raster.items i ON i.collection = l.collection AND (l.item IS NULL OR i.id = l.item)
WHERE l.public AND (%(cid)s::text IS NULL OR l.id = %(cid)s)
ORDER BY l.sort_order, l.id, i.dt_start DESC NULLS LAST, i.id
"""


def published(conn: psycopg.Connection, collection_id: str | None = None) -> list[DownloadFile]:
    """The downloads of the public collections, as registered by the last successful builds.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection (autocommit or not; nothing is written).
    collection_id : str, optional
        Only this collection's downloads.

    Returns
    -------
    list of DownloadFile
        In catalog order, then format order. Raster layers' COGs (the raster store's files) are listed
        as format ``cog``. Empty on a database without migration 0009.
    """
    exists = conn.execute(REGISTRY_EXISTS_SQL).fetchone()[0]
    if not exists:
        return []
    params = published_params(collection_id)
    return files_from_rows(conn.execute(PUBLISHED_SQL, params).fetchall(),
                           conn.execute(COG_SQL, params).fetchall())


REGISTRY_EXISTS_SQL = "SELECT to_regclass('gis_meta.downloads') IS NOT NULL"


def published_params(collection_id: str | None = None) -> dict:
    """The parameters of :data:`PUBLISHED_SQL` and :data:`COG_SQL` (for callers with their own driver)."""
    return {"cid": collection_id, "order": list(FORMATS)}


def files_from_rows(rows: list, cog_rows: list) -> list[DownloadFile]:
    """:class:`DownloadFile` s from the rows of :data:`PUBLISHED_SQL` and :data:`COG_SQL`."""
    out = [DownloadFile(*row) for row in rows]
    cog = FORMATS["cog"]
    for layer_id, item_id, size, checksum, updated in cog_rows:
        out.append(DownloadFile(layer_id, "cog", cog.media_type, f"{item_id}{cog.suffix}", int(size),
                                checksum, updated, None))
    return out


# ------------------------------------------------------------------------------------------------
# building files
# ------------------------------------------------------------------------------------------------

#: bump when an exporter's output changes: `gis publish` then rebuilds every download
EXPORTER_VERSION = 2  # 2: ISO 8601 dates in CSV
#: rows per Parquet row group (the bbox covering columns' statistics prune per group)
PARQUET_ROW_GROUP = 65_536
#: name of the geometry column in the files
GEOMETRY = "geometry"
#: the bbox covering column of GeoParquet 1.1
BBOX = "bbox"

#: a tile packager, given by the composition root (the CLI): (dsn, collection_id, format, out) -> None.
#: ``gis`` does not import ``tiles``; the CLI passes :func:`tiles.export.export` wrapped in one of these.
TilePackager = Callable[[str, str, str, Path], None]

#: PostgreSQL type -> how it is selected (kept as is, or cast to a type every format has)
_KEEP = {"text", "varchar", "int2", "int4", "int8", "float4", "float8", "bool", "date", "timestamptz",
         "timestamp"}
_CAST = {"numeric": "float8", "bpchar": "text"}

#: (GDAL driver, layer creation options) of the formats written through OGR (pyogrio)
_OGR = {
    "gpkg": ("GPKG", {"SPATIAL_INDEX": "YES"}),
    "fgb": ("FlatGeobuf", {"SPATIAL_INDEX": "YES"}),
    "csv": ("CSV", {"GEOMETRY": "AS_WKT", "SEPARATOR": "COMMA"}),
    "geojson": ("GeoJSON", {"RFC7946": "YES"}),
    "geojsonseq": ("GeoJSONSeq", {"RS": "NO"}),
    "shp.zip": ("ESRI Shapefile", {}),
}
TILE_FORMATS = ("pmtiles", "mbtiles")


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote."""

    collection_id: str
    format: str
    path: Path
    size: int
    sha256: str
    feature_count: int | None
    data_version: str
    seconds: float
    built: bool = True  # False: the download was current, nothing was written

    def summary(self) -> str:
        """One line for the CLI."""
        if not self.built:
            return f"{self.collection_id} {self.format}: current ({self.path.name}), not rebuilt."
        count = "" if self.feature_count is None else f"{self.feature_count} features, "
        rate = (f", {self.feature_count / self.seconds:,.0f} features/s"
                if self.feature_count and self.seconds > 0 else "")
        return (f"{self.collection_id} {self.format}: {count}{self.size / 1e6:.1f} MB to {self.path} "
                f"in {self.seconds:.1f} s{rate}.")


def downloads_root(data_dir: Path) -> Path:
    """The folder of the published downloads: ``data_dir / "downloads"``."""
    return Path(data_dir) / "downloads"


def check_format(fmt: str) -> Format:
    """The format called ``fmt`` (a short name such as ``gpkg``); :class:`InputError` otherwise."""
    aliases = {"geoparquet": "parquet", "flatgeobuf": "fgb", "geopackage": "gpkg", "shp": "shp.zip",
               "shapefile": "shp.zip", "ndjson": "geojsonseq", "geojsonl": "geojsonseq", "tif": "cog"}
    name = aliases.get(str(fmt).lower(), str(fmt).lower())
    if name not in FORMATS:
        raise InputError(f"--format {fmt!r} is not a download format; use one of: {', '.join(FORMATS)}.")
    return FORMATS[name]


def filename(collection_id: str, fmt: str) -> str:
    """The file name of a collection's download in format ``fmt`` (``parcels.gpkg``...)."""
    return f"{collection_id}{check_format(fmt).suffix}"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# --- one consistent snapshot -----------------------------------------------------------------
class ReadSnapshot:
    """One REPEATABLE READ snapshot of the database that exports read from.

    A psycopg connection holds a read-only REPEATABLE READ transaction (the catalog, the data version
    and the feature counts are read in it) and exports its snapshot; each Arrow stream is read on an
    ADBC connection that imports that same snapshot (``SET TRANSACTION SNAPSHOT``), so every file built
    inside one ``with`` block shows the data of one moment, never half old, half new.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __enter__(self) -> ReadSnapshot:  # noqa: PYI034 - the class is not subclassed
        from gis.db import connect

        self.conn = connect(self.dsn)
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        self.conn.execute("SET TimeZone = 'UTC'")
        self.catalog = gcat.load_catalog(self.conn)
        self.snapshot_id = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        self._adbc: list = []
        return self

    def __exit__(self, *exc) -> None:
        for c in self._adbc:
            try:
                c.close()
            except Exception:  # noqa: BLE001, S110 - a broken stream is already being reported
                pass
        self.conn.rollback()
        self.conn.close()

    def collection(self, collection_id: str) -> gcat.Collection:
        """A public collection; :class:`NotFoundError` (naming the public ones) otherwise."""
        coll = self.catalog.get(collection_id)
        if coll is None:
            private = self.conn.execute("SELECT NOT public FROM gis_meta.collections WHERE id = %s",
                                        (collection_id,)).fetchone()
            if private and private[0]:
                raise NotFoundError(f"Collection {collection_id!r} is not public: it has no downloads.")
            gcat.get_collection(self.catalog, collection_id)  # raises, naming the public collections
        return coll

    def stream(self, query: sql.Composable):
        """A ``pyarrow.RecordBatchReader`` of ``query`` read in this snapshot (streamed, bounded memory).

        Read by ADBC's PostgreSQL driver (binary COPY decoded into Arrow), through the driver manager's
        own API: its DB-API module imports ``pyarrow.dataset`` and with it pandas (0.3 s per export).
        """
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa

        text = query.as_string(self.conn)
        try:
            db = adbc_driver_postgresql.connect(self.dsn or "postgresql://")
            self._adbc.append(db)
            conn = adbc.AdbcConnection(db, **{"adbc.connection.autocommit": "false"})
        except Exception as exc:  # noqa: BLE001 - any driver error: say it without internals
            raise GisError(f"Cannot open the export connection to the database: {_first_line(exc)}") from None
        self._adbc.insert(0, conn)
        stmt = adbc.AdbcStatement(conn)
        self._adbc.insert(0, stmt)  # the stream lives as long as its statement: closed first, at the end
        settings = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    f"SET TRANSACTION SNAPSHOT '{self.snapshot_id}'"]  # an id PostgreSQL made, not input
        if not JIT:
            settings.append("SET LOCAL jit = off")  # compiling a plain scan's expressions costs more than it saves
        for statement in settings:
            stmt.set_sql_query(statement)
            stmt.execute_update()
        stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
        stmt.set_sql_query(text)
        handle, _ = stmt.execute_query()
        return pa.RecordBatchReader._import_from_c(handle.address)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_CHANGES_SQL = """
SELECT count(*), coalesce(max(change_id), 0) FROM gis_meta.tile_changes
WHERE table_schema = %s AND table_name = %s
"""


def data_version(conn: psycopg.Connection, coll: gcat.Collection) -> str:
    """A fingerprint of everything a collection's downloads are made of.

    The catalog entry (fields, titles, tiles settings), the exporter's version and, for each table the
    relation reads, its writes: the number and last id of its rows in ``gis_meta.tile_changes`` (the
    change log that statement triggers write in the writing transaction, so it is exact and, read in
    the export's snapshot, describes exactly the data exported); for a table the log does not track,
    its file node and write counters (``pg_stat_user_tables``: approximate, reset by a crash, so such
    a table may be rebuilt once too often, never too rarely after a write the counters saw).

    Parameters
    ----------
    conn : psycopg.Connection
        A connection, ideally in the export's REPEATABLE READ transaction.
    coll : Collection
        The collection.

    Returns
    -------
    str
        A hex digest; equal digests mean the downloads would be the same.
    """
    entry = conn.execute("SELECT md5(c::text) FROM gis_meta.collections c WHERE c.id = %s",
                         (coll.id,)).fetchone()
    parts: list = [EXPORTER_VERSION, entry[0] if entry else None, coll.field_names]
    for t in gcat.base_tables(conn, coll.schema, coll.relation):
        if t.tile_tracked:
            count, last = conn.execute(_CHANGES_SQL, (t.schema, t.name)).fetchone()
            parts.append([t.schema, t.name, "log", count, last])
        else:
            parts.append([t.schema, t.name, "stat", t.filenode, t.writes])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


# --- the SELECT of an export -----------------------------------------------------------------
def _columns(coll: gcat.Collection) -> list[tuple[str, str]]:
    """(column, pg type) of what a download holds: the id and the PUBLIC fields, nothing else."""
    return [(coll.id_column, coll.id_type)] + [(f.name, f.pg_type) for f in coll.fields]


#: ISO 8601 text of the date/time types in CSV (GDAL's CSV writer would say "2024/01/01 00:00:00+00"):
#: dates as 2024-01-01, UTC times as 2024-01-01T00:00:00Z (fractions of a second only when there are)
_ISO_TEXT = {
    "date": "to_char({c}, 'YYYY-MM-DD')",
    "timestamptz": "replace(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z'",
    "timestamp": "replace(to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '')",
}


def _select(coll: gcat.Collection, bbox: bool, iso_text: bool = False, ordered: bool = True) -> sql.Composed:
    """The export's SELECT: the id, the public fields and the geometry as WKB, in id order.

    ``iso_text``: dates and times as ISO 8601 text (for CSV, which has no types). ``ordered=False``:
    in the order the scan finds them (a sequential scan, cheaper than the id index; for a writer that
    orders the features itself).
    """
    items = []
    for name, typ in _columns(coll):
        col = sql.Identifier(name)
        if iso_text and typ in _ISO_TEXT:
            items.append(sql.SQL("{} AS {}").format(sql.SQL(_ISO_TEXT[typ]).format(c=col), col))
        elif typ in _KEEP:
            items.append(col)
        else:
            items.append(sql.SQL("{}::{} AS {}").format(col, sql.SQL(_CAST.get(typ, "text")), col))
    g = sql.Identifier(coll.geometry_column)
    items.append(sql.SQL("ST_AsBinary({}) AS {}").format(g, sql.Identifier(GEOMETRY)))
    if bbox:
        for fn, alias in (("ST_XMin", "xmin"), ("ST_YMin", "ymin"), ("ST_XMax", "xmax"), ("ST_YMax", "ymax")):
            items.append(sql.SQL("{}({})::float8 AS {}").format(sql.SQL(fn), g, sql.Identifier("__" + alias)))
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items),
                                                sql.Identifier(coll.schema, coll.relation))
    if not ordered:
        return query
    return sql.SQL("{} ORDER BY {}").format(query, sql.Identifier(coll.id_column))


#: Arrow batches read ahead of the writer (each about :data:`BATCH_BYTES`): the memory bound of the read
PREFETCH_BATCHES = 2
#: size hint of the Arrow batches ADBC reads from the binary COPY (its default is 16 MB)
BATCH_BYTES = 8 << 20
_END = object()
#: let PostgreSQL JIT-compile the export's query (off: a whole-table scan gains nothing from it)
JIT = False


class _ReadAhead:
    """The batches of a ``RecordBatchReader``, read ahead in a thread while the caller writes.

    The database read (ADBC: libpq and the binary COPY decoder, waiting on the PostgreSQL backend) and
    the write (GDAL's Arrow writer, Parquet's encoder) both release the GIL, so in two threads they
    overlap instead of taking turns; at most ``depth`` batches wait in the queue (bounded memory).
    The batches lose the driver's field metadata. Use as a context manager: leaving it stops and joins
    the reading thread (before the snapshot closes the ADBC cursor it reads from), whatever happened.
    """

    def __init__(self, reader, depth: int = PREFETCH_BATCHES) -> None:
        import queue
        import threading

        import pyarrow as pa

        self.schema = pa.schema([pa.field(f.name, f.type, f.nullable) for f in reader.schema])
        self._reader = reader
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._full = queue.Full
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gis-export-read", daemon=True)

    def __enter__(self) -> _ReadAhead:  # noqa: PYI034 - the class is not subclassed
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import pyarrow as pa

        try:
            for batch in self._reader:
                if not self._put(pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the writing thread, raised there
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except self._full:
                continue
        return False

    def batches(self, progress: Callable[[int], None] | None, counter: list[int]) -> Iterator:
        """The batches in order, counted in ``counter[0]`` (and reported to ``progress``)."""
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            counter[0] += item.num_rows
            if progress:
                progress(counter[0])
            yield item


def _geometry_type(coll: gcat.Collection) -> str:
    known = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
             "GeometryCollection"}
    gt = next((k for k in known if k.lower() == coll.geometry_type.lower()), None)
    return gt or "Unknown"


def _write_ogr(snap: ReadSnapshot, coll: gcat.Collection, fmt: str, tmp: Path,
               progress: Callable[[int], None] | None) -> int:
    driver, options = _OGR[fmt]
    options = dict(options)
    reader = snap.stream(_select(coll, bbox=False, iso_text=fmt == "csv"))
    with _ReadAhead(reader) as ahead:  # reads while GDAL (imported meanwhile) loads and writes
        import pyarrow as pa
        import pyogrio

        counter = [0]
        raised: list[BaseException] = []

        def batches() -> Iterator:
            try:
                yield from ahead.batches(progress, counter)
            except BaseException as exc:  # GDAL reports a failed stream as its own error: keep the real one
                raised.append(exc)
                raise

        stream = pa.RecordBatchReader.from_batches(ahead.schema, batches())
        title = f"{coll.title_en} / {coll.title_vi}"
        if fmt == "gpkg":
            if coll.id_type in ("int2", "int4", "int8"):
                options["FID"] = coll.id_column
            options |= {"IDENTIFIER": coll.title_en, "DESCRIPTION": coll.description_en or title}
        elif fmt == "fgb":
            options |= {"TITLE": title, "DESCRIPTION": coll.description_en or ""}
        elif fmt in ("geojson", "geojsonseq"):
            options["ID_FIELD"] = coll.id_column
        kwargs: dict = {}
        if fmt == "shp.zip":
            kwargs["encoding"] = "UTF-8"  # with a .cpg saying so
        try:
            pyogrio.write_arrow(stream, str(tmp), layer=coll.id.replace("-", "_"), driver=driver,
                                geometry_name=GEOMETRY, geometry_type=_geometry_type(coll),
                                crs=f"EPSG:{coll.srid}", layer_options=options, **kwargs)
        except BaseException:
            if raised:
                raise raised[0] from None
            raise
        if raised:  # pragma: no cover - GDAL always reports a failed stream
            raise raised[0]
    return counter[0]


def _write_fgb(snap: ReadSnapshot, coll: gcat.Collection, tmp: Path,
               progress: Callable[[int], None] | None) -> tuple[int, str | None]:
    """FlatGeobuf by :mod:`gis.flatgeobuf` (array kernels, one Hilbert sort, hashed as it is written);
    by GDAL for what it does not encode (NULL or empty geometries, Z/M coordinates, mixed types), from
    the same snapshot. With an integer id the rows are read unordered (the writer orders them: Hilbert
    code, then id), so that the file does not depend on the table's physical order."""
    from gis import flatgeobuf

    integer_id = coll.id_type in ("int2", "int4", "int8")  # ties of the Hilbert sort broken by the id
    reader = snap.stream(_select(coll, bbox=False, ordered=not integer_id))
    hasher = hashlib.sha256()
    try:
        with _ReadAhead(reader) as ahead:
            counter = [0]
            count = flatgeobuf.write(
                ahead.batches(progress, counter), ahead.schema, tmp, geometry=GEOMETRY,
                geometry_type=_geometry_type(coll), srid=coll.srid, name=coll.id.replace("-", "_"),
                title=f"{coll.title_en} / {coll.title_vi}", description=coll.description_en or "",
                hasher=hasher, tiebreak=coll.id_column if integer_id else None)
        return count, hasher.hexdigest()
    except flatgeobuf.Unsupported:
        tmp.unlink(missing_ok=True)
    return _write_ogr(snap, coll, "fgb", tmp, progress), None


def _write_parquet(snap: ReadSnapshot, coll: gcat.Collection, tmp: Path,
                   progress: Callable[[int], None] | None) -> int:
    """GeoParquet 1.1: WKB geometry, ``geo`` metadata, a ``bbox`` covering column, zstd, row groups."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reader = snap.stream(_select(coll, bbox=True))
    names = [f.name for f in reader.schema if not f.name.startswith("__")]
    bbox_type = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
    fields = [pa.field(f.name, f.type, f.nullable) for f in reader.schema if f.name in names]
    schema = pa.schema(fields + [pa.field(BBOX, bbox_type)])
    extent = [float("inf"), float("inf"), float("-inf"), float("-inf")]
    counter = [0]
    with _ReadAhead(reader) as ahead, pq.ParquetWriter(str(tmp), schema, compression="zstd",
                                                       write_statistics=True) as writer:
        for batch in ahead.batches(progress, counter):
            corners = [batch.column("__" + k) for k in ("xmin", "ymin", "xmax", "ymax")]
            box = pa.StructArray.from_arrays(corners, fields=list(bbox_type),
                                             mask=pc.is_null(batch.column(GEOMETRY)))
            out = pa.RecordBatch.from_arrays([batch.column(n) for n in names] + [box], schema=schema)
            writer.write_batch(out, row_group_size=PARQUET_ROW_GROUP)
            for i, fn in enumerate((pc.min, pc.min, pc.max, pc.max)):
                v = fn(corners[i]).as_py()
                if v is not None:
                    extent[i] = min(extent[i], v) if i < 2 else max(extent[i], v)
        writer.add_key_value_metadata({"geo": json.dumps(_geo_metadata(coll, extent))})
    return counter[0]


def _geo_metadata(coll: gcat.Collection, extent: list[float]) -> dict:
    """The ``geo`` file metadata of GeoParquet 1.1."""
    from pyproj import CRS

    gt = _geometry_type(coll)
    column: dict = {
        "encoding": "WKB",
        "geometry_types": [] if gt in ("Unknown", "GeometryCollection") else [gt],
        # stored lon/lat (PostGIS order): CRS84 says so; other CRSs in their PROJJSON
        "crs": CRS("OGC:CRS84" if coll.srid == 4326 else f"EPSG:{coll.srid}").to_json_dict(),
        "covering": {"bbox": {k: [BBOX, k] for k in ("xmin", "ymin", "xmax", "ymax")}},
    }
    if extent[0] <= extent[2]:
        column["bbox"] = extent
    return {"version": "1.1.0", "primary_column": GEOMETRY, "columns": {GEOMETRY: column}}


# --- atomic files --------------------------------------------------------------------------------
def _tmp_path(out: Path) -> Path:
    # the suffix is kept (GDAL chooses by it: .shp.zip); a leading dot hides it from listings
    return out.with_name(f".partial-{os.getpid()}-{out.name}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _disk_error(exc: BaseException, tmp: Path) -> bool:
    """Whether a failed write ran out of space (or hit the file size limit).

    GDAL does not always say so (SQLite's "disk is full" can be hidden by a later ROLLBACK error), so
    the file system is asked too, before the partial file is removed: under 1 MiB free, or the partial
    file at the process's RLIMIT_FSIZE.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(exc)
    if any(s in text for s in ("No space left", "File too large", "Disk quota", "ENOSPC", "disk is full")):
        return True
    try:
        st = os.statvfs(tmp.parent)
        if st.f_blocks and st.f_bavail * st.f_frsize < (1 << 20):  # (pseudo file systems have no blocks)
            return True
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            sizes = [p.stat().st_size for p in tmp.parent.glob(f"{tmp.name}*") if p.is_file()]
            return any(size >= soft - (64 << 10) for size in sizes)
    except OSError:
        return False
    return False


@contextmanager
def _atomic(out: Path, what: str):
    """Yield a temporary path beside ``out``; on success the caller's file replaces ``out``.

    On any failure (an error, Ctrl-C, a full disk) the temporary file (and GDAL's side files) is
    removed and ``out`` is left as it was.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(out)
    side = [tmp.with_name(tmp.name + ext) for ext in ("-journal", "-wal", "-shm", ".tmp")]
    try:
        yield tmp
    except GisError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any writer error becomes a user-safe message
        if _disk_error(exc, tmp):
            raise GisError(f"The disk is full (or the file size limit was reached) while writing {what} to "
                           f"{out.parent}: the previous file, if any, is unchanged. Free some space and run "
                           "the export again.", code="DiskFull") from None
        reason = _first_line(exc).replace(str(tmp), str(out)).replace(tmp.name, out.name)  # not our temp name
        raise GisError(f"Writing {what} failed: {reason}. The previous file, if any, is unchanged.") from None
    finally:
        for p in (tmp, *side, *out.parent.glob(f"{tmp.name}*")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                import shutil

                shutil.rmtree(p, ignore_errors=True)


def _build(snap: ReadSnapshot, coll: gcat.Collection, fmt: str, tmp: Path, dsn: str,
           tile_packager: TilePackager | None, progress: Callable[[int], None] | None
           ) -> tuple[int | None, str | None]:
    """Write ``coll`` in format ``fmt`` to ``tmp`` (not renamed).

    The number of features written, and the file's SHA-256 when the writer computed it as it wrote.
    """
    if fmt == "parquet":
        return _write_parquet(snap, coll, tmp, progress), None
    if fmt == "fgb":
        return _write_fgb(snap, coll, tmp, progress)
    if fmt in _OGR:
        return _write_ogr(snap, coll, fmt, tmp, progress), None
    if fmt in TILE_FORMATS:
        if tile_packager is None:
            raise InputError(f"--format {fmt}: tile packages are built by the `gis` command (tiles.export); "
                             "this caller gave no tile packager.")
        tile_packager(dsn, coll.id, fmt, tmp)
        return None, None
    raise InputError(f"--format {fmt!r}: {fmt} files are not built by an export "
                     "(COGs are the raster store's files).")


def _finish(tmp: Path, out: Path, digest: str | None = None) -> tuple[int, str]:
    """fsync ``tmp``, hash it, rename it to ``out`` and write ``out.sha256``; (size, sha256).

    ``digest``: the SHA-256 the writer computed while writing (then the file is not read again).

    SIGINT and SIGTERM are held back during the two renames, so an interrupt cannot leave a file
    with the checksum of the previous one.
    """
    import signal
    from concurrent.futures import ThreadPoolExecutor

    def sync() -> None:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())

    with ThreadPoolExecutor(1, thread_name_prefix="gis-export-fsync") as pool:
        synced = pool.submit(sync)  # the disk flushes while the page cache is hashed (both drop the GIL)
        if digest is None:
            digest = sha256_file(tmp)
        synced.result()
    size = tmp.stat().st_size
    sidecar = out.with_name(out.name + ".sha256")
    side_tmp = _tmp_path(sidecar)
    try:
        with open(side_tmp, "w", encoding="utf-8") as f:
            f.write(f"{digest}  {out.name}\n")
            f.flush()
            os.fsync(f.fileno())
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            os.replace(tmp, out)
            os.replace(side_tmp, sidecar)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    finally:
        side_tmp.unlink(missing_ok=True)
    _fsync_dir(out.parent)
    return size, digest


def export(dsn: str, collection_id: str, fmt: str, out: Path | str, *,
           tile_packager: TilePackager | None = None,
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """Write one public collection to one file, from one consistent snapshot.

    Parameters
    ----------
    dsn : str
        The database.
    collection_id : str
        A public collection of the catalog.
    fmt : str
        A short format name: gpkg, parquet, fgb, csv, geojson, geojsonseq, shp.zip, pmtiles, mbtiles.
    out : Path
        The file to write; replaced atomically when complete, with ``<out>.sha256`` beside it. On failure
        the previous file (if any) is left unchanged and no partial file remains.
    tile_packager : callable, optional
        Builds pmtiles/mbtiles (given by the CLI, which may import :mod:`tiles`).
    progress : callable, optional
        Called with the number of features written so far.

    Returns
    -------
    ExportResult

    Raises
    ------
    NotFoundError
        Unknown or non-public collection.
    InputError
        Unknown format.
    GisError
        The write failed (disk full...): the message says so; nothing was replaced.

    Examples
    --------
    >>> export(dsn, "parcels", "gpkg", "parcels.gpkg").feature_count  # doctest: +SKIP
    601
    """
    f = check_format(fmt)
    is_folder = str(out).endswith(("/", os.sep))
    out = Path(out)
    if is_folder or out.is_dir():
        out = out / filename(collection_id, f.name)
    t0 = time.perf_counter()
    with ReadSnapshot(dsn) as snap:
        coll = snap.collection(collection_id)
        version = data_version(snap.conn, coll)
        with _atomic(out, f"{collection_id} as {f.title}") as tmp:
            count, digest = _build(snap, coll, f.name, tmp, dsn, tile_packager, progress)
            size, digest = _finish(tmp, out, digest)
    return ExportResult(collection_id, f.name, out, size, digest, count, version, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------
# the publishing job
# ------------------------------------------------------------------------------------------------
#: folder (inside a collection's folder) of the immutable copies (hard links) the API serves
OBJECTS = ".objects"
_LOCK_BASE = 727_000_100  # pg_advisory_lock(key, hashtext(collection)) serialises builds of one layer

_REGISTRY_ROW_SQL = """
SELECT data_version, sha256, size FROM gis_meta.downloads WHERE collection_id = %s AND filename = %s
"""

_UPSERT_SQL = """
INSERT INTO gis_meta.downloads (collection_id, format, filename, media_type, size, sha256, built_at,
                                data_version, feature_count, seconds)
VALUES (%(collection_id)s, %(format)s, %(filename)s, %(media_type)s, %(size)s, %(sha256)s, now(),
        %(data_version)s, %(feature_count)s, %(seconds)s)
ON CONFLICT (collection_id, filename) DO UPDATE SET
    format = EXCLUDED.format, media_type = EXCLUDED.media_type, size = EXCLUDED.size,
    sha256 = EXCLUDED.sha256, built_at = EXCLUDED.built_at, data_version = EXCLUDED.data_version,
    feature_count = EXCLUDED.feature_count, seconds = EXCLUDED.seconds
"""


def object_path(root: Path, collection_id: str, fmt: str, sha256: str) -> Path:
    """The immutable copy of a built file: ``root/<collection>/.objects/<sha256><suffix>``.

    The API serves these (their content always matches the ETag, the sha256, even while a new build
    replaces ``root/<collection>/<filename>``); they are hard links of the published files, no copies.
    """
    return Path(root) / collection_id / OBJECTS / f"{sha256}{FORMATS[fmt].suffix}"


def _prune_objects(folder: Path, fmt: str, keep: set[str]) -> None:
    """Remove the objects of ``fmt`` in ``folder`` except ``keep`` (sha256s)."""
    suffix = FORMATS[fmt].suffix
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        name = p.name
        if name.endswith(suffix) and len(name) == 64 + len(suffix) and name[:64] not in keep:
            p.unlink(missing_ok=True)


def publish(dsn: str, data_dir: Path, collections: list[str] | None = None, *,
            formats: list[str] | None = None, force: bool = False,
            tile_packager: TilePackager | None = None,
            progress: Callable[[str, str, int], None] | None = None) -> list[ExportResult]:
    """Build the downloads of the public collections whose data changed since their last build.

    Each collection is read in one snapshot (all its formats show the same data). A download is
    rebuilt when the collection's :func:`data_version` differs from the one recorded in
    ``gis_meta.downloads``, when its file is missing, or with ``force``. Files go to
    ``data_dir/downloads/<collection>/<filename>`` (atomically replaced, with a ``.sha256``) and an
    immutable hard link under ``.objects/`` that the API serves; the registry row is written last.
    Downloads of collections that are no longer public are unregistered and their files removed.

    Parameters
    ----------
    dsn : str
        The database (migrated to 0009 at least).
    data_dir : Path
        The platform's data folder (``Settings.data_dir``).
    collections : list of str, optional
        Only these public collections (default: every public collection).
    formats : list of str, optional
        Only these formats (default: :data:`VECTOR_FORMATS`; pmtiles and mbtiles only with a
        ``tile_packager``).
    force : bool
        Rebuild even when current.
    tile_packager : callable, optional
        Builds the tile packages (the CLI passes one that calls :func:`tiles.export.export`).
    progress : callable, optional
        Called with (collection, format, features written so far).

    Returns
    -------
    list of ExportResult
        One per (collection, format), ``built`` False for those that were current.

    Examples
    --------
    >>> [r.summary() for r in publish(dsn, Path("var"), ["parcels"], formats=["gpkg"])]  # doctest: +SKIP
    ['parcels gpkg: 601 features, 0.3 MB to var/downloads/parcels/parcels.gpkg in 0.4 s, ...']
    """
    from gis.db import connect

    root = downloads_root(data_dir)
    wanted = [check_format(f).name for f in formats] if formats else [
        f for f in VECTOR_FORMATS if f not in TILE_FORMATS or tile_packager is not None]
    if "cog" in wanted:
        raise InputError("--format cog: COGs are the raster store's files, published as they are; "
                         "there is nothing to build.")
    results: list[ExportResult] = []
    with connect(dsn, autocommit=True) as reg:
        if not reg.execute("SELECT to_regclass('gis_meta.downloads') IS NOT NULL").fetchone()[0]:
            raise GisError("The database has no downloads registry (migration 0009): run `gis db migrate`.")
        public = [r[0] for r in reg.execute(
            "SELECT id FROM gis_meta.collections WHERE public ORDER BY sort_order, id").fetchall()]
        ids = list(collections) if collections else public
        with ReadSnapshot(dsn) as snap0:  # check every name before building anything
            for cid in ids:
                snap0.collection(cid)
        _unpublish_private(reg, root)
        failures: list[str] = []
        for cid in ids:
            reg.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_BASE, cid))
            try:
                results += _publish_one(dsn, reg, root, cid, wanted, force, tile_packager, progress,
                                        failures)
            finally:
                reg.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_BASE, cid))
    if failures:
        raise PublishError(failures, results)
    return results


def collections_reading(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """The public collections whose data comes from any of ``tables`` (through views or directly).

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection.
    tables : list of str
        Qualified table names, ``"schema.table"`` (e.g. the target table of an ingest kind).

    Returns
    -------
    list of str
        Collection ids in catalog order: those :func:`publish` should bring up to date after these
        tables were written.

    Examples
    --------
    >>> collections_reading(conn, ["cadastral.parcels"])  # doctest: +SKIP
    ['parcels', 'parcel-history']
    """
    wanted = {tuple(t.split(".", 1)) for t in tables if "." in t}
    out = []
    rows = conn.execute("SELECT id, relation_schema, relation_name FROM gis_meta.collections WHERE public "
                        "ORDER BY sort_order, id").fetchall()
    for cid, schema, relation in rows:
        deps = {(t.schema, t.name) for t in gcat.base_tables(conn, schema, relation)}
        if deps & wanted:
            out.append(cid)
    return out


class PublishError(GisError):
    """Some downloads could not be built (the others were; the failed ones keep their previous file).

    ``results`` holds what was built or found current; ``failures`` one message per failed download.
    """

    code = "PublishFailed"

    def __init__(self, failures: list[str], results: list[ExportResult]) -> None:
        super().__init__(f"{len(failures)} download(s) failed (their previous files stay served): "
                         + " ".join(failures))
        self.failures = failures
        self.results = results


def _publish_one(dsn: str, reg: psycopg.Connection, root: Path, cid: str, wanted: list[str], force: bool,
                 tile_packager: TilePackager | None, progress: Callable[[str, str, int], None] | None,
                 failures: list[str]) -> list[ExportResult]:
    out: list[ExportResult] = []
    with ReadSnapshot(dsn) as snap:
        coll = snap.collection(cid)
        version = data_version(snap.conn, coll)
        empty = snap.conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
            sql.Identifier(coll.schema, coll.relation))).fetchone()[0]
        folder = root / cid
        for fmt in wanted:
            if empty and fmt in TILE_FORMATS:
                continue  # a tile package of no tiles helps nobody (and its formats need one tile)
            f = FORMATS[fmt]
            name = filename(cid, fmt)
            target = folder / name
            row = reg.execute(_REGISTRY_ROW_SQL, (cid, name)).fetchone()
            if (not force and row is not None and row[0] == version
                    and object_path(root, cid, fmt, row[1]).is_file() and target.is_file()):
                out.append(ExportResult(cid, fmt, target, int(row[2]), row[1], None, version, 0.0, built=False))
                continue
            t0 = time.perf_counter()
            step = (lambda n, _f=fmt: progress(cid, _f, n)) if progress else None
            try:
                with _atomic(target, f"{cid} as {f.title}") as tmp:
                    count, digest = _build(snap, coll, fmt, tmp, dsn, tile_packager, step)
                    size, digest = _finish(tmp, target, digest)
            except GisError as exc:
                if exc.code == "DiskFull":
                    raise  # every other build would fail too
                failures.append(f"{cid} {fmt}: {exc.message}")
                continue
            obj = object_path(root, cid, fmt, digest)
            obj.parent.mkdir(parents=True, exist_ok=True)
            if not obj.exists():
                _link_or_copy(target, obj)
            seconds = time.perf_counter() - t0
            reg.execute(_UPSERT_SQL, {
                "collection_id": cid, "format": fmt, "filename": name, "media_type": f.media_type,
                "size": size, "sha256": digest, "data_version": version, "feature_count": count,
                "seconds": seconds})
            # keep the previous object a while: a request that looked the row up just before is served
            _prune_objects(obj.parent, fmt, {digest} | ({row[1]} if row else set()))
            out.append(ExportResult(cid, fmt, target, size, digest, count, version, seconds))
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = _tmp_path(dst)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # a file system without hard links
            import shutil

            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _unpublish_private(reg: psycopg.Connection, root: Path) -> None:
    """Unregister (and delete the files of) downloads whose collection is no longer public."""
    import shutil

    gone = reg.execute(
        "DELETE FROM gis_meta.downloads d USING gis_meta.collections c "
        "WHERE c.id = d.collection_id AND NOT c.public RETURNING d.collection_id").fetchall()
    for cid in {r[0] for r in gone}:
        folder = root / cid
        if folder.is_dir() and folder.parent == root:
            shutil.rmtree(folder, ignore_errors=True)


def registered_object(root: Path, d: DownloadFile) -> Path:
    """The file the API serves for a registered download (its immutable copy)."""
    return object_path(root, d.collection_id, d.format, d.sha256)
