"""The raster store: a folder of Cloud-Optimised GeoTIFFs, written atomically.

Layout: ``<root>/<collection>/<item>.<key>.tif`` where ``key`` is the first 12 hex digits of
the item's row hash (source checksum + everything derived from it). A new version of an item
therefore gets a **new file name**: a file a committed catalog row points to is never
overwritten, so a reader of the old version is never handed half a new file, and a failed
update leaves the old version intact. Temporary files are ``<root>/<collection>/.tmp-*`` (same
folder, so the final ``os.replace`` is an atomic rename) and are removed on failure;
:meth:`RasterStore.sweep` removes what a killed process left behind.

COGs are written by GDAL's COG driver (through rasterio): 512 x 512 tiles, DEFLATE with a
predictor, internal overviews down to one tile, nodata, band names, units, scale and offset
kept; then checked with rio-cogeo's :func:`~rio_cogeo.cogeo.cog_validate`.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gis.errors import GisError, InputError
from gis.raster.source import RasterSource

__all__ = [
    "COG_OPTIONS",
    "RasterStore",
    "default_resampling",
    "validate_cog",
    "write_cog",
    "write_cog_from_dataset",
]

#: Creation options of every COG the platform writes (GDAL COG driver).
COG_OPTIONS: dict[str, str] = {
    "COMPRESS": "DEFLATE",
    "LEVEL": "6",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "OVERVIEWS": "AUTO",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}

#: GDAL settings while reading and writing: a bounded block cache (bytes).
GDAL_ENV: dict[str, Any] = {
    "GDAL_CACHEMAX": 256 * 1024 * 1024,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
}

TMP_PREFIX = ".tmp-"


class RasterStore:
    """The folder holding the platform's COGs.

    Parameters
    ----------
    root : Path
        The store's folder (``Settings.raster_dir``); created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RasterStore({str(self.root)!r})"

    @staticmethod
    def href_for(collection: str, item_id: str, key: str) -> str:
        """Where an item's COG lives, relative to the store (the catalog's ``asset_href``)."""
        return f"{collection}/{item_id}.{key[:12]}.tif"

    def path(self, href: str) -> Path:
        """Absolute path of an asset href; refuses hrefs that leave the store."""
        p = (self.root / href).resolve()
        root = self.root.resolve()
        if root not in p.parents:
            raise GisError(f"The asset {href!r} is not inside the raster store.")
        return p

    def temp_path(self, href: str) -> Path:
        """A fresh temporary file in the same folder as ``href`` (for an atomic rename)."""
        final = self.root / href
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.parent / f"{TMP_PREFIX}{final.stem}-{uuid.uuid4().hex[:12]}.tif"

    def place(self, tmp: Path, href: str) -> Path:
        """Atomically move a finished temporary file to its final name."""
        final = self.root / href
        os.replace(tmp, final)
        return final

    def files(self) -> list[Path]:
        """Every COG in the store (not temporary files)."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.glob("*/*.tif") if not p.name.startswith(TMP_PREFIX))

    def temp_files(self) -> list[Path]:
        if not self.root.exists():
            return []
        return sorted(self.root.glob(f"*/{TMP_PREFIX}*"))

    def sweep(self, referenced: set[str], older_than_s: float = 3600.0) -> list[Path]:
        """Remove files no catalog row refers to, and stale temporary files.

        Parameters
        ----------
        referenced : set of str
            The ``asset_href`` of every catalog row.
        older_than_s : float, default 3600
            Only files older than this are removed, so that the files of a job still running
            (temporary, or placed but not yet committed) are left alone.

        Returns
        -------
        list of Path
            The files removed.
        """
        now = time.time()
        removed = []
        for p in self.temp_files() + self.files():
            href = p.relative_to(self.root).as_posix()
            if href in referenced:
                continue
            try:
                if now - p.stat().st_mtime >= older_than_s:
                    p.unlink()
                    removed.append(p)
            except FileNotFoundError:
                continue
        return removed


def default_resampling(data_type: str) -> str:
    """Overview resampling: ``nearest`` for small integer (class) data, else ``average``."""
    return (
        "nearest"
        if np.dtype(data_type).kind in "iub" and np.dtype(data_type).itemsize == 1
        else "average"
    )


def block_size(width: int, height: int, count: int, itemsize: int) -> int:
    """COG tile size: 512, smaller for many bands (a pixel-interleaved tile holds every band) and
    for small images (a tile need not be larger than the image; multiple of 16)."""
    block = 512
    while block > 128 and block * block * count * itemsize > 32 * 1024 * 1024:
        block //= 2
    side = max(width, height)
    if side < block:
        block = max(128, -(-side // 16) * 16)
    return block


def _cog_options(resampling: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    opts = dict(COG_OPTIONS)
    opts["RESAMPLING"] = resampling.upper()
    opts["OVERVIEW_RESAMPLING"] = resampling.upper()
    if extra:
        opts.update({k.upper(): str(v) for k, v in extra.items()})
    return opts


def _translate_error(source: RasterSource | Path, exc: Exception) -> GisError:
    name = source.path.name if isinstance(source, RasterSource) else Path(source).name
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return GisError(f"The raster store is full while writing {name}: free some space.")
    return InputError(
        f"The raster {name} cannot be read to the end; it is corrupt or truncated "
        f"({first}). Nothing was written."
    )


def write_cog(
    source: RasterSource,
    dst: Path,
    *,
    resampling: str | None = None,
    tags: dict[str, str] | None = None,
    creation_options: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``source`` as a COG at ``dst`` (a temporary path: the caller renames it).

    The band metadata of ``source`` (names, units, scale, offset, nodata) and its CRS (after
    ``--crs``) are written into the COG; ``tags`` become dataset metadata.

    Raises
    ------
    gis.errors.InputError
        When the source cannot be read to the end (corrupt or truncated); ``dst`` and every
        intermediate file are removed.
    """
    resampling = resampling or default_resampling(source.data_type)
    inter = dst.with_name(dst.stem + ".src" + (".vrt" if source.reader == "gdal" else ".tif"))
    try:
        if source.reader == "gdal":
            _make_vrt(source, inter, tags or {})
        else:
            _netcdf_to_gtiff(source, inter, tags or {}, progress=progress)
        write_cog_from_dataset(inter, dst, resampling=resampling, creation_options=creation_options)
    except GisError:
        _unlink(dst)
        raise
    except Exception as exc:
        _unlink(dst)
        raise _translate_error(source, exc) from None
    finally:
        _unlink(inter)
        _unlink(Path(str(inter) + ".aux.xml"))


