"""Reading source files: any vector format GDAL reads, in Arrow batches, with text made NFC Unicode.

Shapefiles (and zipped Shapefiles) are read byte-for-byte (as latin-1) so that the text encoding can be
decided here: the ``.cpg`` file or ``--encoding`` when given, otherwise UTF-8 when the bytes are UTF-8,
otherwise the legacy Vietnamese encodings TCVN3 (ABC) and VNI when the text looks like them.
"""

from __future__ import annotations

import codecs
import hashlib
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from gis import text
from gis.errors import InputError

CSV_OPEN_OPTIONS = {
    "GEOM_POSSIBLE_NAMES": "wkt,WKT,geometry,geom,the_geom,Geometry",
    "X_POSSIBLE_NAMES": "x,lon,lng,longitude,X,Lon,Longitude",
    "Y_POSSIBLE_NAMES": "y,lat,latitude,Y,Lat,Latitude",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
}
LEGACY = ("tcvn3", "vni")


@dataclass
class Batch:
    """One batch of source features."""

    attrs: pd.DataFrame          # source attributes, text already NFC Unicode
    wkb: np.ndarray              # source geometries as WKB (None for missing)
    fids: np.ndarray             # 1-based position of each feature in the layer
    geoms: np.ndarray | None = None  # the parsed geometries, once parsed (see geometries())


@dataclass
class Source:
    """A source layer, opened and described, ready to be read in batches."""

    path: Path
    gdal_path: str
    layer: str
    driver: str
    crs: str | None
    fields: list[str]
    count: int
    geometry_type: str | None
    raw_text: bool                     # text is read as latin-1 bytes and decoded here
    declared_encoding: str | None      # from the .cpg file
    checksum: str
    layers: list[str] = field(default_factory=list)
    bounds: tuple[float, float, float, float] | None = None  # of the layer, in its own CRS
    text_encoding: str | None = None   # decided while reading: unicode, tcvn3, vni or a codec name

    @property
    def open_options(self) -> dict | None:
        return CSV_OPEN_OPTIONS if self.driver == "CSV" else None


def _sidecar(path: Path, ext: str) -> Path | None:
    for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


