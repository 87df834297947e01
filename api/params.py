"""Query parameters of the OGC API, validated once into a :class:`gis.query.FeatureQuery`.

Every resource has a fixed set of parameters; a parameter outside it (and outside the collection's
queryables, for ``/items``) is a 400 naming it, so typos do not pass silently as "no filter".
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable

import orjson
from psycopg import sql
from starlette.requests import Request

from api.settings import ApiSettings
from gis.catalog import Collection
from gis.errors import InputError
from gis.query import (
    CRS84_URI,
    SUPPORTED_CRS,
    Cursor,
    FeatureQuery,
    OutputCrs,
    bbox_polygon_wkt,
    crs_by_uri,
    parse_bbox,
    parse_datetime,
    parse_sortby,
    parse_value,
)

#: Parameters every resource accepts.
COMMON = ("f", "lang")
#: Parameters of /collections/{id}/items.
ITEMS = COMMON + (
    "limit",
    "offset",
    "cursor",
    "bbox",
    "bbox-crs",
    "datetime",
    "properties",
    "sortby",
    "crs",
    "filter",
    "filter-lang",
    "filter-crs",
    "skipGeometry",
)
#: Parameters of /collections/{id}/items/{featureId}.
ITEM = COMMON + ("crs", "properties", "skipGeometry")

FILTER_LANGS = ("cql2-text", "cql2-json")
#: The largest offset: SQL's OFFSET is a bigint.
MAX_OFFSET = 2**63 - 1


def check_params(request: Request, allowed: Iterable[str], queryables: Iterable[str] = ()) -> None:
    """400 for a parameter the resource does not know, or one given twice."""
    allowed = tuple(allowed)
    extra = tuple(queryables)
    known = set(allowed) | set(extra)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in known:
            shown = name if len(name) <= 60 else name[:57] + "..."
            text = (
                f"Unknown parameter {shown!r}; the parameters of this resource are: "
                f"{', '.join(allowed)}"
            )
            if extra:
                text += f"; and its queryable properties: {', '.join(extra)}"
            raise InputError(text)
        if name in seen:
            raise InputError(f"Parameter {name} is given more than once")
        seen.add(name)


def cql2_available() -> bool:
    """Whether the CQL2 translator :mod:`gis.cql2` is installed."""
    try:
        return importlib.util.find_spec("gis.cql2") is not None
    except (ImportError, ValueError):  # pragma: no cover
        return False


def translate_filter(
    text: str, lang: str, coll: Collection, filter_crs: str | None
) -> sql.Composable:
    """The SQL of a CQL2 filter, through :func:`gis.cql2.to_sql` (the one call site).

    Raises
    ------
    gis.errors.InputError
        Bad CQL2 (from the translator), bad JSON, or no translator installed.
    """
    if not cql2_available():
        raise InputError(
            "Parameter filter: CQL2 filters are not available on this server yet "
            "(see /conformance); use plain property parameters such as "
            f"?{coll.field_names[0] if coll.field_names else 'name'}=value",
            code="OperationNotSupported",
        )
    from gis import cql2

    value: str | dict = text
    if lang == "cql2-json":
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"Parameter filter: not valid JSON for filter-lang=cql2-json ({exc})"
            ) from None
        if not isinstance(value, dict):
            raise InputError("Parameter filter: a cql2-json filter is a JSON object")
    composed = cql2.to_sql(value, lang, coll, filter_crs)
    if not isinstance(composed, sql.Composable):  # pragma: no cover - translator contract
        raise TypeError("gis.cql2.to_sql must return a psycopg.sql.Composable")
    return composed


def _int(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.isdigit() and not (text.startswith("-") and text[1:].isdigit()):
        raise InputError(f"Parameter {name}: {raw!r} is not an integer")
    value = int(text)
    if value < lo or (hi is not None and value > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InputError(f"Parameter {name}: {value} is out of range; it must be {rng}")
    return value


def output_crs(request: Request) -> OutputCrs:
    raw = request.query_params.get("crs")
    return SUPPORTED_CRS[CRS84_URI] if raw is None else crs_by_uri(raw, "crs")


def _bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    v = raw.strip().lower()
    if v not in ("true", "false", "1", "0"):
        raise InputError(f"Parameter {name}: {raw!r} is not true or false")
    return v in ("true", "1")


def _properties(request: Request, coll: Collection) -> tuple[str, ...] | None:
    raw = request.query_params.get("properties")
    if raw is None:
        return None
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for n in names:
        if n not in coll.field_names:
            raise InputError(
                f"Parameter properties: {n!r} is not a field of collection {coll.id!r}; "
                f"its fields are: {', '.join(coll.field_names)}"
            )
    return tuple(dict.fromkeys(names))


def plain_queryables(coll: Collection) -> list[str]:
    """Queryables that can be filtered on as plain parameters (``?land_use=ODT``): the id column
    and the public fields."""
    return [coll.id_column, *coll.field_names]


def items_query(
    request: Request,
    coll: Collection,
    settings: ApiSettings,
    translate: Callable[..., sql.Composable] = translate_filter,
) -> FeatureQuery:
    """Validate the parameters of ``/collections/{id}/items`` into a :class:`FeatureQuery`."""
    qp = request.query_params
    check_params(request, ITEMS, plain_queryables(coll))
    limit = _int(request, "limit", settings.default_limit, 1, settings.max_limit)
    offset = _int(request, "offset", 0, 0, MAX_OFFSET)
    cursor = None
    if qp.get("cursor") is not None:
        if qp.get("offset") is not None:
            raise InputError(
                "Parameters cursor and offset cannot be combined; follow the 'next' link "
                "or give offset alone"
            )
        cursor = Cursor.decode(qp["cursor"])
    crs = output_crs(request)
    envelope = polygon = None
    if qp.get("bbox") is not None:
        bbox_crs = (
            crs_by_uri(qp["bbox-crs"], "bbox-crs")
            if qp.get("bbox-crs")
            else SUPPORTED_CRS[CRS84_URI]
        )
        box = parse_bbox(qp["bbox"], bbox_crs)
        if bbox_crs.geographic and box[0] > box[2]:  # across the antimeridian
            polygon = (
                f"MULTIPOLYGON((({box[0]} {box[1]},180 {box[1]},180 {box[3]},{box[0]} {box[3]},"
                f"{box[0]} {box[1]})),((-180 {box[1]},{box[2]} {box[1]},{box[2]} {box[3]},"
                f"-180 {box[3]},-180 {box[1]})))"
            )
        elif bbox_crs.geographic:
            envelope = box
        else:
            polygon = bbox_polygon_wkt(box, bbox_crs)
    elif qp.get("bbox-crs") is not None:
        crs_by_uri(qp["bbox-crs"], "bbox-crs")
        raise InputError("Parameter bbox-crs is given without bbox")
    interval = parse_datetime(qp["datetime"]) if qp.get("datetime") is not None else None
    sort = parse_sortby(qp["sortby"], coll) if qp.get("sortby") is not None else ()
    equals = {}
    for name, pg_type in [(coll.id_column, coll.id_type)] + [
        (f.name, f.pg_type) for f in coll.fields
    ]:
        raw = qp.get(name)
        if raw is not None:
            equals[name] = parse_value(raw, pg_type, name)
    cql = None
    if qp.get("filter") is not None:
        lang = (qp.get("filter-lang") or "cql2-text").strip().lower()
        if lang not in FILTER_LANGS:
            raise InputError(
                f"Parameter filter-lang: {qp['filter-lang']!r} is not supported; give "
                f"{' or '.join(FILTER_LANGS)}"
            )
        fcrs = crs_by_uri(qp["filter-crs"], "filter-crs").uri if qp.get("filter-crs") else None
        cql = translate(qp["filter"], lang, coll, fcrs)
    else:
        for name in ("filter-lang", "filter-crs"):
            if qp.get(name) is not None:
                raise InputError(f"Parameter {name} is given without filter")
    q = FeatureQuery(
        collection=coll,
        bbox_envelope=envelope,
        bbox_polygon=polygon,
        interval=interval,
        equals=equals,
        cql=cql,
        properties=_properties(request, coll),
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
        crs=crs,
        skip_geometry=_bool(request, "skipGeometry"),
    )
    return q.checked()


def item_query(request: Request, coll: Collection, feature_id: str) -> FeatureQuery:
    """Validate the parameters of ``/collections/{id}/items/{featureId}``."""
    check_params(request, ITEM)
    q = FeatureQuery(
        collection=coll,
        properties=_properties(request, coll),
        crs=output_crs(request),
        skip_geometry=_bool(request, "skipGeometry"),
        feature_id=feature_id,
        limit=1,
    )
    return q.checked()
