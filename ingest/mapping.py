"""Attribute mappings: from a source file's field names to a kind's target fields.

A mapping is a small TOML file::

    name = "vn-cadastral"
    kind = "cadastral"
    detect = ["SoHieuToBanDo", "SoThuTuThua"]     # fields that identify this source (auto-detection)

    [constants]
    source = "Văn phòng đăng ký đất đai"          # a fixed value for every feature

    [fields]
    sheet_no = "SoHieuToBanDo"                     # one source field
    address = ["DiaChiThuaDat", "DiaChi"]          # the first of these present in the file
    land_use = { from = "KyHieuMucDichSuDung", upper = true }
    max_coverage = { from = "MatDoXD", scale = 0.01 }              # percent -> fraction
    category = { from = "amenity", map = { doctors = "clinic" }, default = "other" }
    category = { from = "category", pick = ["hospital", "clinic"] } # first listed value in a list field
    source_id = "@fid"                              # the feature's position in the file (1-based)
    source_id = "@geomhash"                         # a hash of the source geometry (stable id)

    [options]
    skip_geometry_types = ["Point"]     # features of these types are left out (counted, not rejected)

Presets for the common HCMC sources live in ``ingest/presets``; ``--mapping NAME`` picks one, and with
no ``--mapping`` the preset whose ``detect`` fields the file has is chosen.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.errors import InputError
from ingest.kinds import Kind

SPECIAL = ("@fid", "@geomhash")


@dataclass
class FieldRule:
    """How one target field is computed from the source."""

    target: str
    sources: list[str] = field(default_factory=list)
    map: dict[str, Any] | None = None
    default: Any = None
    scale: float | None = None
    upper: bool = False
    pick: list[str] | None = None
    number: bool = False  # take the leading number of a text such as "50 km/h"
    extract: str | None = None  # a regular expression; its first group is the value


@dataclass
class Mapping:
    """A parsed mapping file."""

    name: str
    kind: str
    rules: dict[str, FieldRule]
    constants: dict[str, Any]
    detect: list[str]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    # -- resolution against a file --------------------------------------------------------------
    def resolve(self, kind: Kind, columns: list[str]) -> dict[str, str | None]:
        """For each rule, the source column used in this file (None when none is present).

        Raises
        ------
        InputError
            When a required target field has neither a source column in the file nor a constant.
        """
        chosen: dict[str, str | None] = {}
        for target, rule in self.rules.items():
            col = None
            for src in rule.sources:
                if src in SPECIAL:
                    col = src
                    break
                col = find_column(src, columns)
                if col is not None:
                    break
            chosen[target] = col
        missing = [
            f.name for f in kind.fields
            if f.required and chosen.get(f.name) is None and f.name not in self.constants
            and (self.rules.get(f.name) is None or self.rules[f.name].default is None)
        ]
        if missing:
            wanted = {m: self.rules[m].sources if m in self.rules else [m] for m in missing}
            raise InputError(
                f"The file lacks the field(s) needed for {', '.join(missing)} "
                f"(looked for {wanted}; the file has {columns}). "
                f"Fix the file or pass --mapping with the right field names (mapping {self.name!r})."
            )
        return chosen

    # -- application ----------------------------------------------------------------------------
    def apply(
        self, df: pd.DataFrame, resolved: dict[str, str | None], fids: np.ndarray,
        source_wkb: np.ndarray | None,
    ) -> pd.DataFrame:
        """Compute the target columns (raw values, before type conversion) for one batch."""
        out = {}
        n = len(df)
        for target, rule in self.rules.items():
            col = resolved.get(target)
            if col == "@fid":
                values = pd.Series(fids.astype(str), index=df.index, dtype=object)
            elif col == "@geomhash":
                values = pd.Series(
                    [hashlib.md5(w).hexdigest() if w is not None else None for w in source_wkb],
                    index=df.index, dtype=object,
                )
            elif col is None:
                values = pd.Series([None] * n, index=df.index, dtype=object)
            else:
                values = df[col]
            out[target] = _transform(values, rule)
        for target, value in self.constants.items():
            if target not in out or out[target].isna().all():
                if isinstance(value, str):  # text: an Arrow-backed column, no Python object per row
                    const = pa.repeat(pa.scalar(value, pa.string()), n).to_pandas()
                    const.index = df.index
                    out[target] = const
                else:
                    out[target] = pd.Series([value] * n, index=df.index, dtype=object)
            else:
                out[target] = out[target].where(out[target].notna(), value)
        return pd.DataFrame(out, index=df.index)


#: Longest field name a dBase (.dbf) file holds: GDAL cuts longer names of a Shapefile to this.
DBF_NAME_LIMIT = 10


def find_column(name: str, columns: list[str]) -> str | None:
    """The column of ``columns`` that holds source field ``name``, or None.

    Matched exactly, then case-insensitively, then as a Shapefile (dBase) field name cut to 10
    characters: a Shapefile written from ``KyHieuMucDichSuDung`` has the field ``KyHieuMucD``.
    """
    if name in columns:
        return name
    lowered = {c.lower(): c for c in columns}
    if name.lower() in lowered:
        return lowered[name.lower()]
    if len(name) > DBF_NAME_LIMIT:
        cut = name[:DBF_NAME_LIMIT].lower()
        if cut in lowered:
            return lowered[cut]
    return None


def _transform(values: pd.Series, rule: FieldRule) -> pd.Series:
    if rule.pick is not None:
        wanted = [p.lower() for p in rule.pick]

        def first(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return None
            seq = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]
            for w in wanted:
                for item in seq:
                    if isinstance(item, str) and item.lower() == w:
                        return w
            return None

        values = values.map(first)
    if rule.number:
        values = values.astype(object).copy()
        is_str = values.map(lambda v: isinstance(v, str))
        if is_str.any():
            found = values[is_str].astype(str).str.extract(r"(-?\d+(?:[.,]\d+)?)")[0]
            values[is_str] = found.str.replace(",", ".", regex=False)
    if rule.extract:
        values = values.astype(object).copy()
        is_str = values.map(lambda v: isinstance(v, str))
        if is_str.any():
            values[is_str] = values[is_str].astype(str).str.extract(rule.extract)[0]
    if rule.upper:
        values = _strip_upper(values)
    if rule.map:
        mapping = {str(k): v for k, v in rule.map.items()}
        values = values.map(lambda v: mapping.get(str(v), v) if v is not None and not _isnan(v) else v)
    if rule.scale is not None:
        values = pd.to_numeric(values, errors="coerce") * rule.scale
    if rule.default is not None:
        values = values.astype(object).where(values.notna(), rule.default)
    return values


# the characters str.strip() removes from ASCII text
_ASCII_SPACE_EDGE = r"^[\t\n\x0b\x0c\r\x1c-\x1f ]|[\t\n\x0b\x0c\r\x1c-\x1f ]$"


def _strip_upper(values: pd.Series) -> pd.Series:
    """``v.strip().upper()`` of the str values; with Arrow when every value is an ASCII str (or
    missing) without spaces around it, else value by value."""
    arr = None
    if str(values.dtype) == "str" or isinstance(values.dtype, pd.StringDtype):
        arr = pa.array(values, from_pandas=True)
    elif values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    if arr is not None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.string())
        if (arr.null_count < len(arr) and pc.all(pc.string_is_ascii(arr)).as_py()
                and not pc.any(pc.match_substring_regex(arr, _ASCII_SPACE_EDGE)).as_py()):
            out = pc.ascii_upper(arr).to_pandas()
            out.index = values.index
            return out
    return values.map(lambda v: v.strip().upper() if isinstance(v, str) else v)


def _isnan(v) -> bool:
    return isinstance(v, float) and np.isnan(v)


# -- loading ------------------------------------------------------------------------------------
def _parse(data: dict, name: str, path: str | None) -> Mapping:
    if "kind" not in data:
        raise InputError(f"Mapping {name!r} has no 'kind' (e.g. kind = \"cadastral\").")
    rules = {}
    for target, spec in (data.get("fields") or {}).items():
        if isinstance(spec, str):
            rules[target] = FieldRule(target, [spec])
        elif isinstance(spec, list):
            rules[target] = FieldRule(target, [str(s) for s in spec])
        elif isinstance(spec, dict):
            src = spec.get("from", [])
            known = {"from", "map", "default", "scale", "upper", "pick", "number", "extract"}
            unknown = set(spec) - known
            if unknown:
                raise InputError(
                    f"Mapping {name!r}, field {target!r}: unknown key(s) {sorted(unknown)}; "
                    f"use {sorted(known)}."
                )
            if spec.get("scale") is not None and (isinstance(spec["scale"], bool)
                                                  or not isinstance(spec["scale"], (int, float))):
                raise InputError(f"Mapping {name!r}, field {target!r}: scale must be a number, "
                                 f"not {spec['scale']!r}.")
            if spec.get("extract") is not None:
                try:
                    if re.compile(str(spec["extract"])).groups < 1:
                        raise re.error("no group")
                except re.error as exc:
                    raise InputError(f"Mapping {name!r}, field {target!r}: extract {spec['extract']!r} is not "
                                     f"a regular expression with a (group): {exc}.") from None
            rules[target] = FieldRule(
                target, [src] if isinstance(src, str) else list(src), spec.get("map"),
                spec.get("default"), spec.get("scale"), bool(spec.get("upper", False)),
                spec.get("pick"), bool(spec.get("number", False)), spec.get("extract"),
            )
        else:
            raise InputError(f"Mapping {name!r}, field {target!r}: expected a field name, a list or a table.")
    options = dict(data.get("options") or {})
    unknown = set(options) - {"skip_geometry_types"}
    if unknown:
        raise InputError(f"Mapping {name!r}: unknown option(s) {sorted(unknown)}; use skip_geometry_types.")
    from ingest.normalise import _TYPE_IDS

    bad_types = set(options.get("skip_geometry_types") or ()) - set(_TYPE_IDS)
    if bad_types:
        raise InputError(f"Mapping {name!r}: skip_geometry_types {sorted(bad_types)} are not geometry types "
                         f"({', '.join(_TYPE_IDS)}).")
    return Mapping(
        name=data.get("name", name), kind=data["kind"], rules=rules,
        constants=dict(data.get("constants") or {}), detect=list(data.get("detect") or []),
        description=data.get("description", ""), options=options, path=path,
    )


def presets() -> dict[str, Mapping]:
    """The mapping presets shipped with the platform, by name."""
    found = {}
    for entry in resources.files("ingest.presets").iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            m = _parse(data, entry.name[:-5], f"preset:{entry.name}")
            found[m.name] = m
    return found


def load_mapping(spec: str) -> Mapping:
    """A mapping from a file path or a preset name.

    Raises
    ------
    InputError
        When the file does not exist or is not valid TOML, or no preset has that name.
    """
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise InputError(f"Mapping file {spec} does not exist.")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"Mapping file {spec} is not valid TOML: {exc}") from None
        return _parse(data, path.stem, str(path))
    known = presets()
    if spec in known:
        return known[spec]
    raise InputError(f"No mapping preset called {spec!r}; presets: {', '.join(sorted(known))}, "
                     "or give the path of a .toml mapping file.")


def identity_mapping(kind: Kind) -> Mapping:
    """The mapping for a file whose fields already carry the target names."""
    return Mapping("identity", kind.name, {f.name: FieldRule(f.name, [f.name]) for f in kind.fields}, {}, [])


def choose_mapping(kind: Kind, columns: list[str], spec: str | None) -> Mapping:
    """The mapping to use: the one named, else the preset the file's fields match, else identity.

    Raises
    ------
    InputError
        When a named mapping is for another kind, or no preset matches and the file's fields are not
        the target names either.
    """
    if spec:
        mapping = load_mapping(spec)
        if mapping.kind != kind.name:
            raise InputError(f"Mapping {mapping.name!r} is for kind {mapping.kind!r}, not {kind.name!r}.")
        return mapping
    candidates = [
        m for m in presets().values()
        if m.kind == kind.name and m.detect and all(find_column(d, columns) for d in m.detect)
    ]
    if candidates:
        candidates.sort(key=lambda m: (-len(m.detect), m.name))
        return candidates[0]
    required = [f.name for f in kind.fields if f.required]
    if all(find_column(r, columns) for r in required):
        return identity_mapping(kind)
    names = sorted(m.name for m in presets().values() if m.kind == kind.name)
    raise InputError(
        f"No mapping fits this file for kind {kind.name!r}: its fields are {columns}. Pass --mapping "
        f"with a preset ({', '.join(names)}) or a .toml file naming the source field for each of "
        f"{required}."
    )