def file_checksum(path: Path) -> str:
    """sha256 of a file, or of a Shapefile and its sidecars, or of a folder's files."""
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.suffix.lower() == ".shp":
        files = [p for p in (_sidecar(path, e) for e in (".shp", ".shx", ".dbf", ".prj", ".cpg")) if p]
    else:
        files = [path]
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def open_source(path: str | Path, layer: str | None = None) -> Source:
    """Open and describe a vector source, checking what can be checked before reading it.

    Raises
    ------
    InputError
        Missing path, empty file, Shapefile without .shx/.dbf, unreadable or corrupt file, several
        layers and no ``layer`` given, unknown layer, empty layer.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"The file {path} does not exist.")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"The file {path} is empty (0 bytes).")
    suffix = path.suffix.lower()
    gdal_path = str(path)
    if suffix == ".zip":
        gdal_path = f"/vsizip/{path.resolve()}"
    elif suffix == ".shp":
        missing = [e for e in (".shx", ".dbf") if _sidecar(path, e) is None]
        if missing:
            raise InputError(
                f"The Shapefile {path.name} is incomplete: {' and '.join(missing)} missing beside it "
                f"(a Shapefile is .shp + .shx + .dbf, with .prj for the CRS and .cpg for the encoding)."
            )
    elif suffix == ".dbf":
        raise InputError(f"{path.name} is a table without geometry: give the .shp file.")
    if suffix == ".shp":
        for ext in (".shp", ".shx", ".dbf"):
            part = path if ext == ".shp" else _sidecar(path, ext)
            with open(part, "rb") as fh:
                _check_shapefile_part(part.name, ext, fh.read(32), part.stat().st_size)
    elif suffix == ".zip":
        _check_zipped_shapefiles(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = [str(n) for n in pyogrio.list_layers(gdal_path)[:, 0]]
    except Exception as exc:  # pyogrio.errors.DataSourceError and GDAL errors
        raise InputError(
            f"{path} cannot be read as a vector file: {_gdal_message(exc)}. Is it truncated, corrupt or "
            "not a GIS format (Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV with WKT, GML, zip)?"
        ) from None
    if not layers:
        raise InputError(f"{path} holds no vector layer.")
    if layer is None:
        if len(layers) > 1:
            raise InputError(f"{path} holds {len(layers)} layers ({', '.join(layers)}): choose one with --layer.")
        layer = layers[0]
    elif layer not in layers:
        raise InputError(f"{path} has no layer {layer!r}; its layers are: {', '.join(layers)}.")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = pyogrio.read_info(gdal_path, layer=layer, force_feature_count=True, force_total_bounds=True,
                                     **({"encoding": "latin1"} if _is_shape(path, gdal_path) else {}))
    except Exception as exc:
        raise InputError(f"{path} (layer {layer!r}) cannot be read: {_gdal_message(exc)}.") from None
    driver = info.get("driver") or ""
    raw = driver == "ESRI Shapefile"
    declared = None
    if raw and suffix == ".shp":
        cpg = _sidecar(path, ".cpg")
        if cpg is not None:
            declared = _normalise_codec(cpg.read_text(errors="replace").strip())
    if info["features"] == 0:
        raise InputError(f"The layer {layer!r} of {path} is empty: no features to load.")
    if info.get("geometry_type") in (None, "None"):
        raise InputError(f"The layer {layer!r} of {path} has no geometry column.")
    return Source(
        path=path, gdal_path=gdal_path, layer=layer, driver=driver, crs=info.get("crs"),
        fields=[str(f) for f in info["fields"]], count=int(info["features"]),
        geometry_type=info.get("geometry_type"), raw_text=raw, declared_encoding=declared,
        checksum=file_checksum(path), layers=layers, bounds=_bounds(info.get("total_bounds")),
    )


def _bounds(value) -> tuple[float, float, float, float] | None:
    try:
        b = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return b if len(b) == 4 and all(np.isfinite(b)) else None


def _check_shapefile_part(name: str, ext: str, head: bytes, size: int) -> None:
    """Check the header of a Shapefile's .shp, .shx or .dbf against the file's size.

    GDAL reads the records of a cut .shp as features without geometry and those of a cut .dbf as
    empty attributes, without failing: a truncated copy would load as garbage. The headers say how
    long each part must be.
    """
    if ext in (".shp", ".shx"):
        if len(head) < 28 or struct.unpack(">i", head[:4])[0] != 9994:
            raise InputError(f"{name} is not a valid Shapefile part (its header is wrong): the file is "
                             "corrupt or not a Shapefile.")
        declared = struct.unpack(">i", head[24:28])[0] * 2
        if size < declared:
            raise InputError(
                f"{name} is truncated: its header says {declared:,} bytes but the file has {size:,}. "
                "Copy the Shapefile again (all of .shp, .shx and .dbf)."
            )
    else:  # .dbf
        if len(head) < 12:
            raise InputError(f"{name} is truncated or not a dBase file (the attribute table of the Shapefile).")
        records, header_len, record_len = struct.unpack("<IHH", head[4:12])
        declared = header_len + records * record_len
        if size < declared:
            raise InputError(
                f"{name} is truncated: its header says {records:,} records ({declared:,} bytes) but the "
                f"file has {size:,} bytes. Copy the Shapefile again (all of .shp, .shx and .dbf)."
            )


def _check_zipped_shapefiles(path: Path) -> None:
    """The header checks of :func:`_check_shapefile_part` for the Shapefiles inside a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                ext = Path(info.filename).suffix.lower()
                if ext in (".shp", ".shx", ".dbf") and not info.is_dir():
                    with zf.open(info) as fh:
                        head = fh.read(32)
                    _check_shapefile_part(f"{path.name}:{info.filename}", ext, head, info.file_size)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(f"{path} is not a readable zip file ({exc}): is it truncated or corrupt?") from None


def _is_shape(path: Path, gdal_path: str) -> bool:
    return path.suffix.lower() in (".shp", ".zip")


def _normalise_codec(name: str) -> str | None:
    n = name.strip().lower()
    if not n:
        return None
    aliases = {"utf8": "utf-8", "utf-8": "utf-8", "65001": "utf-8", "1258": "cp1258", "1252": "cp1252",
               "ansi 1252": "cp1252", "ansi 1258": "cp1258", "iso-8859-1": "latin-1", "88591": "latin-1"}
    n = aliases.get(n, n)
    if n in LEGACY:
        return n
    try:
        return codecs.lookup(n).name
    except LookupError:
        return None


def _gdal_message(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:300]


def check_encoding_name(name: str | None) -> str | None:
    """Validate a user's ``--encoding``: ``tcvn3``, ``vni`` or a Python codec name."""
    if name is None:
        return None
    n = _normalise_codec(name)
    if n is None:
        raise InputError(
            f"Unknown text encoding {name!r}: use utf-8, tcvn3 (ABC), vni, cp1258 or another codec name."
        )
    return n


