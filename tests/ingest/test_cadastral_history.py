"""Cadastral history and lineage: a later edition splits a parcel and changes a land use; older
editions never revert newer data; owners live in private.parcel_owners only."""

from __future__ import annotations

import pyogrio
import pytest
from ingest_helpers import count, ingest, rows, runs, snapshot

from gis import sample

C = sample.SAMPLE_COMMUNE
SHEET = sample.UPDATE_SHEET
SPLIT = sample.UPDATE_SPLIT_PARCEL
CHANGED = sample.UPDATE_LAND_USE_PARCEL
PER_SHEET = 150


@pytest.fixture
def loaded(dsn, demo, tmp_path):
    """cadastral.gpkg valid from 2024-01-01, then cadastral_update.gpkg valid from 2025-01-01."""
    first = ingest(dsn, "cadastral", demo["cadastral"], tmp_path, valid_from=_d("2024-01-01"))
    second = ingest(dsn, "cadastral", demo["cadastral_update"], tmp_path, valid_from=_d("2025-01-01"))
    return first, second


def _d(s: str):
    from datetime import datetime, timezone

    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def _versions(dsn, number):
    return rows(dsn, "SELECT parcel_id, land_use, valid_from::date::text, valid_to::date::text "
                     "FROM cadastral.parcels WHERE commune_code = %s AND sheet_no = %s AND parcel_no = %s "
                     "ORDER BY valid_from", (C, SHEET, number))


def test_split_retire_and_new_version(dsn, loaded):
    first, second = loaded
    assert (first.inserted, first.outcome) == (600, "loaded")
    assert (second.inserted, second.updated, second.retired) == (2, 1, 1)
    assert second.unchanged == PER_SHEET - 2  # 151 features: 148 the same, parcel 10 changed, 2 new
    # the split parent is retired, not deleted
    parent = _versions(dsn, SPLIT)
    assert len(parent) == 1
    parent_id, _, vf, vt = parent[0]
    assert (vf, vt) == ("2024-01-01", "2025-01-01")
    # its two children, in force, with lineage rows to it
    kids = {n: _versions(dsn, n) for n in (PER_SHEET + 1, PER_SHEET + 2)}
    for n, v in kids.items():
        assert len(v) == 1 and v[0][2] == "2025-01-01" and v[0][3] is None, (n, v)
    lineage = rows(dsn, "SELECT child_id, parent_id, event FROM cadastral.parcel_lineage ORDER BY child_id")
    assert lineage == [(kids[PER_SHEET + 1][0][0], parent_id, "split"),
                       (kids[PER_SHEET + 2][0][0], parent_id, "split")]
    # the land-use change: two versions, the old one closed, the new one in force
    v = _versions(dsn, CHANGED)
    assert len(v) == 2
    (old_id, old_lu, old_from, old_to), (new_id, new_lu, new_from, new_to) = v
    assert (old_from, old_to, new_from, new_to) == ("2024-01-01", "2025-01-01", "2025-01-01", None)
    assert old_lu != new_lu
    # the published view shows only what is in force
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels_current") == 600 - 1 + 2
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels_current WHERE sheet_no = %s AND parcel_no = %s",
                 (SHEET, SPLIT)) == 0
    assert rows(dsn, "SELECT land_use FROM cadastral.parcels_current WHERE sheet_no = %s AND parcel_no = %s",
                (SHEET, CHANGED)) == [(new_lu,)]
    # other sheets are untouched by an edition of sheet 1
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels WHERE sheet_no <> %s AND valid_to IS NOT NULL",
                 (SHEET,)) == 0
    log = runs(dsn)
    assert [r["n_retired"] for r in log] == [0, 1]
    assert [r["n_updated"] for r in log] == [0, 1]


def test_new_land_use_matches_the_update_file(dsn, demo, loaded):
    upd = pyogrio.read_dataframe(demo["cadastral_update"], layer=sample.LAYER_PARCELS)
    want = upd.loc[upd["SoThuTuThua"] == CHANGED, "KyHieuMucDichSuDung"].item()
    assert rows(dsn, "SELECT land_use FROM cadastral.parcels_current WHERE sheet_no = %s AND parcel_no = %s",
                (SHEET, CHANGED)) == [(want,)]


@pytest.mark.parametrize("order", [("cadastral", "cadastral_update"), ("cadastral_update", "cadastral")])
def test_rerunning_either_edition_changes_nothing(dsn, demo, tmp_path, loaded, order):
    before = snapshot(dsn)
    dates = {"cadastral": _d("2024-01-01"), "cadastral_update": _d("2025-01-01")}
    for key in order + order:
        result = ingest(dsn, "cadastral", demo[key], tmp_path, valid_from=dates[key])
        assert result.outcome == "unchanged", (key, result.summary())
        assert (result.inserted, result.updated, result.retired) == (0, 0, 0)
    assert snapshot(dsn) == before
    # the older edition did not bring back the retired parent nor the old land use
    assert _versions(dsn, SPLIT)[0][3] == "2025-01-01"
    assert len(_versions(dsn, CHANGED)) == 2


