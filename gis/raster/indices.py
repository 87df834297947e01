"""Spectral indices on chunked xarray/dask: NDVI, NDBI, NDWI and a built-up mask.

Rasters are opened lazily with rioxarray in dask chunks (nodata masked, scale and offset
applied), so an index of a scene larger than memory is computed and written chunk by chunk.

* NDVI = (NIR - red) / (NIR + red): vegetation;
* NDBI = (SWIR16 - NIR) / (SWIR16 + NIR): built-up and bare surfaces;
* NDWI = (green - NIR) / (green + NIR) (McFeeters): open water;
* built-up mask: NDBI > ``ndbi_min`` and NDVI < ``ndvi_max`` and NDWI < ``ndwi_max``
  (1 built-up, 0 not, NaN nodata).

Bands are found by their ``eo:common_name`` (blue, green, red, nir, swir16) in the catalog, or
by the band names of a sensor profile (B03, B04, B08, B11 for Sentinel-2).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gis.errors import InputError
from gis.raster.sensors import SENSORS

__all__ = [
    "INDICES",
    "BuiltUpRule",
    "band_lookup",
    "open_raster",
    "spectral_indices",
    "write_dataset",
]

#: Index name -> (band a, band b) of (a - b) / (a + b).
INDICES: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),
    "ndbi": ("swir16", "nir"),
    "ndwi": ("green", "nir"),
}


@dataclass(frozen=True)
class BuiltUpRule:
    """Thresholds of the built-up mask."""

    ndbi_min: float = 0.0
    ndvi_max: float = 0.35
    ndwi_max: float = 0.0


def open_raster(path: str | Path, chunks: int | dict = 1024):
    """Open a raster lazily as a dask-backed DataArray (band, y, x), masked and scaled."""
    import rioxarray

    ch = chunks if isinstance(chunks, dict) else {"band": 1, "x": chunks, "y": chunks}
    try:
        da = rioxarray.open_rasterio(path, chunks=ch, mask_and_scale=True, lock=False)
    except Exception as exc:
        raise InputError(f"The raster {Path(path).name} cannot be opened: {exc}") from None
    return da


def band_lookup(da, bands_meta: Sequence[dict[str, Any]] | None = None) -> dict[str, int]:
    """Common name (and name) -> 0-based band position."""
    names = list(da.attrs.get("long_name") or [])
    if isinstance(names, str):
        names = [names]
    out: dict[str, int] = {}
    common_of = {
        b.name.lower(): b.common_name for s in SENSORS.values() for b in s.bands if b.common_name
    }
    for i in range(da.sizes["band"]):
        meta = bands_meta[i] if bands_meta and i < len(bands_meta) else {}
        name = str(meta.get("name") or (names[i] if i < len(names) else f"b{i + 1}"))
        common = meta.get("eo:common_name") or common_of.get(name.lower())
        out[name.lower()] = i
        if common:
            out.setdefault(str(common).lower(), i)
    return out


def _nd(a, b):
    s = a + b
    return ((a - b) / s.where(s != 0)).astype("float32")


def spectral_indices(
    da,
    *,
    indices: Sequence[str] = ("ndvi", "ndbi", "ndwi", "built_up"),
    bands_meta: Sequence[dict[str, Any]] | None = None,
    rule: BuiltUpRule = BuiltUpRule(),
):
    """Lazy spectral indices of a multi-band DataArray (from :func:`open_raster`).

    Parameters
    ----------
    da : xarray.DataArray
        (band, y, x), reflectance (scale applied), NaN for nodata.
    indices : sequence of str
        Among ``ndvi``, ``ndbi``, ``ndwi``, ``built_up``.
    bands_meta : list of dict, optional
        The catalog's band objects (for ``eo:common_name``).
    rule : BuiltUpRule

    Returns
    -------
    xarray.Dataset
        One float32 variable per index, still lazy (dask) when ``da`` is.

    Raises
    ------
    gis.errors.InputError
        An unknown index, or a band the index needs is missing.

    Examples
    --------
    >>> da = open_raster("hcmc-s2-2024-01-20.tif", chunks=512)  # doctest: +SKIP
    >>> ds = spectral_indices(da)  # doctest: +SKIP
    >>> float(ds.ndvi.mean())  # doctest: +SKIP
    0.41
    """
    import xarray as xr

    wanted = [i.lower() for i in indices]
    bad = [i for i in wanted if i not in INDICES and i != "built_up"]
    if bad:
        raise InputError(f"Unknown index {bad[0]!r}: use {', '.join([*INDICES, 'built_up'])}.")
    lut = band_lookup(da, bands_meta)
    need = {
        b
        for i in wanted
        for b in (INDICES[i] if i in INDICES else ("swir16", "nir", "red", "green"))
    }
    missing = sorted(b for b in need if b not in lut)
    if missing:
        raise InputError(
            f"The raster has no {', '.join(missing)} band (bands: "
            f"{', '.join(k for k in lut)}): ingest it with --sensor or --bands."
        )

    def band(name: str):
        return da.isel(band=lut[name]).drop_vars("band").astype("float32")

    computed: dict[str, Any] = {}
    for name, (a, b) in INDICES.items():
        if name in wanted or ("built_up" in wanted):
            computed[name] = _nd(band(a), band(b))
    out = {k: computed[k] for k in wanted if k in INDICES}
    if "built_up" in wanted:
        ndvi, ndbi, ndwi = computed["ndvi"], computed["ndbi"], computed["ndwi"]
        mask = (ndbi > rule.ndbi_min) & (ndvi < rule.ndvi_max) & (ndwi < rule.ndwi_max)
        valid = ndvi.notnull() & ndbi.notnull() & ndwi.notnull()
        out["built_up"] = mask.astype("float32").where(valid)
    ds = xr.Dataset(out)
    ds = ds.rio.write_crs(da.rio.crs)
    ds = ds.rio.write_transform(da.rio.transform())
    return ds


def write_dataset(
    ds, out: str | Path, *, nodata: float = float("nan"), dtype: str = "float32", cog: bool = True
) -> Path:
    """Write a Dataset's variables as the bands of one GeoTIFF (a COG by default), chunk by chunk.

    The variables are stacked lazily and stored with dask under a lock, so memory stays within a
    few chunks; the file appears only when complete (temporary name, then rename).
    """
    import xarray as xr

    from gis.raster.store import default_resampling, write_cog_from_dataset

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(ds.data_vars)
    stacked = xr.concat([ds[n].astype(dtype) for n in names], dim="band")
    stacked = stacked.assign_coords(band=np.arange(1, len(names) + 1))
    stacked.attrs["long_name"] = tuple(names)
    stacked = stacked.rio.write_nodata(nodata, encoded=False)
    tmp = out.with_name(f".tmp-{out.stem}.tif")
    final_tmp = out.with_name(f".tmp-{out.stem}.cog.tif")
    try:
        stacked.rio.to_raster(
            tmp,
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="DEFLATE",
            lock=threading.Lock(),
            windowed=True,
            dtype=dtype,
        )
        import rasterio

        with rasterio.open(tmp, "r+") as dst:
            dst.descriptions = tuple(names)
        if cog:
            write_cog_from_dataset(tmp, final_tmp, resampling=default_resampling(dtype))
            final_tmp.replace(out)
        else:
            tmp.replace(out)
    finally:
        for p in (tmp, final_tmp):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return out
