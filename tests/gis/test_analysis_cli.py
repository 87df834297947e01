"""`gis stats`: outputs (files, a published PostGIS table written in one transaction), the
registry's declarations, and bad input turned into clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import psycopg
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from analysis_helpers import LANDUSE_CSL, WARDS_2019, WORLDPOP, count, load, real_db  # noqa: F401

from gis.analysis import output, registry
from gis.analysis.layers import get_layer, load_layer
from gis.catalog import load_catalog
from gis.errors import GisError, InputError, NotFoundError
from gis.settings import PROJECT_ROOT

GIS = str(Path(sys.executable).with_name("gis"))
CENTRE = "106.655,10.755,106.695,10.800"


def gis(args: list[str], dsn: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=dsn, GIS_DATA_DIR=str(tmp_path / "gisdata"))
    return subprocess.run([GIS, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(PROJECT_ROOT))


@pytest.fixture
def plan_db(dsn):
    load(dsn, "admin", WARDS_2019)
    load(dsn, "planning", LANDUSE_CSL)
    return dsn


def test_table_output_is_published_in_one_transaction(plan_db, tmp_path):
    res = gis(["stats", "planning", "land-use", "--source", "lots", "--zones", "wards_2019", "--table",
               "land_use_d7"], plan_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "stats.land_use_d7" in res.stdout and "stats-land-use-d7" in res.stdout
    n = count(plan_db, "SELECT count(*) FROM stats.land_use_d7")
    assert n > 10
    with psycopg.connect(plan_db) as conn:
        cat = load_catalog(conn)
        meta = conn.execute("SELECT analysis, n_rows, metadata FROM stats.analysis_outputs "
                            "WHERE table_name = 'land_use_d7'").fetchone()
        comment = conn.execute("SELECT obj_description('stats.land_use_d7'::regclass)").fetchone()[0]
    coll = cat["stats-land-use-d7"]
    assert coll.geometry_type == "MultiPolygon" and coll.srid == 4326
    assert coll.field("area_m2").unit == "m2" and coll.field("share_of_zone").unit == "fraction"
    assert meta[0] == "planning.land-use" and meta[1] == n
    assert meta[2]["parameters"]["source"] == "lots" and meta[2]["assumptions"]
    assert "planning.land-use" in comment
    # again without --replace: refused, the table stays
    res = gis(["stats", "planning", "land-use", "--source", "lots", "--zones", "wards_2019", "--table",
               "land_use_d7"], plan_db, tmp_path)
    assert res.returncode == 2 and "--replace" in res.stderr and "Traceback" not in res.stderr
    res = gis(["stats", "planning", "land-use", "--source", "lots", "--zones", "wards_2019", "--by", "group",
               "--table", "land_use_d7", "--replace"], plan_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert count(plan_db, "SELECT count(*) FROM stats.land_use_d7 WHERE use = 'residential'") > 0
    assert count(plan_db, "SELECT count(*) FROM stats.land_use_d7 WHERE use = 'NNO'") == 0


def test_a_failed_write_leaves_nothing_half_written(plan_db):
    lots = load_layer(plan_db, "lots")
    good = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=lots.geometry.iloc[:2].values, crs=4326)
    good.attrs = {"analysis": "test", "title": "good"}
    output.write_table(good, plan_db, "half")
    bad = gpd.GeoDataFrame({"name": ["ok", "nul \x00 byte", "x"]}, geometry=lots.geometry.iloc[:3].values, crs=4326)
    with pytest.raises(GisError, match="rolled back"):
        output.write_table(bad, plan_db, "half", replace=True)
    assert count(plan_db, "SELECT count(*) FROM stats.half") == 2  # the old version, whole
    with pytest.raises(GisError, match="rolled back"):
        output.write_table(bad, plan_db, "never")
    assert count(plan_db, "SELECT count(*) FROM pg_class WHERE relname = 'never'") == 0
    assert count(plan_db, "SELECT count(*) FROM gis_meta.collections WHERE id = 'stats-never'") == 0
    assert count(plan_db, "SELECT count(*) FROM stats.analysis_outputs WHERE table_name = 'never'") == 0
    # a table no analysis wrote is never touched
    with psycopg.connect(plan_db) as conn:
        conn.execute("CREATE TABLE stats.foreign_table (x int)")
    with pytest.raises(InputError, match="not written by an analysis"):
        output.write_table(good, plan_db, "foreign_table", replace=True)
    with pytest.raises(InputError, match="lower-case"):
        output.write_table(good, plan_db, "Bad-Name")
    with pytest.raises(InputError, match="no geometry"):
        output.write_table(good.drop(columns="geometry").pipe(lambda d: __import__("pandas").DataFrame(d)),
                           plan_db, "nogeom")


def test_file_outputs_carry_the_metadata(real_db, tmp_path):
    res = registry.run("planning.population", real_db, {"zones": "districts"})
    assert res.attrs["units"]["density_per_km2"] == "persons/km2"
    gpkg = output.write_file(res, tmp_path / "pop.gpkg")
    info = pyogrio.read_info(gpkg)
    assert info["features"] == 24
    meta = json.loads(pyogrio.read_info(gpkg, layer="pop")["layer_metadata"]["GIS_ANALYSIS"])
    assert meta["analysis"] == "planning.population" and meta["units"]["area_km2"] == "km2"
    pq_path = output.write_file(res, tmp_path / "pop.parquet")
    md = pq.read_schema(pq_path).metadata
    assert b"geo" in md and json.loads(md[b"gis:analysis"])["total_population"] == 8_993_082
    assert len(gpd.read_parquet(pq_path)) == 24
    csv = output.write_file(res, tmp_path / "pop.csv")
    assert "wkt" in csv.read_text().splitlines()[0]
    assert json.loads((tmp_path / "pop.csv.meta.json").read_text())["units"]["population"] == "persons"
    gj = output.write_file(res, tmp_path / "pop.geojson")
    assert len(gpd.read_file(gj)) == 24
    with pytest.raises(InputError, match="unknown format"):
        output.write_file(res, tmp_path / "pop.xlsx")
    with pytest.raises(InputError, match="does not exist"):
        output.write_file(res, tmp_path / "no" / "pop.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp left


def test_cli_runs_health_and_logistics_to_files(real_db, tmp_path):
    res = gis(["stats", "health", "access", "--worldpop", str(WORLDPOP), "--zones", "wards_2019", "--aoi", CENTRE,
               "--out", str(tmp_path / "access.gpkg")], real_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(gpd.read_file(tmp_path / "access.gpkg")) > 10
    res = gis(["stats", "logistics", "od-matrix", "--zones", "wards_2019", "--aoi", CENTRE, "--no-directed",
               "--dask", "synchronous", "--out", str(tmp_path / "od.parquet")], real_db, tmp_path)
    assert res.returncode == 0, res.stderr
    od = gpd.read_parquet(tmp_path / "od.parquet")
    assert (od[od["origin"] == od["destination"]]["time_min"] == 0).all()
    res = gis(["stats", "logistics", "p-median", "--k", "2", "--worldpop", str(WORLDPOP), "--zones", "wards_2019",
               "--aoi", CENTRE, "--out", str(tmp_path / "sites.geojson")], real_db, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "before" in res.stdout and len(gpd.read_file(tmp_path / "sites.geojson")) == 2


@pytest.mark.parametrize(("args", "fragment"), [
    (["planning", "land-use", "--zones", "wards_1999"], "zones must be one of"),
    (["planning", "land-use", "--source", "lots", "--aoi", "106.7,10.7,106.7,10.7"], "area of interest"),
    (["planning", "land-use", "--source", "lots", "--aoi", "0,0,1,1"], "no features in the area of interest"),
    (["health", "access", "--worldpop", "/no/such.tif"], "does not exist"),
    (["health", "access", "--worldpop", str(WORLDPOP), "--categories", "helipad"], "facility set has no points"),
    (["health", "access", "--worldpop", str(WORLDPOP), "--minutes", "10,abc"], "minutes must be a number"),
    (["logistics", "p-median", "--worldpop", str(WORLDPOP), "--k", "0"], "k must be >= 1"),
    (["logistics", "p-median", "--worldpop", str(WORLDPOP), "--k", "2.5"], "k must be an integer"),
    (["logistics", "service-areas", "--minutes", "700"], "minutes must be"),
    (["planning", "land-use", "--out", "x.xlsx"], "unknown format"),
])
def test_cli_bad_input_is_a_clear_error(real_db, tmp_path, args, fragment):
    res = gis(["stats", *args], real_db, tmp_path)
    assert res.returncode in (1, 2), (res.stdout, res.stderr)
    assert fragment in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "error: " in res.stderr


def test_registry_declarations():
    assert {a.group for a in registry.ANALYSES} == set(registry.GROUPS) == {"planning", "health", "logistics", "raster"}
    d = registry.get_analysis("health.access").describe()
    assert d["inputs"]["minutes"]["schema"]["items"]["exclusiveMinimum"] == 0
    assert d["inputs"]["worldpop"]["minOccurs"] == 1
    assert d["outputs"]["result"]["schema"]["contentMediaType"] == "application/geo+json"
    a = registry.get_analysis("logistics.p-median")
    assert a.validate({"k": "3", "worldpop": "x.tif"})["k"] == 3
    with pytest.raises(InputError, match="no parameter 'colour'"):
        a.validate({"colour": "red", "worldpop": "x"})
    with pytest.raises(InputError, match="needs the parameter worldpop"):
        a.validate({})
    with pytest.raises(NotFoundError, match="Unknown analysis"):
        registry.get_analysis("health.magic")
    with pytest.raises(NotFoundError, match="Unknown layer"):
        get_layer("rivers")
    for a in registry.ANALYSES:  # every runner exists and every input is a keyword of it
        import importlib
        import inspect

        mod, fn = a.runner.split(":")
        sig = inspect.signature(getattr(importlib.import_module(mod), fn))
        assert {p.name for p in a.inputs} <= set(sig.parameters), a.id


def test_unknown_layer_and_empty_aoi(real_db):
    with pytest.raises(NotFoundError, match="Unknown layer 'rivers'"):
        load_layer(real_db, "rivers")
    from gis.analysis._common import EmptyInputError

    with pytest.raises(EmptyInputError, match="no features"):
        load_layer(real_db, "lots", aoi="0,0,1,1")
    with pytest.raises(EmptyInputError, match="no wards_2025 unit"):
        load_layer(real_db, "lots", aoi="ward:99999")
    with pytest.raises(InputError, match="neither a bounding box"):
        load_layer(real_db, "lots", aoi="somewhere nice")
    assert len(load_layer(real_db, "lots", aoi=shapely.box(106.7, 10.7, 106.8, 10.8).wkt)) > 0