def write_cog_from_dataset(
    src: str | Path,
    dst: Path,
    *,
    resampling: str = "average",
    creation_options: dict[str, str] | None = None,
) -> None:
    """COG-copy any GDAL-readable dataset (GeoTIFF, VRT, ...) to ``dst`` and validate it."""
    import rasterio
    import rasterio.shutil

    with rasterio.Env(**GDAL_ENV):
        with rasterio.open(src) as ds:
            block = block_size(ds.width, ds.height, ds.count, np.dtype(ds.dtypes[0]).itemsize)
        options = {"BLOCKSIZE": str(block), **(creation_options or {})}
        rasterio.shutil.copy(str(src), str(dst), driver="COG", **_cog_options(resampling, options))
    validate_cog(dst)


def validate_cog(path: Path) -> None:
    """Check that ``path`` is a valid Cloud-Optimised GeoTIFF (rio-cogeo).

    Raises
    ------
    gis.errors.GisError
        Listing rio-cogeo's errors.
    """
    from rio_cogeo.cogeo import cog_validate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, errors, _warns = cog_validate(str(path), quiet=True)
    if not ok:
        raise GisError(f"The COG written for {path.name} is not valid: {'; '.join(errors)}.")


def _make_vrt(source: RasterSource, vrt: Path, tags: dict[str, str]) -> None:
    """A VRT over the source carrying the catalog's metadata (CRS, nodata, band names...)."""
    import rasterio
    import rasterio.shutil

    with rasterio.Env(**GDAL_ENV):
        rasterio.shutil.copy(str(source.path.resolve()), str(vrt), driver="VRT")
        with rasterio.open(vrt, "r+") as v:
            if source.crs_override is not None:
                v.crs = rasterio.crs.CRS.from_wkt(source.crs.to_wkt())
            if source.nodata is not None:
                v.nodata = source.nodata
            v.descriptions = tuple(b.name for b in source.bands)
            v.units = tuple(b.unit or "" for b in source.bands)
            v.scales = tuple(b.scale for b in source.bands)
            v.offsets = tuple(b.offset for b in source.bands)
            if tags:
                v.update_tags(**tags)


def _netcdf_to_gtiff(
    source: RasterSource,
    out: Path,
    tags: dict[str, str],
    *,
    progress: Callable[[int, int], None] | None = None,
    max_cells: int = 16 * 1024 * 1024,
) -> None:
    """Write a NetCDF variable as a tiled GeoTIFF, one band (time step) and window at a time."""
    import rasterio
    from rasterio.windows import Window

    from gis.raster.source import open_netcdf

    ds = open_netcdf(source.path)
    try:
        da = ds[source.variable]
        order = ([source.time_dim] if source.time_dim else []) + [source.y_dim, source.x_dim]
        da = da.transpose(*order)
        if source.flip_y:
            da = da.isel({source.y_dim: slice(None, None, -1)})
        dtype = source.data_type
        profile = dict(
            driver="GTiff",
            width=source.width,
            height=source.height,
            count=source.count,
            dtype=dtype,
            crs=rasterio.crs.CRS.from_wkt(source.crs.to_wkt()),
            transform=source.transform,
            nodata=source.nodata,
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="NONE",
            interleave="band",
            BIGTIFF="IF_SAFER",
        )
        # read as many bands (time steps) and rows at once as fit in max_cells
        rows = max(1, min(source.height, max_cells // max(source.width, 1)))
        nb = max(1, min(source.count, max_cells // max(source.width * rows, 1)))
        with rasterio.Env(**GDAL_ENV), rasterio.open(out, "w", **profile) as dst:
            for b0 in range(0, source.count, nb):
                b1 = min(source.count, b0 + nb)
                bands = da.isel({source.time_dim: slice(b0, b1)}) if source.time_dim else da
                for r0 in range(0, source.height, rows):
                    r1 = min(source.height, r0 + rows)
                    block = np.asarray(
                        bands.isel({source.y_dim: slice(r0, r1)}).values, dtype=dtype
                    )
                    if block.ndim == 2:
                        block = block[np.newaxis]
                    dst.write(
                        block,
                        list(range(b0 + 1, b1 + 1)),
                        window=Window(0, r0, source.width, r1 - r0),
                    )
                if progress:
                    progress(b1, source.count)
            dst.descriptions = tuple(bi.name for bi in source.bands)
            dst.units = tuple(bi.unit or "" for bi in source.bands)
            dst.scales = tuple(bi.scale for bi in source.bands)
            dst.offsets = tuple(bi.offset for bi in source.bands)
            if tags:
                dst.update_tags(**tags)
            for b, bi in enumerate(source.bands):
                if bi.datetime:
                    dst.update_tags(b + 1, DATETIME=bi.datetime)
    finally:
        ds.close()


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