def iter_batches(source: Source, batch_size: int, encoding: str | None = None) -> Iterator[Batch]:
    """Read the source layer in Arrow batches.

    Parameters
    ----------
    source : Source
        From :func:`open_source`.
    batch_size : int
        Features per batch.
    encoding : str, optional
        The user's ``--encoding`` (already checked with :func:`check_encoding_name`).

    Raises
    ------
    InputError
        When GDAL fails midway (truncated or corrupt file) or text cannot be decoded.
    """
    kwargs: dict = {"batch_size": batch_size, "use_pyarrow": True, "return_fids": False}
    if source.raw_text:
        kwargs["encoding"] = "latin1"
    if source.open_options:
        kwargs.update({k.lower(): v for k, v in source.open_options.items()})
    start = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pyogrio.open_arrow(source.gdal_path, layer=source.layer, **kwargs) as (meta, reader):
                geom_col = meta.get("geometry_name") or "wkb_geometry"
                for rb in reader:
                    if rb.num_rows == 0:
                        continue
                    names = rb.schema.names
                    gname = geom_col if geom_col in names else names[-1]
                    wkb = rb.column(names.index(gname)).to_numpy(zero_copy_only=False)
                    cols = {}
                    for i, name in enumerate(names):
                        if name == gname:
                            continue
                        cols[name] = _fix_column(source, name, rb.column(i), start, encoding)
                    attrs = pd.DataFrame(cols)
                    fids = np.arange(start + 1, start + rb.num_rows + 1, dtype=np.int64)
                    start += rb.num_rows
                    yield Batch(attrs, wkb, fids)
    except InputError:
        raise
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(
            f"{source.path}: text near feature {start + 1} is not valid UTF-8 ({_gdal_message(exc)}); "
            "pass --encoding (tcvn3, vni, cp1258, ...)."
        ) from None
    except Exception as exc:
        raise InputError(
            f"Reading {source.path} failed near feature {start + 1} of {source.count}: "
            f"{_gdal_message(exc)}. The file may be truncated or corrupt."
        ) from None


def _fix_column(source: Source, name: str, arr: pa.Array, start: int, encoding: str | None):
    """Return a column as numpy/pandas-ready values, text decoded and NFC-normalised."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())
        else:
            return arr.to_pandas()
    if arr.null_count == len(arr) or pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return arr.to_pandas()
    enc = source.text_encoding or _decide_encoding(source, arr, encoding)
    source.text_encoding = enc
    if source.raw_text:
        values = arr.to_pylist()
        out = []
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            try:
                if enc in LEGACY:
                    out.append(text.fix_text(v, enc))
                else:
                    out.append(text.to_nfc(v.encode("latin-1").decode(enc)))
            except UnicodeError:
                raise InputError(
                    f"{source.path}: field {name!r} of feature {start + i + 1} is not valid {enc} text "
                    f"({v[:40]!r}); pass --encoding (tcvn3, vni, cp1258, ...)."
                ) from None
        return pd.Series(out, dtype=object)
    if enc in LEGACY:
        return pd.Series([None if v is None else text.fix_text(v, enc) for v in arr.to_pylist()], dtype=object)
    return text.nfc_array(arr).to_pandas()


def _decide_encoding(source: Source, arr: pa.Array, explicit: str | None) -> str:
    if explicit:
        return explicit
    sample = [v for v in arr.to_pylist()[:2000] if v]
    if source.raw_text:
        if source.declared_encoding in LEGACY:
            return source.declared_encoding
        try:
            decoded = [v.encode("latin-1").decode("utf-8") for v in sample]
            utf8_ok = True
        except UnicodeDecodeError:
            decoded, utf8_ok = [], False
        if utf8_ok and (source.declared_encoding in (None, "utf-8")):
            return "utf-8"
        legacy = text.detect_encoding(sample)
        if legacy in LEGACY:
            return legacy
        if source.declared_encoding and source.declared_encoding != "utf-8":
            return source.declared_encoding
        if utf8_ok:
            return "utf-8"
        raise InputError(
            f"{source.path}: the text is not UTF-8 and does not look like TCVN3 (ABC) or VNI "
            f"(e.g. {sample[0][:40]!r}); pass --encoding (cp1258, cp1252, tcvn3, vni, ...)."
        )
    legacy = text.detect_encoding(sample)
    return legacy if legacy in LEGACY else "unicode"


def geometries(batch: Batch) -> np.ndarray:
    """Shapely geometries of a batch (None where the WKB is missing or unreadable)."""
    if batch.geoms is not None:
        return batch.geoms
    return shapely.from_wkb(batch.wkb, on_invalid="ignore")
