"""Open and check an input raster before anything is written.

:func:`inspect_raster` reads only metadata (and hashes the file): georeferencing, CRS, extent,
bands, nodata, time. Every problem is a :class:`~gis.errors.GisError` whose message names the file
and the fix, raised before a byte reaches the raster store or a row the catalog.

Formats: anything GDAL reads through rasterio (GeoTIFF of any tiling, COG, JPEG 2000 when the
wheel's GDAL has the JP2OpenJPEG driver, ...) and NetCDF through xarray. A NetCDF variable with a
time dimension becomes **one item whose bands are the time steps** (see :class:`RasterSource`).
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from gis import crs as gcrs
from gis.errors import CRSError, GisError, InputError
from gis.raster.sensors import Sensor

__all__ = [
    "BandInfo",
    "RasterSource",
    "TimeSpec",
    "file_checksum",
    "inspect_raster",
    "nodata_fits",
    "parse_datetime",
]

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5nc")
_X_NAMES = ("x", "lon", "longitude", "rlon", "easting")
_Y_NAMES = ("y", "lat", "latitude", "rlat", "northing")


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSpec:
    """A STAC time: an instant (``datetime``) or an interval (``start``, ``end``), UTC."""

    datetime: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.datetime is None and (self.start is None or self.end is None):
            raise ValueError("a TimeSpec needs a datetime or both start and end")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InputError(
                f"The time interval ends ({self.end:%Y-%m-%d}) before it starts "
                f"({self.start:%Y-%m-%d})."
            )

    def as_text(self) -> str:
        if self.datetime is not None:
            return self.datetime.isoformat()
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _parse_one(text: str, *, end: bool) -> tuple[datetime, bool]:
    """One ISO time; returns (time, is_period). Years and months are periods."""
    t = text.strip()
    if re.fullmatch(r"\d{4}", t):
        y = int(t)
        return (
            datetime(y + 1, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)
            if end
            else datetime(y, 1, 1, tzinfo=UTC)
        ), True
    m = re.fullmatch(r"(\d{4})-(\d{2})", t)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise ValueError(t)
        first = datetime(y, mo, 1, tzinfo=UTC)
        if not end:
            return first, True
        nxt = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
        return nxt - timedelta(microseconds=1), True
    return _utc(datetime.fromisoformat(t.replace("Z", "+00:00"))), False


def parse_datetime(text: str) -> TimeSpec:
    """Parse the ``--datetime`` of an item.

    Parameters
    ----------
    text : str
        ``2020`` (the year 2020 as an interval), ``2020-06`` (a month), ``2020-06-15`` or
        ``2020-06-15T03:21:00Z`` (an instant; no zone means UTC), or ``START/END`` with each side
        any of these (``2000/2020`` is 2000-01-01 to 2020-12-31T23:59:59.999999).

    Returns
    -------
    TimeSpec

    Raises
    ------
    gis.errors.InputError
        When the text is not such a time.

    Examples
    --------
    >>> parse_datetime("2020").start.isoformat()
    '2020-01-01T00:00:00+00:00'
    >>> parse_datetime("2024-01-15").datetime.isoformat()
    '2024-01-15T00:00:00+00:00'
    """
    raw = (text or "").strip()
    try:
        if "/" in raw:
            a, b = raw.split("/", 1)
            if ".." in (a.strip(), b.strip()):
                raise ValueError(raw)
            return TimeSpec(start=_parse_one(a, end=False)[0], end=_parse_one(b, end=True)[0])
        t, period = _parse_one(raw, end=False)
        if period:
            return TimeSpec(start=t, end=_parse_one(raw, end=True)[0])
        return TimeSpec(datetime=t)
    except InputError:
        raise
    except (ValueError, TypeError):
        raise InputError(
            f"--datetime {text!r} is not a time: give a year (2020), a month (2020-06), a date "
            "(2020-06-15), a date and time (2020-06-15T03:21:00Z) or an interval START/END."
        ) from None


# ---------------------------------------------------------------------------------------------
# Bands and sources
# ---------------------------------------------------------------------------------------------


@dataclass
class BandInfo:
    """What the catalog says about one band (a STAC 1.1 band object)."""

    name: str
    description: str | None = None
    common_name: str | None = None
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    data_type: str = "float32"
    datetime: str | None = None  # a band that is one time step of a series

    def stac(self) -> dict[str, Any]:
        """The STAC 1.1 band object (``bands`` of an asset)."""
        d: dict[str, Any] = {"name": self.name, "data_type": self.data_type}
        if self.description:
            d["description"] = self.description
        if self.common_name:
            d["eo:common_name"] = self.common_name
        if self.unit:
            d["unit"] = self.unit
        if self.scale != 1.0:
            d["raster:scale"] = self.scale
        if self.offset != 0.0:
            d["raster:offset"] = self.offset
        if self.nodata is not None:
            d["nodata"] = _json_nodata(self.nodata)
        if self.datetime:
            d["datetime"] = self.datetime
        return d


def _json_nodata(v: float) -> float | str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return int(v) if float(v).is_integer() else float(v)


@dataclass
class RasterSource:
    """An input raster, checked and described; nothing written yet.

    Attributes
    ----------
    path : Path
        The file.
    reader : {"gdal", "netcdf"}
        ``gdal``: read through rasterio; ``netcdf``: through xarray (``variable``).
    crs : pyproj.CRS
        The CRS of the grid (the file's, or ``--crs``).
    transform : affine.Affine
        Pixel -> CRS coordinates (north-up after reading; a NetCDF with increasing latitude is
        flipped when written).
    width, height, count : int
        Grid shape and band count.
    data_type : str
        numpy dtype name of the pixels as written to the COG.
    nodata : float or None
        The nodata value kept in the COG.
    bands : list of BandInfo
    time : TimeSpec
    checksum : str
        sha256 of the file (and the side-car files GDAL reads with it).
    footprint : shapely.Polygon
        The grid's outline in EPSG:4326 (edges densified).
    properties : dict
        Extra STAC properties (``cube:dimensions`` for a time series).
    sensor : str or None
    variable : str or None
        The NetCDF variable.
    """

    path: Path
    reader: str
    driver: str
    crs: CRS
    crs_override: str | None
    transform: Any
    width: int
    height: int
    count: int
    data_type: str
    nodata: float | None
    bands: list[BandInfo]
    time: TimeSpec
    checksum: str
    footprint: shapely.Polygon
    properties: dict[str, Any] = field(default_factory=dict)
    sensor: str | None = None
    variable: str | None = None
    flip_y: bool = False
    time_dim: str | None = None
    x_dim: str | None = None
    y_dim: str | None = None

    @property
    def epsg(self) -> int | None:
        auth = self.crs.to_authority(min_confidence=90)
        return int(auth[1]) if auth and auth[0] == "EPSG" else None

    @property
    def resolution(self) -> tuple[float, float]:
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def size_bytes(self) -> int:
        return self.width * self.height * self.count * np.dtype(self.data_type).itemsize


def file_checksum(paths: list[Path] | Path, chunk: int = 4 << 20) -> str:
    """sha256 over the bytes of one file or several (in the order given)."""
    h = hashlib.sha256()
    for p in [paths] if isinstance(paths, Path) else paths:
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


def nodata_fits(value: float, dtype: str) -> bool:
    """True when ``value`` can be stored exactly in pixels of ``dtype``.

    >>> nodata_fits(0, "uint16"), nodata_fits(-9999, "uint16"), nodata_fits(float("nan"), "float32")
    (True, False, True)
    """
    dt = np.dtype(dtype)
    v = float(value)
    if dt.kind in "iu":
        if not math.isfinite(v) or not v.is_integer():
            return False
        info = np.iinfo(dt)
        return info.min <= v <= info.max
    if dt.kind == "f":
        if not math.isfinite(v):
            return True
        with np.errstate(over="ignore"):
            return float(dt.type(v)) == v
    if dt.kind == "b":
        return v in (0.0, 1.0)
    return False


def _check_nodata(value: float | None, dtype: str, label: str, origin: str) -> float | None:
    if value is None:
        return None
    if not nodata_fits(value, dtype):
        info = ""
        dt = np.dtype(dtype)
        if dt.kind in "iu":
            info = f" (whole numbers {np.iinfo(dt).min} to {np.iinfo(dt).max})"
        raise InputError(
            f"{label}: the nodata value {value!r} ({origin}) cannot be stored in its {dtype} "
            f"pixels{info}. Pass --nodata with a value the data type can hold, e.g. "
            f"{_suggest_nodata(dtype)}."
        )
    return float(value)


def _suggest_nodata(dtype: str) -> str:
    dt = np.dtype(dtype)
    if dt.kind == "u":
        return f"0 or {np.iinfo(dt).max}"
    if dt.kind == "i":
        return str(np.iinfo(dt).min)
    return "nan"


def _footprint(crs: CRS, transform, width: int, height: int) -> shapely.Polygon:
    corners = [
        transform * (0, 0),
        transform * (width, 0),
        transform * (width, height),
        transform * (0, height),
    ]
    ring = shapely.Polygon(corners)
    ring = shapely.segmentize(ring, max(ring.length / 4 / 32, 1e-9))
    out = gcrs.make_transformer(crs).transform_geoms(ring)
    out = shapely.clip_by_rect(out, -180, -90, 180, 90)
    if out.geom_type != "Polygon":
        out = out.envelope
    return shapely.set_precision(
        shapely.orient_polygons(out) if hasattr(shapely, "orient_polygons") else out, 1e-9
    )


def _check_crs(crs: CRS, transform, width: int, height: int, label: str) -> None:
    corners = np.array(
        [
            transform * (0, 0),
            transform * (width, 0),
            transform * (width, height),
            transform * (0, height),
        ]
    )
    bounds = (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())
    gcrs.check_extent(crs, bounds, label=label)


def _resolve_crs(file_crs_wkt: str | None, override: str | None, bounds, label: str) -> CRS:
    if override is not None:
        return gcrs.parse_crs(override)
    if not file_crs_wkt:
        try:
            return gcrs.resolve_crs(None, None, bounds=bounds)
        except CRSError as exc:
            raise CRSError(f"{label}: {exc.message}") from None
    try:
        return gcrs.parse_crs(file_crs_wkt)
    except CRSError:
        short = re.sub(r"\s+", " ", file_crs_wkt)[:100]
        raise CRSError(
            f"{label}: its CRS is unknown or unusable ({short}...): pass --crs with the real CRS "
            "of the grid, e.g. --crs EPSG:32648 (WGS 84 / UTM 48N) or --crs EPSG:9210 "
            "(VN-2000 / TM-3 105-45)."
        ) from None


def _apply_sensor(
    sensor: Sensor | None, bands: list[BandInfo], data_type: str, label: str, per_time_step: bool
) -> None:
    if sensor is None:
        return
    n = 1 if per_time_step else len(bands)
    if len(sensor.bands) != n:
        what = "1 band per time step" if per_time_step else f"{len(bands)} band(s)"
        raise InputError(
            f"{label} has {what} but --sensor {sensor.name} expects {len(sensor.bands)} "
            f"({', '.join(sensor.band_names)}): check the file or the --sensor option."
        )
    if sensor.data_type and np.dtype(data_type) != np.dtype(sensor.data_type):
        raise InputError(
            f"{label} has {data_type} pixels but --sensor {sensor.name} expects "
            f"{sensor.data_type} ({sensor.title}): check the file or the --sensor option."
        )
    for i, b in enumerate(bands):
        sb = sensor.bands[0 if per_time_step else i]
        if not per_time_step:
            b.name = sb.name
        b.description = sb.description or b.description
        b.common_name = sb.common_name
        b.unit = sb.unit or b.unit
        if b.scale == 1.0 and b.offset == 0.0:
            b.scale, b.offset = sb.scale, sb.offset


def _band_names_unique(bands: list[BandInfo], label: str) -> None:
    seen: set[str] = set()
    for i, b in enumerate(bands):
        if not b.name or b.name in seen:
            b.name = f"b{i + 1}" if f"b{i + 1}" not in seen else f"band_{i + 1}"
        seen.add(b.name)


def _file_time(tags: dict[str, str]) -> TimeSpec | None:
    for key in ("DATETIME", "datetime", "ACQUISITION_DATETIME"):
        if tags.get(key):
            try:
                return parse_datetime(tags[key])
            except InputError:
                pass
    t = tags.get("TIFFTAG_DATETIME")
    if t:
        m = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})", t.strip())
        if m:
            y, mo, d, hh, mi, ss = (int(g) for g in m.groups())
            try:
                return TimeSpec(datetime=datetime(y, mo, d, hh, mi, ss, tzinfo=UTC))
            except ValueError:
                return None
    return None


def _need_time(label: str) -> InputError:
    return InputError(
        f"{label} says nothing about when it was acquired: pass --datetime, e.g. --datetime "
        "2020 (a year), --datetime 2024-01-15 (a date) or --datetime 2000/2020 (an interval)."
    )


def inspect_raster(
    path: str | Path,
    *,
    crs: str | None = None,
    nodata: float | None = None,
    sensor: Sensor | None = None,
    time: TimeSpec | None = None,
    band_names: list[str] | None = None,
    variable: str | None = None,
) -> RasterSource:
    """Open an input raster, check it and describe it; write nothing.

    Parameters
    ----------
    path : str or Path
        A GeoTIFF/COG/JPEG 2000 (anything GDAL reads) or a NetCDF file.
    crs : str, optional
        The grid's CRS when the file has none (or to override a wrong one), e.g. ``EPSG:32648``.
    nodata : float, optional
        The nodata value, overriding the file's (must fit the data type).
    sensor : Sensor, optional
        A sensor profile (:mod:`gis.raster.sensors`): the band count and data type must match.
    time : TimeSpec, optional
        The item's time; required when the file does not say (GeoTIFF ``TIFFTAG_DATETIME`` or a
        ``DATETIME`` tag; the time coordinate of a NetCDF).
    band_names : list of str, optional
        Names of the bands, in order (otherwise from the sensor, the file, or ``b1``...).
    variable : str, optional
        The NetCDF variable (default: the only one on a 2-D grid).

    Returns
    -------
    RasterSource

    Raises
    ------
    gis.errors.InputError
        Missing, corrupt or unreadable file; nodata not representable in the data type; band
        count or data type not those of ``sensor``; no time.
    gis.errors.CRSError
        No georeferencing, no CRS, an unknown CRS, or a grid that does not land in HCMC under
        its declared CRS.

    Examples
    --------
    >>> src = inspect_raster("vnm_ppp_2020_1km_Aggregated_UNadj.tif",
    ...                      time=parse_datetime("2020"))  # doctest: +SKIP
    >>> src.count, src.data_type, src.epsg  # doctest: +SKIP
    (1, 'float32', 4326)
    """
    p = Path(path)
    label = f"The raster {p.name}"
    if not p.exists():
        raise InputError(f"{label} does not exist (looked for {p}).")
    if not p.is_file():
        raise InputError(f"{label} is not a file: give raster files, not folders.")
    if p.stat().st_size == 0:
        raise InputError(f"{label} is empty (0 bytes).")
    if p.suffix.lower() in NETCDF_SUFFIXES:
        return _inspect_netcdf(p, label, crs, nodata, sensor, time, band_names, variable)
    return _inspect_gdal(p, label, crs, nodata, sensor, time, band_names)


def _open_error(label: str, exc: Exception) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "not recognized" in first or "not a supported" in first.lower():
        return InputError(
            f"{label} is not a raster GDAL can read (not a GeoTIFF, COG, JPEG 2000 "
            "or NetCDF?), or it is corrupt."
        )
    return InputError(f"{label} cannot be read; it is corrupt or truncated ({first}).")


def _inspect_gdal(
    p: Path,
    label: str,
    crs_override: str | None,
    nodata: float | None,
    sensor: Sensor | None,
    time: TimeSpec | None,
    band_names: list[str] | None,
) -> RasterSource:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(p) as ds:
                if ds.count == 0:
                    if ds.subdatasets:
                        raise InputError(
                            f"{label} holds sub-datasets ({len(ds.subdatasets)}), not "
                            "bands: convert the one you want to GeoTIFF first."
                        )
                    raise InputError(f"{label} has no raster bands.")
                dtypes = set(ds.dtypes)
                if len(dtypes) > 1:
                    raise InputError(
                        f"{label} mixes data types across bands ({sorted(dtypes)}): "
                        "a COG holds one data type."
                    )
                data_type = ds.dtypes[0]
                if np.dtype(data_type).kind == "c":
                    raise InputError(f"{label} has complex pixels ({data_type}): not supported.")
                transform = ds.transform
                georef = not (transform.is_identity and ds.crs is None)
                if not georef:
                    if ds.gcps[0]:
                        raise CRSError(
                            f"{label} is georeferenced by ground control points only: "
                            "warp it onto a grid first (gdalwarp -t_srs EPSG:32648 ...)."
                        )
                    raise CRSError(
                        f"{label} has no georeferencing (no geotransform and no CRS): it cannot "
                        "be placed on the map. Export it as a GeoTIFF with its grid, or add a "
                        "world file (.tfw) and pass --crs."
                    )
                width, height, count = ds.width, ds.height, ds.count
                file_crs = ds.crs.to_wkt() if ds.crs is not None else None
                file_nodata = ds.nodata
                if file_nodata is None:
                    file_nodata = _raw_nodata(p)
                descriptions = list(ds.descriptions)
                units = list(ds.units)
                scales, offsets = list(ds.scales), list(ds.offsets)
                tags = ds.tags()
                files = [Path(f) for f in ds.files]
                driver = ds.driver
    except GisError:
        raise
    except (RasterioError, OSError) as exc:
        raise _open_error(label, exc) from None
    except Exception as exc:  # GDAL's CPLE_* errors
        if type(exc).__module__.startswith("rasterio"):
            raise _open_error(label, exc) from None
        raise

    corners = np.array([transform * (0, 0), transform * (width, height)])
    bounds = (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())
    crs = _resolve_crs(file_crs, crs_override, bounds, label)
    _check_crs(crs, transform, width, height, label)

    if nodata is not None:
        nd = _check_nodata(nodata, data_type, label, "--nodata")
    elif file_nodata is not None:
        nd = _check_nodata(file_nodata, data_type, label, "declared by the file")
    elif sensor is not None and sensor.nodata is not None:
        nd = _check_nodata(sensor.nodata, data_type, label, f"of sensor {sensor.name}")
    else:
        nd = None

    bands = [
        BandInfo(
            name=(descriptions[i] or "").strip() or f"b{i + 1}",
            description=None,
            unit=units[i] or None,
            scale=float(scales[i] if scales[i] is not None else 1.0),
            offset=float(offsets[i] if offsets[i] is not None else 0.0),
            nodata=nd,
            data_type=data_type,
        )
        for i in range(count)
    ]
    _apply_sensor(sensor, bands, data_type, label, per_time_step=False)
    _set_band_names(bands, band_names, label)
    _band_names_unique(bands, label)

    when = time or _file_time(tags)
    if when is None:
        raise _need_time(label)
    return RasterSource(
        path=p,
        reader="gdal",
        driver=driver,
        crs=crs,
        crs_override=crs_override,
        transform=transform,
        width=width,
        height=height,
        count=count,
        data_type=data_type,
        nodata=nd,
        bands=bands,
        time=when,
        checksum=file_checksum(_unique_existing(files, p)),
        footprint=_footprint(crs, transform, width, height),
        sensor=sensor.name if sensor else None,
    )


def _raw_nodata(p: Path) -> float | None:
    """The nodata value as the file declares it. rasterio hides one that does not fit the data
    type (it returns None); GDAL's VRT serialisation shows it, so that it can be refused."""
    import tempfile

    import rasterio.shutil

    with tempfile.TemporaryDirectory() as d:
        vrt = Path(d) / "n.vrt"
        try:
            rasterio.shutil.copy(str(p), str(vrt), driver="VRT")
            m = re.search(r"<NoDataValue>([^<]+)</NoDataValue>", vrt.read_text())
        except Exception:
            return None
    if not m:
        return None
    try:
        return float(m.group(1))
    except ValueError:
        return None


