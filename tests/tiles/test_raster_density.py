"""Raster layers of counts drawn per km2 (migration 0013): the demo's 3 arc-second population grid on
the same persons/km2 scale as WorldPop's 1 km grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import psycopg
import pytest
import rasterio

from tiles import tms as gtms
from tiles.layers import RasterItem, load_raster_layers
from tiles.raster import cell_area_km2, render, tile_data


def test_the_population_layer_is_drawn_per_km2(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        layers = load_raster_layers(conn)
    assert layers["population"].per_km2 and layers["population"].unit == "persons/km2"
    assert layers["population"].rescale == (0, 40000)


def test_cell_areas():
    geo = RasterItem("c", "i", "h", "s", (0, 0, 1, 1), None, None, (1 / 1200, 1 / 1200), 4326)
    assert cell_area_km2(geo, 0.0) == pytest.approx(111.320 * 110.574 / 1200**2)
    assert cell_area_km2(geo, 60.0) == pytest.approx(cell_area_km2(geo, 0.0) / 2)  # cos 60 = 1/2
    utm = dataclasses.replace(geo, resolution=(100.0, 100.0), epsg=32648)
    assert cell_area_km2(utm, 10.8) == pytest.approx(0.01)
    assert cell_area_km2(dataclasses.replace(geo, resolution=None), 10.8) is None


def test_counts_per_cell_become_densities(dsn, sample_paths):
    """The sample grid holds people per cell (at most a few hundred): drawn per km2 its values reach
    the tens of thousands of the layer's scale, each exactly the count over its cell's area."""
    path = sample_paths["population"]
    with rasterio.open(path) as src:
        res, epsg = (abs(src.res[0]), abs(src.res[1])), src.crs.to_epsg()
        (lon0, lat0, lon1, lat1), nodata = src.bounds, src.nodata
    with psycopg.connect(dsn, autocommit=True) as conn:
        density = load_raster_layers(conn)["population"]
    counts = dataclasses.replace(density, per_km2=False)
    item = RasterItem("worldpop", "sample", "x", "x", (lon0, lat0, lon1, lat1), None, nodata, res, epsg)
    tms = gtms.get_tms("WebMercatorQuad")
    tile = tms.tile((lon0 + lon1) / 2, (lat0 + lat1) / 2, 12)
    t = gtms.check_tile("WebMercatorQuad", 12, tile.y, tile.x)
    raw, dens = tile_data(path, counts, item, t), tile_data(path, density, item, t)
    assert raw is not None and dens is not None
    west, south, east, north = tms.bounds(t.x, t.y, t.z)
    area = cell_area_km2(item, (south + north) / 2)
    assert 0.008 < area < 0.009  # a 3 arc-second cell at HCMC's latitude
    assert np.array_equal(raw.mask, dens.mask)
    valid = raw.mask > 0
    assert np.allclose(dens.array.data[0][valid], raw.array.data[0][valid] / area, rtol=1e-6)
    assert raw.array.data[0][valid].max() < 1000 < 10_000 < dens.array.data[0][valid].max() < 80_000
    assert render(path, density, item, t) != render(path, counts, item, t)
