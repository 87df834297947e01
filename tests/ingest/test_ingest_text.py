"""Text encodings: TCVN3, VNI and decomposed Unicode all store the same NFC text; non-Vietnamese
8-bit text fails clearly and writes nothing."""

from __future__ import annotations

import unicodedata
import warnings

import geopandas as gpd
import numpy as np
import pytest
from ingest_helpers import assert_clean_error, assert_nothing_written, cli, ingest, rows

from gis import sample
from gis.errors import InputError
from gis.text import encode_tcvn3, encode_vni

TEXT = ["DiaChiThuaDat", "TenChuSuDung"]
STORED = ("SELECT md5(string_agg(concat_ws('|', sheet_no, parcel_no, land_use, address), E'\\n' "
          "ORDER BY sheet_no, parcel_no)) FROM cadastral.parcels")
OWNERS = "SELECT md5(string_agg(owner_name, E'\\n' ORDER BY owner_name)) FROM private.parcel_owners"


@pytest.fixture(scope="module")
def parcels(demo):
    gdf = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS).head(60)
    assert gdf["DiaChiThuaDat"].dropna().map(lambda v: not v.isascii()).all()
    return gdf


def _shp(gdf, path, *, encoding="UTF-8", cpg: str | None = "keep"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf.to_file(path, driver="ESRI Shapefile", encoding=encoding)
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    elif cpg != "keep":
        cpg_path.write_text(cpg)
    return path


def _legacy(gdf, encode):
    """The text columns as a legacy encoding's bytes, seen as Latin-1 (written back byte for byte)."""
    out = gdf.copy()
    for c in TEXT:
        out[c] = out[c].map(lambda v: encode(v).decode("latin-1") if isinstance(v, str) else None)
    return out


@pytest.fixture(scope="module")
def reference(module_dsn, parcels, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    ingest(module_dsn, "cadastral", _shp(parcels, tmp / "nfc.shp"), tmp)
    ref = rows(module_dsn, STORED)[0][0], rows(module_dsn, OWNERS)[0][0]
    address = rows(module_dsn, "SELECT address FROM cadastral.parcels WHERE sheet_no = 1 AND parcel_no = 1")[0][0]
    assert address == unicodedata.normalize("NFC", address) and "Đường" in address
    return ref


@pytest.mark.parametrize(("case", "expected_encoding"), [
    ("tcvn3", "tcvn3"), ("vni", "vni"), ("nfd", "utf-8"), ("nfd-geojson", "unicode"), ("tcvn3-explicit", "tcvn3"),
])
def test_encodings_store_identical_nfc_text(dsn, parcels, reference, tmp_path, case, expected_encoding):
    opts = {}
    if case in ("tcvn3", "tcvn3-explicit"):
        path = _shp(_legacy(parcels, encode_tcvn3), tmp_path / "tcvn3.shp", encoding="latin1", cpg=None)
        raw = path.with_suffix(".dbf").read_bytes()
        assert "Đường".encode() not in raw and encode_tcvn3("Đường") in raw  # really TCVN3 on disk
        if case == "tcvn3-explicit":
            opts["encoding"] = "tcvn3"
    elif case == "vni":
        path = _shp(_legacy(parcels, encode_vni), tmp_path / "vni.shp", encoding="latin1", cpg=None)
        assert encode_vni("Đường") in path.with_suffix(".dbf").read_bytes()
    else:
        nfd = parcels.copy()
        for c in TEXT:
            nfd[c] = nfd[c].map(lambda v: unicodedata.normalize("NFD", v) if isinstance(v, str) else None)
        if case == "nfd":
            path = _shp(nfd, tmp_path / "nfd.shp")
        else:
            path = tmp_path / "nfd.geojson"
            nfd.to_file(path, driver="GeoJSON")
        assert unicodedata.normalize("NFD", "Đường").encode() in path.read_bytes() or case == "nfd"
    result = ingest(dsn, "cadastral", path, tmp_path, **opts)
    assert result.inserted == 60
    assert result.text_encoding == expected_encoding
    assert (rows(dsn, STORED)[0][0], rows(dsn, OWNERS)[0][0]) == reference
    # every stored text is NFC
    for (address,) in rows(dsn, "SELECT address FROM cadastral.parcels WHERE address IS NOT NULL"):
        assert unicodedata.is_normalized("NFC", address)


def test_explicit_encoding_through_the_cli(dsn, parcels, reference, tmp_path):
    path = _shp(_legacy(parcels, encode_tcvn3), tmp_path / "abc.shp", encoding="latin1", cpg=None)
    res = cli(["ingest", "cadastral", str(path), "--encoding", "tcvn3"], dsn, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "text tcvn3" in res.stdout
    assert rows(dsn, STORED)[0][0] == reference[0]


def test_unknown_encoding_option(dsn, parcels, tmp_path):
    path = _shp(parcels, tmp_path / "p.shp")
    res = cli(["ingest", "cadastral", str(path), "--encoding", "klingon"], dsn, tmp_path)
    assert_clean_error(res, "Unknown text encoding 'klingon'")
    assert_nothing_written(dsn)


def test_random_high_bytes_with_utf8_cpg_fail_clearly(dsn, parcels, tmp_path):
    rng = np.random.default_rng(7)
    junk = parcels.copy()
    junk["DiaChiThuaDat"] = [bytes(rng.integers(0x80, 0x100, 14).astype(np.uint8)).decode("latin-1")
                             for _ in range(len(junk))]
    path = _shp(junk, tmp_path / "junk.shp", encoding="latin1", cpg="UTF-8")
    with pytest.raises(InputError, match="not UTF-8 and does not look like TCVN3") as exc:
        ingest(dsn, "cadastral", path, tmp_path)
    assert "--encoding" in exc.value.message
    assert_nothing_written(dsn)
    res = cli(["ingest", "cadastral", str(path)], dsn, tmp_path)
    assert_clean_error(res, "not UTF-8", "--encoding")
    assert_nothing_written(dsn)


def test_invalid_utf8_in_geojson_fails_clearly(dsn, parcels, tmp_path):
    path = tmp_path / "bad.geojson"
    parcels.to_crs(4326).head(5).to_file(path, driver="GeoJSON")
    data = path.read_bytes().replace("Đường".encode(), b"\xc4\x90\xff\xfeng", 1)
    path.write_bytes(data)
    res = cli(["ingest", "cadastral", str(path)], dsn, tmp_path)
    assert_clean_error(res)
    assert "utf-8" in res.stderr.lower() or "cannot be read" in res.stderr.lower(), res.stderr
    assert_nothing_written(dsn)
