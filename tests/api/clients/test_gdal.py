"""GDAL/OGR's OGC API - Features driver (OAPIF) reads the live server.

Two GDALs: Debian's ``ogrinfo``/``ogr2ogr`` (gdal-bin, 3.6 on Debian 12) and the newer one bundled in
pyogrio's wheel. Everything they report is compared with SQL on the server's database.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pyogrio
import pytest
import shapely
from client_helpers import count, norm, sql_rows

#: the OGR field type GDAL must report for each PostgreSQL type of a public column. GDAL's OAPIF
#: driver maps JSON Schema "integer" to Integer (32-bit) whatever the width: int8 -> Integer too.
OGR_TYPES = {
    "text": "String",
    "varchar": "String",
    "bpchar": "String",
    "int2": "Integer",
    "int4": "Integer",
    "int8": "Integer",
    "float4": "Real",
    "float8": "Real",
    "numeric": "Real",
    "bool": "Integer(Boolean)",
    "date": "Date",
    "timestamp": "DateTime",
    "timestamptz": "DateTime",
}
#: the same for pyogrio's dtypes
DTYPES = {
    "String": "object",
    "Integer": "int32",
    "Real": "float64",
    "Integer(Boolean)": "bool",
    "Date": "datetime64[D]",
    "DateTime": "datetime64[ms]",
}

_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): ([A-Za-z0-9]+(?:\([A-Za-z]+\))?) \(\d+\.\d+\)$")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (Debian gdal-bin) is missing: run ./dev setup"
    return path


def _run(*args: str, timeout: int = 300) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{args}: {out.stderr[-2000:]}"
    return out.stdout


def _ogrinfo_layers(text: str) -> dict[str, dict]:
    """``ogrinfo -so -al`` output by layer: feature count, geometry type and fields."""
    layers: dict[str, dict] = {}
    current: dict | None = None
    in_fields = False
    for line in text.splitlines():
        if line.startswith("Layer name: "):
            current = {"fields": {}, "count": None, "geometry": None}
            layers[line[len("Layer name: ") :].strip()] = current
            in_fields = False
        elif current is None:
            continue
        elif line.startswith("Feature Count: "):
            current["count"] = int(line.split(":")[1])
        elif line.startswith("Geometry: "):
            current["geometry"] = line[len("Geometry: ") :].replace(" ", "")
        elif line.startswith("Data axis to CRS axis mapping"):
            in_fields = True
        elif in_fields and (m := _FIELD.match(line)):
            current["fields"][m.group(1)] = m.group(2)
    return layers


#: the records catalogue (OGC API - Records): its records are GeoJSON features, and GDAL lists it
#: as one more layer after the feature collections (coverages it skips: itemType coverage)
RECORDS = "catalog"


def test_ogrinfo_lists_every_collection_as_a_layer(live, catalog):
    out = _run(_tool("ogrinfo"), "-ro", "-q", f"OAPIF:{live.base}/")
    names = re.findall(r"^\d+: (\S+)", out, re.MULTILINE)
    assert names == [*catalog, RECORDS], out


def test_ogrinfo_reads_the_records_catalogue(live, catalog):
    """The catalogue as a layer: one record per public layer, with its title."""
    out = _run(_tool("ogrinfo"), "-ro", "-q", f"OAPIF:{live.base}/", RECORDS)
    assert out.count(f"OGRFeature({RECORDS})") == len(catalog), out
    for coll in catalog.values():
        assert coll.title_en in out, coll.id


def test_ogrinfo_reports_the_databases_counts_and_field_types(live, live_db, catalog):
    """One ``ogrinfo -so -al`` over every layer: exact counts (SQL count(*)) and, field by field,
    the type of the column in the database (through the collection's feature schema, which GDAL
    follows: a sample page cannot tell a float column holding whole numbers, or one all NULL)."""
    layers = _ogrinfo_layers(_run(_tool("ogrinfo"), "-ro", "-so", "-al", f"OAPIF:{live.base}/"))
    assert list(layers) == [*catalog, RECORDS]
    for cid, coll in catalog.items():
        layer = layers[cid]
        n = count(live_db, coll)
        assert layer["count"] == n, cid
        want = {f.name: OGR_TYPES[f.pg_type] for f in coll.fields}
        assert layer["fields"] == want, cid  # same names, same order, same types
        assert not set(layer["fields"]) & set(coll.internal_fields), cid
        if n:  # an empty layer has no sample to tell its geometry type
            assert layer["geometry"] == coll.geometry_type, cid
    assert sum(1 for c in catalog if count(live_db, catalog[c])) >= 6  # most layers have data


def test_ogrinfo_where_is_run_by_the_server(live, live_db, catalog):
    parcels = catalog["parcels"]
    want = count(live_db, parcels, "land_use = 'ODT'")
    assert 10 < want < count(live_db, parcels)
    mark = live.mark()
    out = _run(
        _tool("ogrinfo"),
        "-ro",
        "-q",
        f"OAPIF:{live.base}/",
        "parcels",
        "-where",
        "land_use = 'ODT'",
    )
    assert out.count("OGRFeature(parcels)") == want
    assert out.count("land_use (String) = ODT") == want
    items = [r for r in live.requests_since(mark) if r.path == "/collections/parcels/items"]
    filtered = [r for r in items if r.params.get("land_use") == "ODT"]
    assert filtered and all(r.status == 200 for r in items)
    # apart from the one small page GDAL reads to learn the layer, every page is filtered by the
    # server: GDAL did not download the layer to filter it itself
    unfiltered = [r for r in items if r not in filtered]
    assert len(unfiltered) <= 1 and all(int(r.params["limit"]) <= 20 for r in unfiltered)
    assert all("cursor" not in r.params for r in unfiltered)
    # and the count comes from the server's numberMatched
    out = _run(
        _tool("ogrinfo"),
        "-ro",
        "-so",
        f"OAPIF:{live.base}/",
        "parcels",
        "-where",
        "land_use = 'ODT'",
    )
    assert f"Feature Count: {want}" in out


@pytest.mark.parametrize("preserve_fid", [False, True], ids=["plain", "preserve-fid"])
def test_ogr2ogr_copies_parcels_intact(live, live_db, catalog, tmp_path, preserve_fid):
    out = tmp_path / "out.gpkg"
    args = ["-preserve_fid"] if preserve_fid else []
    _run(_tool("ogr2ogr"), *args, "-f", "GPKG", str(out), f"OAPIF:{live.base}/", "parcels")
    coll = catalog["parcels"]
    rows = sql_rows(live_db, coll)
    df = pyogrio.read_dataframe(out, fid_as_index=True)
    assert len(df) == len(rows) == count(live_db, coll)
    assert list(df.columns) == [*coll.field_names, "geometry"]
    if preserve_fid:  # the feature ids went through as the GeoPackage's fids
        assert sorted(df.index) == sorted(rows)
        by_key = {i: rows[i] for i in rows}
        keys = list(df.index)
    else:  # match on the natural key (commune, sheet, parcel): unique among current parcels
        by_key = {
            tuple(r["properties"][k] for k in ("commune_code", "sheet_no", "parcel_no")): r
            for r in rows.values()
        }
        assert len(by_key) == len(rows)
        keys = list(zip(df.commune_code, df.sheet_no.map(int), df.parcel_no.map(int), strict=True))
    for key, (_, rec) in zip(keys, df.iterrows(), strict=True):
        expected = by_key[key]
        got = {n: norm(rec[n]) for n in coll.field_names}
        assert got == expected["properties"], key
        g = rec["geometry"]
        e = shapely.from_wkb(expected["wkb"])
        assert g.geom_type == e.geom_type and shapely.equals_exact(g, e, tolerance=1e-7), key


def test_pyogrio_gdal_reads_every_layer(live, live_db, catalog):
    """pyogrio's own (newer) GDAL: every layer with every feature and the database's types."""
    base = f"OAPIF:{live.base}/"
    assert [name for name, _ in pyogrio.list_layers(base)] == [*catalog, RECORDS]
    for cid, coll in catalog.items():
        info = pyogrio.read_info(base, layer=cid)
        want = {f.name: DTYPES[OGR_TYPES[f.pg_type]] for f in coll.fields}
        assert dict(zip(info["fields"], info["dtypes"], strict=True)) == want, cid
        df = pyogrio.read_dataframe(base, layer=cid, fid_as_index=True)
        rows = sql_rows(live_db, coll)
        assert len(df) == len(rows) == count(live_db, coll), cid
        assert sorted(df.index) == sorted(rows), cid  # the feature ids are the FIDs
        for fid, rec in df.iterrows():
            assert {n: norm(rec[n]) for n in coll.field_names} == rows[fid]["properties"], cid
            e = shapely.from_wkb(rows[fid]["wkb"])
            assert shapely.equals_exact(rec["geometry"], e, tolerance=1e-7), (cid, fid)


def test_pyogrio_where_and_bbox_are_run_by_the_server(live, live_db, catalog):
    base = f"OAPIF:{live.base}/"
    parcels, buildings = catalog["parcels"], catalog["buildings"]
    mark = live.mark()
    df = pyogrio.read_dataframe(base, layer="parcels", where="land_use = 'TMD'")
    assert len(df) == count(live_db, parcels, "land_use = 'TMD'") > 0
    box = (106.7195, 10.7745, 106.7205, 10.7755)
    df = pyogrio.read_dataframe(base, layer="buildings", bbox=box)
    want = count(
        live_db,
        buildings,
        f"ST_Intersects(t.{buildings.geometry_column}, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        box,
    )
    assert len(df) == want > 0
    reqs = live.requests_since(mark)
    assert any(
        r.path == "/collections/parcels/items" and r.params.get("land_use") == "TMD" for r in reqs
    )
    assert any(r.path == "/collections/buildings/items" and "bbox" in r.params for r in reqs)