def test_old_edition_without_valid_from_does_not_revert(dsn, demo, tmp_path, loaded):
    """Re-running the 2024 edition dated today would make it the newest: that is a real change of
    the register (parcel 1/1 back, land use back), recorded as new versions, not silently lost."""
    before_current = count(dsn, "SELECT count(*) FROM cadastral.parcels_current")
    result = ingest(dsn, "cadastral", demo["cadastral"], tmp_path)
    assert result.outcome == "loaded"
    # history is only ever appended: no row of the earlier editions was deleted
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels") >= 603
    assert count(dsn, "SELECT count(*) FROM cadastral.parcels_current") >= before_current


def test_owners_only_in_private_schema(dsn, demo, loaded):
    src = pyogrio.read_dataframe(demo["cadastral"], layer=sample.LAYER_PARCELS)
    names = set(src["TenChuSuDung"].dropna())
    ids = set(src["SoGiayTo"].dropna())
    assert names and ids
    assert count(dsn, "SELECT count(DISTINCT owner_name) FROM private.parcel_owners") >= len(names) - 5
    stored_ids = {r[0] for r in rows(dsn, "SELECT id_number FROM private.parcel_owners WHERE id_number IS NOT NULL")}
    assert ids <= stored_ids
    # every owner row points at a parcel; the new owner of the eastern half is there
    assert count(dsn, "SELECT count(*) FROM private.parcel_owners o LEFT JOIN cadastral.parcels p "
                      "USING (parcel_id) WHERE p.parcel_id IS NULL") == 0
    # no column of any table or view of the cadastral schema holds a name or an id number
    columns = rows(dsn, "SELECT table_name, column_name FROM information_schema.columns "
                        "WHERE table_schema = 'cadastral'")
    assert columns
    for table, column in columns:
        assert column not in ("owner_name", "id_number"), (table, column)
    with_text = [(t, c) for t, c in columns
                 if t in ("parcels", "parcels_current", "parcel_lineage")]
    sample_names = sorted(names)[:25]
    sample_ids = sorted(ids)[:25]
    for table, column in with_text:
        hits = count(dsn, f"SELECT count(*) FROM cadastral.{table} t WHERE t.{column}::text = ANY(%s) "
                          f"OR t.{column}::text = ANY(%s)", (sample_names, sample_ids))
        assert hits == 0, (table, column)
    # nor anywhere in a whole row's text
    for table in ("parcels", "parcels_current"):
        for needle in sample_names[:5] + sample_ids[:5]:
            assert count(dsn, f"SELECT count(*) FROM cadastral.{table} t WHERE t::text LIKE %s",
                         (f"%{needle}%",)) == 0, (table, needle)


def test_correction_of_the_same_edition_updates_in_place(dsn, demo, tmp_path):
    """A corrected file of the same edition date fixes the version in force instead of opening a new
    version with an empty validity period; owners follow the correction."""
    import geopandas as gpd

    ingest(dsn, "cadastral", demo["cadastral"], tmp_path, valid_from=_d("2024-01-01"))
    fixed = gpd.read_file(demo["cadastral"], layer=sample.LAYER_PARCELS)
    row = fixed.index[(fixed["SoHieuToBanDo"] == 3) & (fixed["SoThuTuThua"] == 5)][0]
    fixed.loc[row, "KyHieuMucDichSuDung"] = "DGD" if fixed.loc[row, "KyHieuMucDichSuDung"] != "DGD" else "ODT"
    fixed.loc[row, "TenChuSuDung"] = "Trần Thị Sửa Lỗi"
    path = tmp_path / "fixed.gpkg"
    fixed.to_file(path, layer=sample.LAYER_PARCELS)
    result = ingest(dsn, "cadastral", path, tmp_path, valid_from=_d("2024-01-01"))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 599)
    versions = rows(dsn, "SELECT parcel_id, land_use, valid_from::date::text, valid_to FROM cadastral.parcels "
                         "WHERE commune_code = %s AND sheet_no = 3 AND parcel_no = 5", (C,))
    assert len(versions) == 1 and versions[0][1] == fixed.loc[row, "KyHieuMucDichSuDung"]
    assert versions[0][2:] == ("2024-01-01", None)
    owners = rows(dsn, "SELECT owner_name FROM private.parcel_owners WHERE parcel_id = %s", (versions[0][0],))
    assert owners == [("Trần Thị Sửa Lỗi",)]
    again = ingest(dsn, "cadastral", path, tmp_path, valid_from=_d("2024-01-01"))
    assert again.outcome == "unchanged"