def _set_band_names(bands: list[BandInfo], names: list[str] | None, label: str) -> None:
    if not names:
        return
    if len(names) != len(bands):
        raise InputError(
            f"{label} has {len(bands)} band(s) but {len(names)} band name(s) were "
            f"given ({', '.join(names)})."
        )
    for b, n in zip(bands, names):
        b.name = n.strip()


def _unique_existing(files: list[Path], main: Path) -> list[Path]:
    out = [main]
    for f in files:
        try:
            if f.exists() and f.resolve() != main.resolve() and f.is_file():
                out.append(f)
        except OSError:
            continue
    return [out[0]] + sorted(out[1:])


# ---------------------------------------------------------------------------------------------
# NetCDF
# ---------------------------------------------------------------------------------------------


def _find_dim(da, names: tuple[str, ...]) -> str | None:
    for d in da.dims:
        if str(d).lower() in names:
            return str(d)
    for d in da.dims:
        c = da.coords.get(d)
        if c is not None and str(c.attrs.get("standard_name", "")).lower() in names:
            return str(d)
    return None


def _is_degrees(coord, axis: str) -> bool:
    units = str(coord.attrs.get("units", "")).lower()
    std = str(coord.attrs.get("standard_name", "")).lower()
    name = str(coord.name).lower()
    if axis == "x":
        return (
            units.startswith("degree")
            and "east" in units
            or std == "longitude"
            or name in ("lon", "longitude")
        )
    return (
        units.startswith("degree")
        and "north" in units
        or std == "latitude"
        or name in ("lat", "latitude")
    )


