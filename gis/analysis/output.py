"""Writing analysis results: files (GeoPackage, GeoParquet, GeoJSON, CSV) or a PostGIS table.

Every writer carries the result's metadata (``df.attrs``: units, assumptions, parameters):

* GeoPackage: layer metadata item ``GIS_ANALYSIS`` (JSON);
* GeoParquet: schema metadata ``gis:analysis`` (JSON) beside the ``geo`` metadata;
* GeoJSON: a foreign member ``"metadata"`` is not standard, so a side file ``FILE.meta.json``;
* CSV: geometry as WKT, and the side file ``FILE.meta.json``;
* PostGIS: table ``stats.NAME`` (written, indexed, commented and registered in
  ``gis_meta.collections`` and ``stats.analysis_outputs`` in ONE transaction: a failure leaves
  nothing, and a table of the same name as it was).

Files are written to a temporary name beside the target and renamed, so a failed write never
leaves half a file.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gis.analysis._common import STORAGE_CRS, metadata_json
from gis.db import connect
from gis.errors import GisError, InputError
from gis.privacy import apply_minimum_count

FORMATS = {".gpkg": "GPKG", ".parquet": "Parquet", ".geoparquet": "Parquet", ".csv": "CSV",
           ".geojson": "GeoJSON", ".json": "GeoJSON"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _is_geo(df) -> bool:
    import geopandas as gpd

    return isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns


def _clean_columns(df) -> pd.DataFrame:
    """Column names safe for every format (lower-case, [a-z0-9_]); objects that are not scalars
    become JSON text."""
    out = df.copy()
    names, seen = {}, set()
    for c in out.columns:
        if _is_geo(out) and c == out.geometry.name:
            continue
        n = re.sub(r"[^a-z0-9_]", "_", str(c).lower()).strip("_") or "col"
        if n[0].isdigit():
            n = "c_" + n
        if n in ("fid", "geom", "geometry"):
            n = n + "_"
        base, i = n, 2
        while n in seen:
            n, i = f"{base}_{i}", i + 1
        seen.add(n)
        names[c] = n
    out = out.rename(columns=names)
    for c in names.values():
        s = out[c]
        if s.dtype == object:
            if s.map(lambda v: isinstance(v, (list, dict, tuple, set))).any():
                out[c] = s.map(lambda v: json.dumps(v, ensure_ascii=False, default=str)
                               if isinstance(v, (list, dict, tuple, set)) else v)
    out.attrs = dict(df.attrs)
    return out


def write_file(df, path: str | Path, *, layer: str | None = None) -> Path:
    """Write a result to a file chosen by its suffix (.gpkg, .parquet, .geojson, .csv).

    Raises
    ------
    InputError
        An unknown suffix, or a result without geometry to a geometry-only format.
    """
    df = apply_minimum_count(df)  # gis.privacy: small counts of persons are never written
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"--out {p.name}: unknown format; use one of {', '.join(sorted(FORMATS))}.")
    if not p.parent.exists():
        raise InputError(f"--out {p}: the folder {p.parent} does not exist.")
    geo = _is_geo(df)
    if fmt in ("GPKG", "GeoJSON") and not geo:
        raise InputError(f"This result has no geometry: write it to .csv or .parquet, not {p.suffix}.")
    data = _clean_columns(df)
    meta = metadata_json(df)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        if fmt == "GPKG":
            import pyogrio

            pyogrio.write_dataframe(data.to_crs(STORAGE_CRS), tmp, layer=layer or p.stem, driver="GPKG",
                                    promote_to_multi=None, layer_metadata={"GIS_ANALYSIS": meta})
        elif fmt == "GeoJSON":
            import pyogrio

            # the layer name becomes the GeoJSON "name": the file's, not the temporary one's
            pyogrio.write_dataframe(data.to_crs(STORAGE_CRS), tmp, layer=layer or p.stem,
                                    driver="GeoJSON", layer_options={"RFC7946": "YES"})
        elif fmt == "Parquet":
            import pyarrow.parquet as pq

            if geo:
                data.to_crs(STORAGE_CRS).to_parquet(tmp, index=False)
            else:
                data.to_parquet(tmp, index=False)
            table = pq.read_table(tmp)
            md = dict(table.schema.metadata or {})
            md[b"gis:analysis"] = meta.encode()
            pq.write_table(table.replace_schema_metadata(md), tmp)
        else:  # CSV
            out = pd.DataFrame(data.drop(columns=data.geometry.name)) if geo else pd.DataFrame(data)
            if geo:
                out["wkt"] = data.to_crs(STORAGE_CRS).geometry.to_wkt().to_numpy()
            out.to_csv(tmp, index=False)
        if fmt in ("CSV", "GeoJSON"):
            side = p.with_name(p.name + ".meta.json")
            side.write_text(meta, encoding="utf-8")
        os.replace(tmp, p)
    except GisError:
        raise
    except Exception as exc:  # GDAL / Arrow errors: name the file, not the internals
        raise GisError(f"Writing {p.name} failed ({type(exc).__name__}); nothing was written.") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


# --- PostGIS ------------------------------------------------------------------------------------
def _pg_type(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "bigint"
    if pd.api.types.is_float_dtype(s):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "timestamptz"
    return "text"


def _geometry_type(geoms: np.ndarray) -> tuple[str, np.ndarray]:
    """A single PostGIS geometry type for the column, promoting to Multi* where mixed."""
    import shapely

    types = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    if types <= {3, 6}:
        return "MultiPolygon", np.array([shapely.multipolygons([g]) if g is not None and shapely.get_type_id(g) == 3
                                         else g for g in geoms], dtype=object)
    if types <= {1, 5}:
        return "MultiLineString", np.array([shapely.multilinestrings([g]) if g is not None and shapely.get_type_id(g) == 1
                                            else g for g in geoms], dtype=object)
    if types == {0}:
        return "Point", geoms
    if types <= {0, 4}:
        return "MultiPoint", np.array([shapely.multipoints([g]) if g is not None and shapely.get_type_id(g) == 0
                                       else g for g in geoms], dtype=object)
    return "Geometry", geoms


def _value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and (np.isnan(v) or np.isinf(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and (np.isnan(v) or np.isinf(v)):
            return None
    return v


def write_table(df, dsn: str, name: str, *, replace: bool = False, title: str | None = None,
                title_vi: str | None = None, public: bool = True, duration_s: float | None = None) -> dict:
    """Write a result as ``stats.NAME`` and publish it in the catalog, in ONE transaction.

    Parameters
    ----------
    df : GeoDataFrame
        The result (its ``attrs``: title, units, assumptions).
    dsn : str
    name : str
        Table name (``[a-z][a-z0-9_]*``, at most 63 characters) in schema ``stats``.
    replace : bool
        Replace a table written earlier by an analysis. A table of that name that no analysis wrote
        is never touched.
    public : bool
        Publish it (``gis_meta.collections.public``).

    Returns
    -------
    dict
        ``table``, ``collection``, ``rows``.

    Raises
    ------
    InputError
        Bad name, no geometry, or the table exists (without ``replace``, or not an analysis output).
    GisError
        The database refused the write; nothing was written.
    """
    import psycopg
    import shapely
    from psycopg import sql

    df = apply_minimum_count(df)  # gis.privacy: small counts of persons are never published
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"--table {name!r}: use a lower-case name of letters, digits and _ "
                         "(starting with a letter, at most 63 characters).")
    if not _is_geo(df):
        raise InputError("This result has no geometry: a published table needs one; write it to a "
                         ".csv or .parquet file instead.")
    data = _clean_columns(df.to_crs(STORAGE_CRS))
    gcol = data.geometry.name
    gtype, geoms = _geometry_type(np.asarray(data.geometry.values, dtype=object))
    attrs = dict(df.attrs)
    meta = json.loads(metadata_json(df))
    cols = [c for c in data.columns if c != gcol]
    types = {c: _pg_type(data[c]) for c in cols}
    units = attrs.get("units", {})
    descr = attrs.get("columns", {})
    orig = {re.sub(r"[^a-z0-9_]", "_", str(c).lower()).strip("_"): c for c in df.columns}
    fields = {}
    for c in cols:
        o = orig.get(c, c)
        f = {"public": True, "title_en": descr.get(o) or c.replace("_", " ")}
        if units.get(o):
            f["unit"] = units[o]
        fields[c] = f
    collection = "stats-" + name.replace("_", "-")
    title_en = title or attrs.get("title") or name
    analysis = attrs.get("analysis", "unknown")
    t0 = time.monotonic()
    ident = sql.Identifier("stats", name)
    try:
        with connect(dsn) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"stats:{name}",))
            if conn.execute("SELECT to_regclass('stats.analysis_outputs')").fetchone()[0] is None:
                raise GisError("The database lacks migration 0006_stats: run `gis db migrate`.")
            exists = conn.execute("SELECT to_regclass(%s)", (f"stats.{name}",)).fetchone()[0] is not None
            ours = conn.execute("SELECT 1 FROM stats.analysis_outputs WHERE table_name = %s",
                                (name,)).fetchone() is not None
            if exists and not ours:
                raise InputError(f"stats.{name} exists and was not written by an analysis: choose another "
                                 "--table name.")
            if exists and not replace:
                raise InputError(f"stats.{name} exists (written by an analysis before): add --replace to "
                                 "replace it, or choose another --table name.")
            other = conn.execute("SELECT id FROM gis_meta.collections WHERE id = %s AND NOT "
                                 "(relation_schema = 'stats' AND relation_name = %s)", (collection, name)).fetchone()
            if other:
                raise InputError(f"The catalog already has a collection {collection!r} for another table.")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
            col_defs = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in cols)
            conn.execute(sql.SQL("CREATE TABLE {t} (fid bigint PRIMARY KEY{sep}{cols}, "
                                 "geom geometry({gt}, 4326))").format(
                t=ident, sep=sql.SQL(", ") if cols else sql.SQL(""), cols=col_defs, gt=sql.SQL(gtype)))
            ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
            copy_sql = sql.SQL("COPY {t} (fid{sep}{cols}, geom) FROM STDIN").format(
                t=ident, sep=sql.SQL(", ") if cols else sql.SQL(""),
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols))
            values = [data[c].astype(object).to_numpy() for c in cols]
            with conn.cursor().copy(copy_sql) as cp:
                for i in range(len(data)):
                    cp.write_row((i + 1, *(_value(v[i]) for v in values), ewkb[i]))
            conn.execute(sql.SQL("CREATE INDEX ON {t} USING gist (geom)").format(t=ident))
            comment = json.dumps({"title": title_en, "analysis": analysis,
                                  "assumptions": attrs.get("assumptions", [])}, ensure_ascii=False)
            conn.execute(sql.SQL("COMMENT ON TABLE {t} IS {c}").format(t=ident, c=sql.Literal(comment)))
            for c in cols:
                if units.get(orig.get(c, c)) or descr.get(orig.get(c, c)):
                    txt = (descr.get(orig.get(c, c)) or "") + (f" [{units[orig.get(c, c)]}]" if units.get(orig.get(c, c)) else "")
                    conn.execute(sql.SQL("COMMENT ON COLUMN {t}.{c} IS {x}").format(
                        t=ident, c=sql.Identifier(c), x=sql.Literal(txt.strip())))
            desc_en = "; ".join([attrs.get("title", "")] + list(attrs.get("assumptions", [])))[:2000]
            conn.execute(
                "INSERT INTO gis_meta.collections (id, relation_schema, relation_name, id_column, geometry_column, "
                "title_vi, title_en, description_en, keywords, licence, attribution, public, fields, sort_order) "
                "VALUES (%s, 'stats', %s, 'fid', 'geom', %s, %s, %s, %s, %s, %s, %s, %s, 200) "
                "ON CONFLICT (id) DO UPDATE SET title_vi = EXCLUDED.title_vi, title_en = EXCLUDED.title_en, "
                "description_en = EXCLUDED.description_en, keywords = EXCLUDED.keywords, "
                "public = EXCLUDED.public, fields = EXCLUDED.fields",
                (collection, name, title_vi or title_en, title_en, desc_en,
                 ["statistics", *analysis.split(".")], "derived; see the sources' licences",
                 "HCMC GIS platform analysis (gis.analysis)", public, json.dumps(fields)))
            conn.execute(
                "INSERT INTO stats.analysis_outputs (table_name, analysis, collection_id, title, n_rows, parameters, "
                "metadata, os_user, duration_s) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (table_name) DO UPDATE SET analysis = EXCLUDED.analysis, "
                "collection_id = EXCLUDED.collection_id, title = EXCLUDED.title, n_rows = EXCLUDED.n_rows, "
                "parameters = EXCLUDED.parameters, metadata = EXCLUDED.metadata, os_user = EXCLUDED.os_user, "
                "created_at = now(), duration_s = EXCLUDED.duration_s",
                (name, analysis, collection, title_en, len(data), json.dumps(meta.get("parameters", {})),
                 json.dumps(meta), _user(), duration_s if duration_s is not None else time.monotonic() - t0))
    except psycopg.Error as exc:
        msg = exc.diag.message_primary if getattr(exc, "diag", None) and exc.diag.message_primary else type(exc).__name__
        raise GisError(f"Writing stats.{name} failed and was rolled back, nothing was written: {msg}.") from exc
    return {"table": f"stats.{name}", "collection": collection, "rows": len(data)}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001  # pragma: no cover - no login name in some containers
        return "unknown"
