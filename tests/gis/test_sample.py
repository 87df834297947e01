"""The synthetic demo dataset (gis.sample): files, CRS, keys, validity, determinism, large files."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gis import sample

KEY = ["MaXa", "SoHieuToBanDo", "SoThuTuThua"]
GEOJSON = ("buildings", "roads", "poi")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return sample.generate(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def parcels(demo):
    return pyogrio.read_dataframe(demo["cadastral"], layer=sample.LAYER_PARCELS)


def _read(path, **kw):
    return pyogrio.read_dataframe(path, **kw)


def test_files_exist_and_open(demo):
    assert set(demo) == {"cadastral", "cadastral_update", "planning", *GEOJSON, "readme"}
    for kind, path in demo.items():
        assert path.is_file() and path.parent == demo["readme"].parent, kind
        if kind != "readme":
            assert pyogrio.read_info(path)["features"] > 0, kind
    assert pyogrio.list_layers(demo["cadastral"])[:, 0].tolist() == ["thua_dat"]
    assert pyogrio.list_layers(demo["cadastral_update"])[:, 0].tolist() == ["thua_dat"]
    assert pyogrio.list_layers(demo["planning"])[:, 0].tolist() == ["quy_hoach"]
    assert sum(p.stat().st_size for p in demo.values()) < 2_000_000


def test_crs_and_geometry_types(demo):
    expected = {"cadastral": ("EPSG:9210", "Polygon"), "cadastral_update": ("EPSG:9210", "Polygon"),
                "planning": ("EPSG:9210", "Polygon"), "buildings": ("EPSG:4326", "Polygon"),
                "roads": ("EPSG:4326", "LineString"), "poi": ("EPSG:4326", "Point")}
    for kind, (crs, geom_type) in expected.items():
        info = pyogrio.read_info(demo[kind])
        assert (info["crs"], info["geometry_type"]) == (crs, geom_type), kind


def test_cadastral_schema(parcels, demo):
    assert list(parcels.columns) == [*sample.CADASTRAL_FIELDS, "geometry"]
    assert len(parcels) == 4 * 150
    assert (parcels["MaXa"] == sample.SAMPLE_COMMUNE).all()
    assert set(parcels["KyHieuMucDichSuDung"]) == {
        "ODT", "TMD", "DGD", "DYT", "CLN", "DGT", "SON", "DKV", "TON"}
    assert parcels["KyHieuMucDichSuDung"].value_counts().index[0] == "ODT"
    assert parcels["KyHieuDoiTuong"].value_counts().index[0] == "GDC"
    assert {"GDC", "TKT", "UBS", "TCN"} <= set(parcels["KyHieuDoiTuong"])
    persons = parcels[parcels["KyHieuDoiTuong"] == "GDC"]
    assert persons["SoGiayTo"].str.fullmatch(r"\d{12}").all()
    assert persons["TenChuSuDung"].str.split().str.len().ge(3).all()
    assert parcels["DiaChiThuaDat"].dropna().str.endswith(", Phường An Khánh").all()
    info = pyogrio.read_info(demo["cadastral"])
    assert dict(zip(info["fields"], info["ogr_types"]))["SoHieuToBanDo"] == "OFTInteger"
    assert dict(zip(info["fields"], info["ogr_types"]))["DienTich"] == "OFTReal"


def test_natural_key_unique(parcels):
    assert not parcels.duplicated(KEY).any()


def test_exactly_one_invalid_parcel(parcels):
    invalid = parcels[~shapely.is_valid(parcels.geometry.values)]
    assert len(invalid) == 1
    assert tuple(invalid[KEY].iloc[0]) == sample.INVALID_PARCEL
    assert (shapely.get_num_coordinates(parcels.geometry.values) == 5).all()  # quadrilaterals


def test_legal_area_close_to_geometric_area(parcels):
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    ratio = valid["DienTich"] / valid.geometry.area
    assert ((ratio - 1).abs() <= 0.02).all()
    assert ((ratio - 1).abs() < 1e-3).mean() > 0.7       # most are the surveyed area
    assert (valid["DienTich"] == valid["DienTich"].round(1)).all()


def test_valid_parcels_tile_without_overlap(parcels):
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    assert valid.union_all().area == pytest.approx(valid.area.sum(), rel=1e-9)


def test_everything_reprojects_into_hcmc(demo):
    to_wgs84 = Transformer.from_crs("EPSG:9210", "EPSG:4326", always_xy=True)
    for kind in ("cadastral", "cadastral_update", "planning"):
        xy = shapely.get_coordinates(_read(demo[kind]).geometry.values)
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        assert np.isfinite(lon).all() and np.isfinite(lat).all()
        assert 106.5 < lon.min() and lon.max() < 107.0, kind
        assert 10.6 < lat.min() and lat.max() < 11.0, kind
    for kind in GEOJSON:
        xy = shapely.get_coordinates(_read(demo[kind]).geometry.values)
        assert (106.5 < xy[:, 0]).all() and (xy[:, 0] < 107.0).all(), kind
        assert (10.6 < xy[:, 1]).all() and (xy[:, 1] < 11.0).all(), kind


def test_deterministic(demo, tmp_path):
    again = sample.generate(tmp_path)
    for kind, path in demo.items():
        if kind == "readme":
            assert path.read_text(encoding="utf-8") == again[kind].read_text(encoding="utf-8")
            continue
        a, b = _read(path), _read(again[kind])
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all(), kind
        assert path.read_bytes() == again[kind].read_bytes(), kind


def test_other_seed_differs(parcels, tmp_path):
    other = _read(sample.generate(tmp_path, seed=7)["cadastral"])
    assert not shapely.equals_exact(other.geometry.values, parcels.geometry.values, 0).all()


def test_update_has_split_and_changed_land_use(parcels, demo):
    update = _read(demo["cadastral_update"], layer=sample.LAYER_PARCELS)
    assert list(update.columns) == [*sample.CADASTRAL_FIELDS, "TachTuThua", "geometry"]
    assert (update["SoHieuToBanDo"] == sample.UPDATE_SHEET).all()
    assert not update.duplicated(KEY).any()
    parent_ref = f"{sample.UPDATE_SHEET}/{sample.UPDATE_SPLIT_PARCEL}"
    children = update[update["TachTuThua"].notna()]
    assert children["TachTuThua"].tolist() == [parent_ref, parent_ref]
    assert children["SoThuTuThua"].tolist() == [151, 152]
    assert sample.UPDATE_SPLIT_PARCEL not in update["SoThuTuThua"].tolist()

    old = parcels[parcels["SoHieuToBanDo"] == sample.UPDATE_SHEET]
    assert old["SoThuTuThua"].max() == 150
    parent = old[old["SoThuTuThua"] == sample.UPDATE_SPLIT_PARCEL].geometry.iloc[0]
    union = shapely.union_all(children.geometry.values)
    assert union.symmetric_difference(parent).area < 1e-6
    assert children["DienTich"].sum() == pytest.approx(parent.area, rel=0.002)

    both = update.merge(old, on=KEY, suffixes=("_new", "_old"))
    assert len(both) == len(old) - 1
    changed = both[both["KyHieuMucDichSuDung_new"] != both["KyHieuMucDichSuDung_old"]]
    assert changed["SoThuTuThua"].tolist() == [sample.UPDATE_LAND_USE_PARCEL]
    same = both.drop(index=changed.index)
    for field in sample.CADASTRAL_FIELDS[3:]:
        assert same[f"{field}_new"].equals(same[f"{field}_old"]), field


def test_planning(demo, parcels):
    plan = _read(demo["planning"], layer=sample.LAYER_PLANNING)
    assert list(plan.columns) == [*sample.PLANNING_FIELDS, "geometry"]
    assert 20 <= len(plan) <= 40
    assert plan["KyHieuLo"].is_unique
    assert plan["SoQuyetDinh"].str.fullmatch(r"\d+/QĐ-UBND").all()
    assert pd.to_datetime(plan["NgayPheDuyet"], format="%Y-%m-%d").notna().all()
    assert set(plan["MaChucNang"]) == {"ODT", "HH", "CX", "GD", "YT", "GT"}
    assert plan["MatDoXD"].between(0, 100).all() and (plan["HeSoSDD"] >= 0).all()
    assert (plan["DienTich"] - plan.area).abs().max() < 0.1
    assert plan.union_all().area == pytest.approx(plan.area.sum())   # lots do not overlap
    valid = parcels[shapely.is_valid(parcels.geometry.values)]
    assert plan.union_all().contains(valid.geometry.centroid).all()


def test_buildings_roads_poi(demo, parcels):
    buildings = _read(demo["buildings"])
    assert 250 <= len(buildings) <= 350 and buildings["osm_id"].is_unique
    assert buildings["osm_id"].str.fullmatch(r"way/\d+").all()
    assert set(buildings["building"]) == {"house", "apartments", "commercial", "school", "hospital"}
    assert buildings["height"].isna().any() and buildings["height"].notna().any()
    assert buildings["name"].notna().any() and buildings["name"].isna().any()
    wgs = parcels.to_crs("EPSG:4326")
    joined = buildings.sjoin(wgs, predicate="within")
    assert len(joined) == len(buildings) and joined.index.is_unique

    roads = _read(demo["roads"])
    assert set(roads["highway"]) == {"primary", "secondary", "tertiary", "residential", "service"}
    assert set(roads["oneway"]) <= {"yes", "no"} and "Đường Mai Chí Thọ" in set(roads["name"])
    # one connected network: union-find over the line end points
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for line in roads.geometry:
        coords = shapely.get_coordinates(line)
        parent[find(tuple(coords[0]))] = find(tuple(coords[-1]))
    assert len({find(x) for x in list(parent)}) == 1
    assert not roads.sjoin(wgs, predicate="crosses").shape[0]   # streets run between parcels

    poi = _read(demo["poi"])
    assert 12 <= len(poi) <= 20 and poi["osm_id"].is_unique
    assert {"hospital", "clinic", "school", "kindergarten", "university", "marketplace"} == set(poi["amenity"])
    hospitals = poi["amenity"] == "hospital"
    assert poi.loc[hospitals, "beds"].notna().all() and poi.loc[~hospitals, "beds"].isna().all()
    assert poi.sjoin(wgs, predicate="within").shape[0] == len(poi)


def test_text_is_nfc_utf8_and_readme(demo):
    for kind in ("cadastral", "cadastral_update", "planning", *GEOJSON):
        frame = _read(demo[kind])
        for column in frame.columns.drop("geometry"):
            for value in frame[column].dropna():
                if isinstance(value, str):
                    assert unicodedata.is_normalized("NFC", value), (kind, column, value)
    readme = demo["readme"].read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", readme)
    for needle in ("synthetic", "gis.sample.generate", "CC0", "EPSG:9210", "EPSG:4326",
                   *sample.CADASTRAL_FIELDS, *sample.PLANNING_FIELDS, "TachTuThua"):
        assert needle in readme, needle


def test_iter_parcel_batches():
    batches = list(sample.iter_parcel_batches(120_000, batch_size=50_000))
    assert [len(b) for b in batches] == [50_000, 50_000, 20_000]
    allp = pd.concat(batches, ignore_index=True)
    assert list(allp.columns) == [*sample.CADASTRAL_FIELDS, "geometry"]
    assert not allp.duplicated(KEY).any()
    assert allp["MaXa"].nunique() > 3
    assert all(b.crs.to_epsg() == 9210 for b in batches)
    geoms = allp.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()          # Polygon, not MultiPolygon
    ratio = allp["DienTich"] / allp.geometry.area
    assert ((ratio - 1).abs() <= 0.02).all()
    lon, lat = Transformer.from_crs("EPSG:9210", "EPSG:4326", always_xy=True).transform(
        *allp.geometry.total_bounds.reshape(2, 2).T)
    assert 106.6 <= lon.min() and lon.max() <= 106.85 and 10.7 <= lat.min() and lat.max() <= 10.9


def test_iter_parcel_batches_independent_of_batch_size():
    a = pd.concat(sample.iter_parcel_batches(1_300, batch_size=1_300), ignore_index=True)
    b = pd.concat(sample.iter_parcel_batches(1_300, batch_size=333), ignore_index=True)
    c = pd.concat(sample.iter_parcel_batches(1_000, batch_size=1_000), ignore_index=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, 0).all()
    pd.testing.assert_frame_equal(a.drop(columns="geometry").iloc[:1000], c.drop(columns="geometry"))


def test_write_parcels_flatgeobuf(tmp_path):
    seen = []
    path = sample.write_parcels(tmp_path / "p.fgb", 10_000, driver="FlatGeobuf",
                                progress=lambda done, total: seen.append((done, total)),
                                batch_size=4_000)
    assert seen == [(4_000, 10_000), (8_000, 10_000), (10_000, 10_000)]
    back = pyogrio.read_dataframe(path)
    assert len(back) == 10_000 and back.crs.to_epsg() == 9210
    assert not back.duplicated(KEY).any()


def test_write_parcels_gpkg(tmp_path):
    path = sample.write_parcels(tmp_path / "p.gpkg", 2_500, batch_size=1_000)
    info = pyogrio.read_info(path, layer=sample.LAYER_PARCELS)
    assert info["features"] == 2_500 and info["crs"] == "EPSG:9210"
    assert info["geometry_type"] == "Polygon"
    with pytest.raises(ValueError):
        sample.write_parcels(tmp_path / "p.shp", 10, driver="ESRI Shapefile")
