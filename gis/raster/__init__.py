"""Remote sensing: the raster store, its STAC-shaped catalog in PostGIS, and raster analysis.

The pixels of every raster live in Cloud-Optimised GeoTIFFs in the raster store (a folder,
:attr:`gis.settings.Settings.raster_dir`); PostGIS holds their footprints and metadata in the
``raster`` schema (one row of ``raster.items`` per STAC Item). This package is a library without
HTTP: the CLI, notebooks and (later) the API call it.

Modules
-------
sensors
    Band profiles of known sensors (``sentinel2``, ``worldpop``, ``era5-precipitation``).
source
    Open and check any input raster (GeoTIFF, COG, JPEG 2000, NetCDF): georeferencing, CRS,
    nodata, bands, time.
store
    The raster store: COG writing and validation, temp files, atomic placement.
catalog
    Read the catalog: list, find and describe items; STAC JSON.
synthetic
    Deterministic Sentinel-2-like scenes of HCMC with urban growth between two dates.
indices
    Spectral indices (NDVI, NDBI, NDWI, built-up mask) on chunked xarray/dask.
change
    Change between two dates: new built-up area, differences (population change).
zonal
    Exact (cell-coverage weighted) zonal statistics per polygon layer, written to ``stats.*``.

Submodules are imported explicitly (``from gis.raster import zonal``): importing this package
does not import rasterio, xarray or dask.
"""

__all__ = ["catalog", "change", "indices", "sensors", "source", "store", "synthetic", "zonal"]