def open_netcdf(path: Path, chunks: dict | None = None):
    """Open a NetCDF file with xarray (lazy, CF decoding)."""
    import xarray as xr

    try:
        return xr.open_dataset(
            path,
            chunks=chunks if chunks is not None else {},
            mask_and_scale=True,
            decode_times=True,
        )
    except Exception as exc:  # engine errors come in many types
        raise InputError(
            f"The raster {path.name} is not a NetCDF file xarray can read, or it is "
            f"corrupt ({type(exc).__name__})."
        ) from None


def _inspect_netcdf(
    p: Path,
    label: str,
    crs_override: str | None,
    nodata: float | None,
    sensor: Sensor | None,
    time: TimeSpec | None,
    band_names: list[str] | None,
    variable: str | None,
) -> RasterSource:
    from affine import Affine

    ds = open_netcdf(p)
    try:
        candidates = [
            v
            for v, da in ds.data_vars.items()
            if _find_dim(da, _X_NAMES) and _find_dim(da, _Y_NAMES)
        ]
        if variable is not None:
            if variable not in ds.data_vars:
                raise InputError(
                    f"{label} has no variable {variable!r} (variables: "
                    f"{', '.join(map(str, ds.data_vars)) or 'none'})."
                )
            var = variable
        elif len(candidates) == 1:
            var = str(candidates[0])
        elif not candidates:
            raise CRSError(
                f"{label} has no variable on an x/y or longitude/latitude grid: it "
                "cannot be placed on the map."
            )
        else:
            raise InputError(
                f"{label} has several gridded variables ({', '.join(map(str, candidates))}): "
                "choose one with --variable."
            )
        da = ds[var]
        xd, yd = _find_dim(da, _X_NAMES), _find_dim(da, _Y_NAMES)
        if xd is None or yd is None:
            raise CRSError(
                f"{label}: variable {var!r} has no x/y or longitude/latitude dimensions "
                f"(dimensions: {', '.join(map(str, da.dims))})."
            )
        others = [str(d) for d in da.dims if d not in (xd, yd)]
        tdim = None
        if len(others) > 1:
            raise InputError(
                f"{label}: variable {var!r} has dimensions {', '.join(others)} besides "
                "the grid; only one (time) can become bands."
            )
        if others:
            tdim = others[0]
            if da.sizes[tdim] > 10_000:
                raise InputError(f"{label}: {da.sizes[tdim]} steps along {tdim!r}: too many bands.")
        if list(da.dims[-2:]) != [yd, xd]:
            da = da.transpose(*(others + [yd, xd]))
        x = np.asarray(da[xd].values, dtype=float)
        y = np.asarray(da[yd].values, dtype=float)
        if x.size < 1 or y.size < 1:
            raise InputError(f"{label}: variable {var!r} has an empty grid.")
        dx = float(np.diff(x).mean()) if x.size > 1 else 1.0
        dy = float(np.diff(y).mean()) if y.size > 1 else -1.0
        for arr, step, name in ((x, dx, xd), (y, dy, yd)):
            if arr.size > 2 and not np.allclose(
                np.diff(arr), step, rtol=1e-4, atol=abs(step) * 1e-4
            ):
                raise InputError(
                    f"{label}: the {name!r} coordinates are not evenly spaced; only "
                    "regular grids can be written as GeoTIFF."
                )
        flip = dy > 0
        ady = abs(dy)
        top = float(y.max()) + ady / 2
        transform = Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, -ady, top)
        width, height = int(x.size), int(y.size)

        file_crs = None
        try:
            import rioxarray  # noqa: F401

            rc = da.rio.crs or ds.rio.crs
            file_crs = rc.to_wkt() if rc is not None else None
        except Exception:
            file_crs = None
        if (
            file_crs is None
            and crs_override is None
            and _is_degrees(da[xd], "x")
            and _is_degrees(da[yd], "y")
        ):
            # CF: longitude/latitude coordinates without a grid_mapping are WGS 84 degrees
            file_crs = gcrs.STORAGE_CRS.to_wkt()
        bounds = (
            float(x.min()) - abs(dx) / 2,
            float(y.min()) - ady / 2,
            float(x.max()) + abs(dx) / 2,
            float(y.max()) + ady / 2,
        )
        crs = _resolve_crs(file_crs, crs_override, bounds, label)
        _check_crs(crs, transform, width, height, label)

        data_type = np.dtype(da.dtype).name
        if nodata is not None:
            nd = _check_nodata(nodata, data_type, label, "--nodata")
        elif np.dtype(da.dtype).kind == "f":
            nd = float("nan")  # decoded _FillValue / missing_value are NaN
        else:
            fv = da.encoding.get("_FillValue", da.attrs.get("_FillValue"))
            nd = (
                _check_nodata(float(fv), data_type, label, "_FillValue") if fv is not None else None
            )

        unit = da.attrs.get("units")
        desc = da.attrs.get("long_name") or da.attrs.get("standard_name")
        props: dict[str, Any] = {}
        if tdim is not None:
            tvals = da[tdim].values
            if not np.issubdtype(np.asarray(tvals).dtype, np.datetime64):
                raise InputError(
                    f"{label}: the {tdim!r} dimension of {var!r} is not time; only "
                    "a time dimension can become bands."
                )
            times = [_np_to_dt(t) for t in tvals]
            midnight = all(t.hour == 0 and t.minute == 0 and t.second == 0 for t in times)
            bands = [
                BandInfo(
                    name=f"{var}_{t:%Y%m%d}" if midnight else f"{var}_{t:%Y%m%dT%H%M%S}",
                    description=desc,
                    unit=unit,
                    nodata=nd,
                    data_type=data_type,
                    datetime=t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                for t in times
            ]
            step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else timedelta(0)
            file_time = (
                TimeSpec(start=times[0], end=times[-1] + step - timedelta(microseconds=1))
                if step > timedelta(0)
                else TimeSpec(datetime=times[0])
            )
            props["cube:dimensions"] = {
                tdim: {
                    "type": "temporal",
                    "extent": [bands[0].datetime, bands[-1].datetime],
                    **({"step": _iso_duration(step)} if step > timedelta(0) else {}),
                    "description": "one band per time step",
                },
                "x": {"type": "spatial", "axis": "x", "extent": [bounds[0], bounds[2]], "step": dx},
                "y": {
                    "type": "spatial",
                    "axis": "y",
                    "extent": [bounds[1], bounds[3]],
                    "step": -ady,
                },
            }
            props["gis:band_dimension"] = tdim
        else:
            bands = [
                BandInfo(name=str(var), description=desc, unit=unit, nodata=nd, data_type=data_type)
            ]
            file_time = None
        _apply_sensor(sensor, bands, data_type, label, per_time_step=tdim is not None)
        if tdim is None:
            _set_band_names(bands, band_names, label)
        _band_names_unique(bands, label)
        when = time or file_time
        if when is None:
            raise _need_time(label)
        return RasterSource(
            path=p,
            reader="netcdf",
            driver="netCDF",
            crs=crs,
            crs_override=crs_override,
            transform=transform,
            width=width,
            height=height,
            count=len(bands),
            data_type=data_type,
            nodata=nd,
            bands=bands,
            time=when,
            checksum=file_checksum(p),
            footprint=_footprint(crs, transform, width, height),
            properties=props,
            sensor=sensor.name if sensor else None,
            variable=var,
            flip_y=flip,
            time_dim=tdim,
            x_dim=xd,
            y_dim=yd,
        )
    finally:
        ds.close()


def _np_to_dt(t) -> datetime:
    ns = int(np.datetime64(t, "ns").astype("int64"))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def _iso_duration(step: timedelta) -> str:
    secs = int(step.total_seconds())
    if secs % 86400 == 0:
        return f"P{secs // 86400}D"
    if secs % 3600 == 0:
        return f"PT{secs // 3600}H"
    return f"PT{secs}S"
