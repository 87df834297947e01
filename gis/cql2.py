"""OGC CQL2 filters (OGC API - Features - Part 3) translated to safe PostGIS SQL.

:func:`to_sql` turns a CQL2 filter, in the text or the JSON encoding, into a
:class:`psycopg.sql.Composable` WHERE-clause fragment for one :class:`~gis.catalog.Collection`:

* properties resolve against the collection's *public* fields, its id column (also as ``id``)
  and its geometry (also as ``geometry``); anything else is an :class:`~gis.errors.InputError`
  that lists the queryables;
* identifiers are always :class:`psycopg.sql.Identifier`, values always adapted literals (see
  "Values in the SQL" below): no user text is ever pasted into the SQL;
* types are checked before PostgreSQL sees the query (``sheet_no = 'abc'`` is a 400 with a message
  naming the property and the value, not a cast error and a 500);
* geometry literals are validated and reprojected to the storage CRS (EPSG:4326, lon/lat) with
  :func:`gis.crs.make_transformer` (official VN-2000 Helmert) before they reach the SQL.

:func:`queryables` gives the Part 3 JSON Schema of a collection's queryables and
:data:`CONFORMANCE` the conformance classes this module implements.

Parsing
-------
The text encoding is parsed by this module's own LALR grammar (Lark) and the JSON encoding by a
small walker, both producing :mod:`pygeofilter.ast` nodes. pygeofilter 0.4's own parsers follow an
earlier draft of CQL2 and cannot read standard filters this platform must accept: the function form
of temporal predicates (``T_AFTER(a, b)``), ``T_STARTS`` / ``T_FINISHES`` / ``T_DISJOINT``,
``INTERVAL('2020-01-01', '..')``, escaped quotes (``'O''Brien'``), one-letter property names, the
JSON ``between`` with three arguments, JSON ``accenti``; they also map ``T_INTERSECTS`` to
``T_OVERLAPS`` and give ``LIKE`` the single-character wildcard ``.`` instead of ``_``.

Semantics worth knowing
-----------------------
* ``CASEI(x)`` is ``lower(x)``; ``ACCENTI(x)`` removes diacritics (Vietnamese included: ``Đ``
  -> ``D``, ``ế`` -> ``e``) with a portable ``translate()`` fold, or with the ``unaccent``
  extension when the caller passes ``unaccent_schema``. As in the standard, ``ACCENTI`` alone
  stays case-sensitive: ``CASEI(ACCENTI(name)) = CASEI(ACCENTI('ben nghe'))`` matches
  ``'Bến Nghé'``, ``ACCENTI(name) = ACCENTI('ben nghe')`` does not.
* String literals are normalised to NFC, as stored text is.
* ``LIKE`` uses ``%`` and ``_`` as wildcards and ``\\`` as escape character.
* Temporal literals are UTC: ``DATE('2024-01-01')`` compared with a timestamp property is
  ``2024-01-01T00:00:00Z``; a timestamp without offset is read as UTC.
* ``INTERVAL(a, b)`` bounds may be instants, ``'..'`` (unbounded) or date/timestamp properties (a
  NULL property bound is unbounded). ``INTERVAL(<datetime_start>, <datetime_end>)`` of a collection
  is its validity period, half-open ``[start, end)`` with a NULL end meaning "still in force". The
  T_ relations follow the CQL2 (Allen) definitions on the end points; the half-open end matters for
  ``T_INTERSECTS`` / ``T_DISJOINT``: the instant ``end`` is not in ``[start, end)``.
* Arithmetic is done in ``numeric`` (no integer overflow); ``/`` is true division, ``div``
  truncating division, ``%`` the remainder (sign of the dividend), ``^`` a power in ``float8``.
  Arithmetic on literals only is computed here, so PostgreSQL never folds a failing constant; a
  division by a literal zero is an InputError, a division by a zero *value* gives NULL (the row
  does not match). What cannot be checked before the data is read (``float8`` overflow of ``^``)
  raises one of :data:`DATA_ERROR_SQLSTATES`, which the API should answer with a 400.

Values in the SQL
-----------------
Values are rendered with :class:`psycopg.sql.Literal` (psycopg's own quoting and adaptation), so the
fragment is self-contained: it can be composed into any query and executed with or without
parameters. One precaution makes that true: a string value never puts a ``%`` character in the SQL
text (``'a%'`` is rendered ``('a' || chr(37))``), since psycopg would read it as a placeholder in a
query executed with parameters.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import psycopg
import shapely
import shapely.geometry
from psycopg import sql
from pygeofilter import ast, values

from gis.catalog import Collection
from gis.crs import make_transformer, parse_crs
from gis.errors import InputError

__all__ = [
    "CONFORMANCE",
    "DATA_ERROR_SQLSTATES",
    "FILTER_LANGS",
    "MAX_DEPTH",
    "MAX_FILTER_CHARS",
    "MAX_NODES",
    "MAX_VERTICES",
    "TimeIntersects",
    "parse",
    "queryables",
    "to_sql",
    "unaccent_schema",
]

_CONF = "http://www.opengis.net/spec/cql2/1.0/conf/"
#: Conformance classes of OGC CQL2 1.0 this module implements (for the API's ``/conformance``).
CONFORMANCE: list[str] = [
    _CONF + name
    for name in (
        "cql2-text",
        "cql2-json",
        "basic-cql2",
        "advanced-comparison-operators",
        "case-insensitive-comparison",
        "accent-insensitive-comparison",
        "basic-spatial-functions",
        "basic-spatial-functions-plus",
        "spatial-functions",
        "temporal-functions",
        "arithmetic",
        "property-property",
    )
]

#: Accepted values of ``filter-lang``.
FILTER_LANGS: tuple[str, ...] = ("cql2-text", "cql2-json")

#: Longest filter accepted (characters of the text, or of the JSON document).
MAX_FILTER_CHARS = 1_000_000
#: Most nodes in a filter's expression tree (predicates, operators, properties, literals, items of
#: IN lists; a geometry literal counts as one node, its vertices count against MAX_VERTICES).
MAX_NODES = 500
#: Deepest nesting of the expression tree (a chain ``a AND b AND c ...`` counts as one level).
MAX_DEPTH = 25
#: Most vertices in all the geometry literals of a filter together.
MAX_VERTICES = 10_000

#: SQLSTATEs that a query with a filter can raise because of the *data* met by the filter's
#: arithmetic (float8 overflow of ``^``...): the caller should answer them with a 400 ("the
#: filter's arithmetic overflows on the data"), not a 500.
DATA_ERROR_SQLSTATES = frozenset({"22003", "22012", "2201E", "2201F"})

# --------------------------------------------------------------------------------------------------
# AST additions (pygeofilter.ast lacks these)
# --------------------------------------------------------------------------------------------------


@dataclass
class TimeIntersects(ast.TemporalPredicate):
    """``T_INTERSECTS(a, b)`` (pygeofilter maps it to T_OVERLAPS, which is another relation)."""

    op: ClassVar[Any] = "INTERSECTS"


class _ExtraOp(Enum):
    MOD = "%"
    DIV = "div"
    POW = "^"


@dataclass
class Mod(ast.Arithmetic):
    """CQL2 ``%`` (remainder, sign of the dividend)."""

    op: ClassVar[Any] = _ExtraOp.MOD


@dataclass
class IntDiv(ast.Arithmetic):
    """CQL2 ``div`` (division truncated towards zero)."""

    op: ClassVar[Any] = _ExtraOp.DIV


@dataclass
class Power(ast.Arithmetic):
    """CQL2 ``^``."""

    op: ClassVar[Any] = _ExtraOp.POW


_SPATIAL: dict[str, type[ast.SpatialComparisonPredicate]] = {
    "s_intersects": ast.GeometryIntersects,
    "s_equals": ast.GeometryEquals,
    "s_disjoint": ast.GeometryDisjoint,
    "s_touches": ast.GeometryTouches,
    "s_within": ast.GeometryWithin,
    "s_overlaps": ast.GeometryOverlaps,
    "s_crosses": ast.GeometryCrosses,
    "s_contains": ast.GeometryContains,
}
_SPATIAL_SQL = {
    ast.GeometryIntersects: "ST_Intersects", ast.GeometryEquals: "ST_Equals",
    ast.GeometryDisjoint: "ST_Disjoint", ast.GeometryTouches: "ST_Touches",
    ast.GeometryWithin: "ST_Within", ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryCrosses: "ST_Crosses", ast.GeometryContains: "ST_Contains",
}
_TEMPORAL: dict[str, type[ast.TemporalPredicate]] = {
    "t_after": ast.TimeAfter,
    "t_before": ast.TimeBefore,
    "t_contains": ast.TimeContains,
    "t_disjoint": ast.TimeDisjoint,
    "t_during": ast.TimeDuring,
    "t_equals": ast.TimeEquals,
    "t_finishedby": ast.TimeEndedBy,
    "t_finishes": ast.TimeEnds,
    "t_intersects": TimeIntersects,
    "t_meets": ast.TimeMeets,
    "t_metby": ast.TimeMetBy,
    "t_overlappedby": ast.TimeOverlappedBy,
    "t_overlaps": ast.TimeOverlaps,
    "t_startedby": ast.TimeBegunBy,
    "t_starts": ast.TimeBegins,
}
_TEMPORAL_NAME = {cls: name.upper() for name, cls in _TEMPORAL.items()}
_SPATIAL_NAME = {cls: name.upper() for name, cls in _SPATIAL.items()}
_COMPARISONS: dict[str, type[ast.Comparison]] = {
    "=": ast.Equal, "<>": ast.NotEqual, "<": ast.LessThan, "<=": ast.LessEqual,
    ">": ast.GreaterThan, ">=": ast.GreaterEqual,
}
_ARITHMETIC: dict[str, type[ast.Arithmetic]] = {
    "+": ast.Add, "-": ast.Sub, "*": ast.Mul, "/": ast.Div, "%": Mod, "div": IntDiv, "^": Power,
}
_STRING_FUNCTIONS = ("casei", "accenti")
_ARRAY_FUNCTIONS = ("a_equals", "a_contains", "a_containedby", "a_overlaps")

# --------------------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------------------

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}(:?\d{2})?)?")


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_date(text: str) -> date:
    if not isinstance(text, str) or not _DATE_RE.fullmatch(text):
        raise InputError(f"Invalid date {_short(text)!r} in filter: write YYYY-MM-DD, e.g. "
                         "DATE('2024-07-01')")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"Invalid date {text!r} in filter: {exc}") from None


def _parse_timestamp(text: str) -> datetime:
    if not isinstance(text, str) or not _TIMESTAMP_RE.fullmatch(text):
        raise InputError(f"Invalid timestamp {_short(text)!r} in filter: write "
                         "YYYY-MM-DDTHH:MM:SSZ, e.g. TIMESTAMP('2024-07-01T00:00:00Z')")
    try:
        value = datetime.fromisoformat(text.replace("t", "T").replace("z", "Z"))
    except ValueError as exc:
        raise InputError(f"Invalid timestamp {text!r} in filter: {exc}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_instant(text: str) -> date | datetime | None:
    """An INTERVAL bound given as a string: a date, a timestamp or '..' (None)."""
    if text == "..":
        return None
    if isinstance(text, str) and _DATE_RE.fullmatch(text):
        return _parse_date(text)
    if isinstance(text, str) and _TIMESTAMP_RE.fullmatch(text):
        return _parse_timestamp(text)
    raise InputError(f"Invalid INTERVAL bound {_short(text)!r} in filter: give a date "
                     "('2024-07-01'), a timestamp ('2024-07-01T00:00:00Z'), '..' for an open end, "
                     "or a date/timestamp property")


def _number(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"The number {value!r} in the filter is not finite")
    return value


def _make_envelope(nums: list[Any]) -> values.Envelope:
    if len(nums) not in (4, 6) or not all(
            isinstance(n, (int, float)) and not isinstance(n, bool) for n in nums):
        raise InputError("BBOX needs 4 numbers (minx, miny, maxx, maxy) or 6 (with min and max "
                         f"z); got {_short(nums, 80)}")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    minx, miny, maxx, maxy = (float(_number(n)) for n in nums)
    if minx > maxx or miny > maxy:
        raise InputError(f"BBOX({minx:g}, {miny:g}, {maxx:g}, {maxy:g}) is empty: give minx, "
                         "miny, maxx, maxy with min <= max")
    return values.Envelope(minx, maxx, miny, maxy)


# --------------------------------------------------------------------------------------------------
# CQL2 text: grammar and tree builder
# --------------------------------------------------------------------------------------------------

# One expression grammar for conditions and values (as SQL parsers do), so that "(" can open either
# without LALR conflicts; the compiler checks which is which. Keywords are reserved (quote a
# property called e.g. "point" or "and" with double quotes); DATE(), TIMESTAMP(), INTERVAL(),
# BBOX(), CASEI(), ACCENTI(), S_*() and T_*() are parsed as function calls, recognised by name.
_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | and_expr (_OR and_expr)+                        -> or_
?and_expr: not_expr
         | not_expr (_AND not_expr)+                      -> and_
?not_expr: predicate
         | NOT not_expr                                   -> not_

?predicate: sum
          | sum COMP_OP sum                               -> compare
          | sum [NOT] _LIKE sum                           -> like
          | sum [NOT] _BETWEEN sum _AND sum               -> between
          | sum [NOT] _IN "(" sum ("," sum)* ")"          -> in_
          | sum _IS [NOT] _NULL                           -> is_null

?sum: product
    | sum ADD_OP product                                  -> arith
?product: power
        | product MUL_OP power                            -> arith
?power: unary
      | unary CARET unary                                 -> power
?unary: atom
      | ADD_OP unary                                      -> sign

?atom: NUMBER                                             -> number
     | STRING                                             -> string
     | BOOLEAN                                            -> boolean
     | NAME                                               -> property
     | QUOTED_NAME                                        -> quoted_property
     | NAME "(" _args? ")"                                -> function
     | geometry
     | "(" or_expr ")"
     | "(" or_expr ("," or_expr)+ ")"                     -> array

_args: or_expr ("," or_expr)*

?geometry: POINT [Z] COORDS                               -> point
         | LINESTRING [Z] COORDS                          -> linestring
         | POLYGON [Z] rings                              -> polygon
         | MULTIPOINT [Z] COORDS                          -> multipoint
         | MULTIPOINT [Z] "(" COORDS ("," COORDS)* ")"    -> multipoint_2
         | MULTILINESTRING [Z] rings                      -> multilinestring
         | MULTIPOLYGON [Z] "(" rings ("," rings)* ")"    -> multipolygon
         | GEOMETRYCOLLECTION [Z] "(" geometry ("," geometry)* ")"   -> geometrycollection
rings: "(" COORDS ("," COORDS)* ")"

_OR.3: /OR\b/i
_AND.3: /AND\b/i
NOT.3: /NOT\b/i
_LIKE.3: /LIKE\b/i
_BETWEEN.3: /BETWEEN\b/i
_IN.3: /IN\b/i
_IS.3: /IS\b/i
_NULL.3: /NULL\b/i
BOOLEAN.3: /(TRUE|FALSE)\b/i
POINT.3: /POINT\b/i
LINESTRING.3: /LINESTRING\b/i
POLYGON.3: /POLYGON\b/i
MULTIPOINT.3: /MULTIPOINT\b/i
MULTILINESTRING.3: /MULTILINESTRING\b/i
MULTIPOLYGON.3: /MULTIPOLYGON\b/i
GEOMETRYCOLLECTION.3: /GEOMETRYCOLLECTION\b/i
Z.3: /Z\b/i
COMP_OP: "<>" | "<=" | ">=" | "=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%" | /div\b/i
CARET: "^"
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/
// a whole parenthesised list of positions is one token (fast on large geometries)
COORDS.4: /\(\s*<POSITION>(\s*,\s*<POSITION>)*\s*\)/
STRING: /'(?:[^'\\]|''|\\.)*'/s
QUOTED_NAME: /"(?:[^"]|"")+"/
NAME.1: /[^\W\d][\w.:]*/

%ignore /\s+/
""".replace("<POSITION>", r"{n}\s+{n}(\s+{n})?".format(
    n=r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"))


def _unquote_string(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "'" and body[i + 1: i + 2] == "'":
            out.append("'")
            i += 2
        elif ch == "\\" and i + 1 < len(body):
            out.append("'" if body[i + 1] == "'" else body[i: i + 2])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _to_number(text: str) -> int | float:
    try:
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        value = float(text)
    except ValueError:
        raise InputError(f"The number {_short(text)} in the filter is too long") from None
    if not math.isfinite(value):
        raise InputError(f"The number {_short(text)} in the filter is too large")
    return value


def _function(name: str, args: list[Any]) -> Any:
    """A function call of CQL2 text: literal constructors, predicates or value functions."""
    lower = name.lower()

    def arity(n: int) -> None:
        if len(args) != n:
            raise InputError(f"{name.upper()} takes {n} argument{'s' if n > 1 else ''}, got "
                             f"{len(args)}")

    if lower in ("date", "timestamp"):
        arity(1)
        if not isinstance(args[0], str):
            example = "'2024-07-01'" if lower == "date" else "'2024-07-01T00:00:00Z'"
            raise InputError(f"{name.upper()} takes a quoted string, e.g. "
                             f"{name.upper()}({example})")
        return _parse_date(args[0]) if lower == "date" else _parse_timestamp(args[0])
    if lower == "interval":
        arity(2)
        return values.Interval(*(_interval_bound(a) for a in args))
    if lower == "bbox":
        return _make_envelope(list(args))
    if lower in _SPATIAL:
        arity(2)
        return _SPATIAL[lower](*args)
    if lower in _TEMPORAL:
        arity(2)
        return _TEMPORAL[lower](*args)
    if lower in _STRING_FUNCTIONS:
        arity(1)
        return ast.Function(lower, list(args))
    if lower in _ARRAY_FUNCTIONS:
        raise InputError(f"{name.upper()}: array functions are not supported by this server")
    return ast.Function(name, list(args))


def _interval_bound(value: Any) -> Any:
    if isinstance(value, str):
        return _parse_instant(value)
    if isinstance(value, (date, ast.Attribute)):  # datetime is a date
        return value
    raise InputError(f"Invalid INTERVAL bound {_short(_describe_node(value))} in filter: give a "
                     "date, a timestamp, '..' or a date/timestamp property")


def _build_transformer():
    from lark import Transformer, v_args

    @v_args(inline=True)
    class _Builder(Transformer):
        """Builds pygeofilter AST nodes while the LALR parser reduces (no recursion)."""

        def or_(self, *items):
            return ast.Or.from_items(*items)

        def and_(self, *items):
            return ast.And.from_items(*items)

        def not_(self, _tok, node):
            return ast.Not(node)

        def compare(self, lhs, op, rhs):
            return _COMPARISONS[str(op)](lhs, rhs)

        def like(self, lhs, not_, pattern):
            return ast.Like(lhs, pattern, False, "%", "_", "\\", not_ is not None)

        def between(self, lhs, not_, low, high):
            return ast.Between(lhs, low, high, not_ is not None)

        def in_(self, lhs, not_, *items):
            return ast.In(lhs, list(items), not_ is not None)

        def is_null(self, lhs, not_):
            return ast.IsNull(lhs, not_ is not None)

        def arith(self, lhs, op, rhs):
            return _ARITHMETIC[str(op).lower()](lhs, rhs)

        def power(self, lhs, _op, rhs):
            return Power(lhs, rhs)

        def sign(self, op, value):
            if str(op) == "+":
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
            return ast.Sub(0, value)

        def number(self, tok):
            return _to_number(str(tok))

        def string(self, tok):
            return _unquote_string(str(tok))

        def boolean(self, tok):
            return str(tok).lower() == "true"

        def property(self, tok):
            return ast.Attribute(str(tok))

        def quoted_property(self, tok):
            return ast.Attribute(str(tok)[1:-1].replace('""', '"'))

        def function(self, name, *args):
            return _function(str(name), list(args))

        def array(self, *items):
            raise InputError("Arrays are not supported by this server")

        # geometries, as GeoJSON dicts
        def COORDS(self, tok):
            positions = []
            for position in str(tok)[1:-1].split(","):
                positions.append([_to_number(n) for n in position.split()])
            return positions

        def rings(self, *rings):
            return list(rings)

        @staticmethod
        def _geom(kind, coordinates):
            return values.Geometry({"type": kind, "coordinates": coordinates})

        def point(self, _kw, _z, coords):
            if len(coords) != 1:
                raise InputError(f"A POINT has one position, got {len(coords)}")
            return self._geom("Point", coords[0])

        def linestring(self, _kw, _z, coords):
            return self._geom("LineString", coords)

        def polygon(self, _kw, _z, rings):
            return self._geom("Polygon", rings)

        def multipoint(self, _kw, _z, coords):
            return self._geom("MultiPoint", coords)

        def multipoint_2(self, _kw, _z, *points):
            if any(len(p) != 1 for p in points):
                raise InputError("Each point of a MULTIPOINT has one position")
            return self._geom("MultiPoint", [p[0] for p in points])

        def multilinestring(self, _kw, _z, rings):
            return self._geom("MultiLineString", rings)

        def multipolygon(self, _kw, _z, *polygons):
            return self._geom("MultiPolygon", list(polygons))

        def geometrycollection(self, _kw, _z, *geoms):
            return values.Geometry({"type": "GeometryCollection",
                                    "geometries": [g.geometry for g in geoms]})

    return _Builder()


@functools.cache
def _text_parser():
    from lark import Lark

    return Lark(_GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=True,
                transformer=_build_transformer())


_FRIENDLY_TOKENS = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "NAME": "a property name",
    "NUMBER": "a number", "STRING": "a quoted string", "COMP_OP": "a comparison (=, <>, <, ...)",
    "_AND": "AND", "_OR": "OR", "NOT": "NOT", "_LIKE": "LIKE", "_BETWEEN": "BETWEEN", "_IN": "IN",
    "_IS": "IS", "_NULL": "NULL", "COORDS": "coordinates such as (106.7 10.8, ...)",
    "$END": "the end of the filter",
}


def _parse_text(text: str) -> Any:
    from lark.exceptions import (
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedInput,
        UnexpectedToken,
    )

    if not text.strip():
        raise InputError("The filter is empty")
    _check_nesting(text)
    try:
        return _text_parser().parse(text)
    except UnexpectedInput as exc:
        pos = getattr(exc, "pos_in_stream", None)
        token = getattr(exc, "token", None)
        at_end = (isinstance(exc, UnexpectedEOF) or pos is None or pos >= len(text)
                  or (token is not None and token.type == "$END"))
        if at_end:
            where, near = "at the end", text.strip()[-25:]
        else:
            where = (f"at line {exc.line}, column {exc.column}" if "\n" in text
                     else f"at position {exc.column}")
            near = text[pos: pos + 25].split("\n")[0]
        detail = ""
        if not at_end and text[pos] == "'":
            detail = "; unterminated string? (write a quote inside a string as '')"
        elif isinstance(exc, UnexpectedToken) and not at_end:
            detail = f"; unexpected {_short(str(token), 20)!r}"
        elif isinstance(exc, UnexpectedCharacters):
            detail = f"; unexpected character {text[pos]!r}"
        names = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
        friendly = sorted({_FRIENDLY_TOKENS[n] for n in names if n in _FRIENDLY_TOKENS})
        if friendly and len(friendly) <= 8:
            detail += f"; expected {', '.join(friendly)}"
        raise InputError(f"Invalid CQL2 text {where} near {near!r}{detail}") from None


def _check_nesting(text: str) -> None:
    """Refuse absurd bracket nesting cheaply (strings skipped) before parsing."""
    depth = deepest = 0
    for part in re.split(r"'(?:[^'\\]|''|\\.)*'", text):
        for ch in part:
            if ch == "(":
                depth += 1
                deepest = max(deepest, depth)
            elif ch == ")":
                depth -= 1
    if deepest > 4 * MAX_DEPTH:
        raise InputError(f"The filter is nested too deeply ({deepest} levels of brackets; at most "
                         f"{4 * MAX_DEPTH})")


# --------------------------------------------------------------------------------------------------
# CQL2 JSON
# --------------------------------------------------------------------------------------------------

_JSON_COMPARISONS = {**_COMPARISONS, "eq": ast.Equal, "neq": ast.NotEqual}


def _parse_json(value: str | dict) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise InputError("The filter is empty")

        def constant(name: str) -> None:
            raise InputError(f"The number {name} in the filter is not finite")

        try:
            value = json.loads(value, parse_constant=constant)
        except json.JSONDecodeError as exc:
            raise InputError(f"Invalid CQL2 JSON at line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}") from None
        except RecursionError:
            raise InputError("The filter is nested too deeply") from None
    if not isinstance(value, (dict, bool)):
        raise InputError("A cql2-json filter must be a JSON object (e.g. "
                         '{"op": "=", "args": [{"property": "land_use"}, "ODT"]})')
    return _JsonWalker().walk(value, 0)


class _JsonWalker:
    """CQL2 1.0 JSON -> pygeofilter AST; lenient with a few shapes of earlier drafts."""

    def __init__(self) -> None:
        self.coordinates = 0

    def walk(self, node: Any, depth: int) -> Any:
        if depth > 2 * MAX_DEPTH:
            raise InputError(f"The filter is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, (bool, str)):
            return node
        if isinstance(node, (int, float)):
            return _number(node)
        if isinstance(node, list):
            raise InputError(f"Unexpected array {_short(json.dumps(node), 60)} in filter: arrays "
                             "are only allowed as the list of 'in' and the bounds of 'interval'")
        if node is None:
            raise InputError("null is not a CQL2 value (use the isNull operator)")
        if not isinstance(node, dict):
            raise InputError(f"Unexpected value {_short(node)!r} in filter")
        if "op" in node:
            return self.op(node, depth)
        if "property" in node:
            name = node["property"]
            if not isinstance(name, str):
                raise InputError(f"A property name must be a string, got {_short(name)!r}")
            return ast.Attribute(name)
        if "date" in node:
            return _parse_date(node["date"])
        if "timestamp" in node:
            return _parse_timestamp(node["timestamp"])
        if "interval" in node:
            bounds = node["interval"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise InputError('An interval is {"interval": [start, end]}, got '
                                 f"{_short(json.dumps(node), 80)}")
            return values.Interval(*(_interval_bound(self.walk(b, depth + 1)) for b in bounds))
        if "type" in node and ("coordinates" in node or "geometries" in node):
            return self.geometry(node)
        if "bbox" in node:
            box = node["bbox"]
            return _make_envelope(list(box) if isinstance(box, list) else [box])
        if "type" in node:
            return self.geometry(node)
        raise InputError(f"Unexpected object {_short(json.dumps(node), 80)} in filter")

    def geometry(self, node: dict) -> values.Geometry:
        """A GeoJSON geometry; coordinates counted (and typed) before shapely reads them."""

        def count(coords: Any, level: int) -> None:
            if level > 4:
                raise InputError("Invalid GeoJSON coordinates in filter: nested too deeply")
            if isinstance(coords, (list, tuple)) and coords and not isinstance(
                    coords[0], (list, tuple)):
                if not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                           for c in coords) or len(coords) not in (2, 3):
                    raise InputError("Invalid GeoJSON position in filter: "
                                     f"{_short(json.dumps(coords), 60)}")
                for c in coords:
                    _number(c)
                self.coordinates += 1
                if self.coordinates > MAX_VERTICES:
                    raise InputError(f"The geometries of the filter have more than {MAX_VERTICES} "
                                     "vertices")
                return
            if not isinstance(coords, (list, tuple)):
                raise InputError("Invalid GeoJSON coordinates in filter: "
                                 f"{_short(json.dumps(coords), 60)}")
            for c in coords:
                count(c, level + 1)

        kind = node.get("type")
        if kind == "GeometryCollection":
            parts = node.get("geometries")
            if not isinstance(parts, (list, tuple)) or not parts:
                raise InputError("A GeoJSON GeometryCollection needs a non-empty 'geometries'")
            for part in parts:
                if not isinstance(part, dict) or part.get("type") == "GeometryCollection":
                    raise InputError("Invalid geometry in a GeoJSON GeometryCollection")
                self.geometry(part)
        elif kind in ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                      "MultiPolygon"):
            count(node.get("coordinates"), 0)
        else:
            raise InputError(f"Unknown GeoJSON geometry type {_short(kind)!r} in filter")
        return values.Geometry(node)

    def op(self, node: dict, depth: int) -> Any:
        op = node["op"]
        if not isinstance(op, str):
            raise InputError(f"An operator name must be a string, got {_short(op)!r}")
        name = op.lower() if op.lower() != "isnull" else "isNull"
        args = node.get("args", [])
        if not isinstance(args, list):
            args = [args]

        def need(n: int) -> None:
            if len(args) != n:
                raise InputError(f"Operator {op!r} takes {n} argument{'s' if n > 1 else ''}, got "
                                 f"{len(args)}")

        def sub(value: Any) -> Any:
            return self.walk(value, depth + 1)

        if name in ("and", "or"):
            if len(args) < 2:
                raise InputError(f"Operator {op!r} takes at least 2 arguments, got {len(args)}")
            cls = ast.And if name == "and" else ast.Or
            return cls.from_items(*(sub(a) for a in args))
        if name == "not":
            need(1)
            return ast.Not(sub(args[0]))
        if name == "isNull":
            need(1)
            return ast.IsNull(sub(args[0]), False)
        if name in _JSON_COMPARISONS:
            need(2)
            return _JSON_COMPARISONS[name](sub(args[0]), sub(args[1]))
        if name == "like":
            need(2)
            return ast.Like(sub(args[0]), sub(args[1]), False, "%", "_", "\\", False)
        if name == "between":
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:  # older drafts
                args = [args[0], *args[1]]
            need(3)
            return ast.Between(sub(args[0]), sub(args[1]), sub(args[2]), False)
        if name == "in":
            need(2)
            if not isinstance(args[1], list) or not args[1]:
                raise InputError("Operator 'in' takes a property and a non-empty list, e.g. "
                                 '{"op": "in", "args": [{"property": "land_use"}, ["ODT", "TMD"]]}')
            return ast.In(sub(args[0]), [sub(a) for a in args[1]], False)
        if name in _STRING_FUNCTIONS:
            need(1)
            return ast.Function(name, [sub(args[0])])
        if name in _SPATIAL:
            need(2)
            return _SPATIAL[name](sub(args[0]), sub(args[1]))
        if name in _TEMPORAL:
            need(2)
            return _TEMPORAL[name](sub(args[0]), sub(args[1]))
        if name in _ARITHMETIC:
            need(2)
            return _ARITHMETIC[name](sub(args[0]), sub(args[1]))
        if name in _ARRAY_FUNCTIONS:
            raise InputError(f"{op}: array functions are not supported by this server")
        return ast.Function(op, [sub(a) for a in args])


# --------------------------------------------------------------------------------------------------
# Parsing and limits
# --------------------------------------------------------------------------------------------------


def parse(filter: str | dict, lang: str = "cql2-text") -> Any:  # noqa: A002 - the OGC name
    """Parse a CQL2 filter into a :mod:`pygeofilter.ast` tree and check the size limits.

    Parameters
    ----------
    filter : str or dict
        The filter: CQL2 text, or CQL2 JSON as a dict or a JSON string.
    lang : {"cql2-text", "cql2-json"}
        The encoding (the OGC ``filter-lang`` parameter).

    Returns
    -------
    pygeofilter.ast.Node or bool
        The expression tree (literals as Python values; :class:`TimeIntersects`, :class:`Mod`,
        :class:`IntDiv` and :class:`Power` complete pygeofilter's node classes).

    Raises
    ------
    gis.errors.InputError
        Unknown ``lang``, a syntax error (with its position), or a filter beyond
        :data:`MAX_FILTER_CHARS`, :data:`MAX_NODES`, :data:`MAX_DEPTH` or :data:`MAX_VERTICES`.
    """
    if not isinstance(lang, str) or lang.strip().lower() not in FILTER_LANGS:
        raise InputError(f"Unknown filter-lang {_short(lang)!r}: use one of "
                         f"{', '.join(FILTER_LANGS)}")
    lang = lang.strip().lower()
    if isinstance(filter, str) and len(filter) > MAX_FILTER_CHARS:
        raise InputError(f"The filter is too long ({len(filter):,} characters; at most "
                         f"{MAX_FILTER_CHARS:,})")
    if lang == "cql2-text":
        if not isinstance(filter, str):
            raise InputError(f"A cql2-text filter must be a string, got {type(filter).__name__}")
        tree = _parse_text(filter)
    else:
        if not isinstance(filter, (str, dict)):
            raise InputError("A cql2-json filter must be a JSON object or its text, got "
                             f"{type(filter).__name__}")
        tree = _parse_json(filter)
    _check_size(tree)
    return tree


def _children(node: Any) -> list[Any]:
    if isinstance(node, ast.Like):
        return [node.lhs, node.pattern]
    if isinstance(node, ast.Node):
        return list(node.get_sub_nodes())
    if isinstance(node, values.Interval):
        return [node.start, node.end]
    if isinstance(node, list):
        return node
    return []


def _check_size(tree: Any) -> None:
    """Count nodes, depth and geometry vertices without recursion."""
    nodes = vertices = 0
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InputError(f"The filter is too large (more than {MAX_NODES} terms)")
        if depth > MAX_DEPTH:
            raise InputError(f"The filter is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, (values.Geometry, values.Envelope)):
            vertices += _count_vertices(node)
            if vertices > MAX_VERTICES:
                raise InputError(f"The geometries of the filter have more than {MAX_VERTICES} "
                                 "vertices")
            continue
        for child in _children(node):
            same_chain = type(child) is type(node) and isinstance(node, (ast.And, ast.Or))
            stack.append((child, depth if same_chain else depth + 1))


def _count_vertices(value: values.Geometry | values.Envelope) -> int:
    if isinstance(value, values.Envelope):
        return 5
    total, stack = 0, [value.geometry]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.get("geometries") or [])
            stack.append(item.get("coordinates"))
        elif isinstance(item, (list, tuple)):
            if item and not isinstance(item[0], (list, tuple)):
                total += 1
            else:
                stack.extend(item)
    return total


# --------------------------------------------------------------------------------------------------
# Accent folding
# --------------------------------------------------------------------------------------------------

_FOLD_EXTRA = {"Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Ɖ": "D", "ɖ": "d", "Ø": "O", "ø": "o",
               "Ł": "L", "ł": "l", "Ħ": "H", "ħ": "h", "Ŧ": "T", "ŧ": "t", "ı": "i"}


@functools.cache
def _fold_table() -> tuple[str, str]:
    """``translate()`` arguments removing Latin diacritics (all Vietnamese letters included).

    Precomposed letters map to their base letter, đ/Đ and a few letters without a decomposition by
    hand, and combining marks (U+0300-U+036F, from decomposed text) are deleted.
    """
    src, dst = [], []
    for cp in (*range(0xC0, 0x250), *range(0x1E00, 0x1F00)):
        ch = chr(cp)
        if ch in _FOLD_EXTRA or not unicodedata.category(ch).startswith("L"):
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        base = decomposed[0]
        if len(decomposed) > 1 and base.isascii() and base.isalpha() and all(
                unicodedata.category(m) == "Mn" for m in decomposed[1:]):
            src.append(ch)
            dst.append(base)
    for ch, base in _FOLD_EXTRA.items():
        src.append(ch)
        dst.append(base)
    marks = "".join(chr(cp) for cp in range(0x300, 0x370))
    return "".join(src) + marks, "".join(dst)


def unaccent_schema(conn: psycopg.Connection) -> str | None:
    """Schema of the ``unaccent`` extension in the connected database, or None if not installed.

    Pass it to :func:`to_sql` (``unaccent_schema=``) to fold accents with ``unaccent`` instead of
    the portable ``translate()`` fold; both give the same result on Vietnamese text.
    """
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'unaccent'").fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------------------------------
# Compilation to SQL
# --------------------------------------------------------------------------------------------------

_NUMBER_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}
_STRING_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
_KIND_WORDS = {"number": "a number", "string": "text", "boolean": "a boolean", "date": "a date",
               "timestamp": "a timestamp", "geometry": "a geometry", "other": "not comparable"}
_TEMPORAL_KINDS = ("date", "timestamp")
_NO_VALUE = object()


def _kind_of(pg_type: str) -> str:
    if pg_type in _NUMBER_TYPES:
        return "number"
    if pg_type in _STRING_TYPES:
        return "string"
    if pg_type == "bool":
        return "boolean"
    if pg_type == "date":
        return "date"
    if pg_type in ("timestamptz", "timestamp"):
        return "timestamp"
    if pg_type in ("geometry", "geography"):
        return "geometry"
    return "other"


@dataclass(frozen=True)
class _Val:
    """A compiled value expression with its type, for checks and messages."""

    sql: sql.Composable
    kind: str
    label: str
    value: Any = _NO_VALUE      # the Python value of a literal
    prop: str | None = None     # the property name when the value is a bare property
    pg_type: str | None = None

    @property
    def is_literal(self) -> bool:
        return self.value is not _NO_VALUE


@dataclass(frozen=True)
class _Bound:
    """One end of a temporal operand: a value, or an unbounded end (sign -1 / +1)."""

    val: _Val | None
    infinite: int = 0
    coalesce: int = 0   # NULL of the property means this infinity


@dataclass(frozen=True)
class _Period:
    start: _Bound
    end: _Bound
    end_open: bool
    label: str


def _describe_node(node: Any) -> str:
    if isinstance(node, ast.Attribute):
        return f"property {node.name!r}"
    if isinstance(node, bool):
        return "TRUE" if node else "FALSE"
    if isinstance(node, str):
        return f"the string {_short(node)!r}"
    if isinstance(node, (int, float)):
        return f"the number {node!r}"
    if isinstance(node, datetime):
        return f"the timestamp {node.isoformat()}"
    if isinstance(node, date):
        return f"the date {node.isoformat()}"
    if isinstance(node, (values.Geometry, values.Envelope)):
        return "a geometry"
    if isinstance(node, values.Interval):
        return "an INTERVAL"
    if isinstance(node, ast.Function):
        return f"{node.name.upper()}(...)"
    return type(node).__name__


def _lit_str(value: str) -> sql.Composable:
    """A string literal whose SQL text never contains '%' (see the module docstring)."""
    if "%" not in value:
        return sql.Literal(value)
    parts = [sql.Literal(p) for p in value.split("%")]
    return sql.SQL("(") + sql.SQL(" || chr(37) || ").join(parts) + sql.SQL(")")


def _clean_string(value: str) -> str:
    if "\x00" in value:
        raise InputError("A string in the filter contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("A string in the filter is not valid Unicode") from None
    return unicodedata.normalize("NFC", value)


def _fold_int(value: int) -> int:
    if abs(value) >= 10 ** 1000:
        raise InputError("A number computed in the filter is too large")
    return value


class _Compiler:
    def __init__(self, collection: Collection, filter_crs: str | None, lang: str,
                 unaccent: str | None) -> None:
        self.coll = collection
        self.lang = lang
        self.unaccent = unaccent
        self.fields = {f.name: f for f in collection.fields}
        self.swap_axes = False
        self.reprojector = None
        self.crs_name = filter_crs or "CRS84"
        if filter_crs is not None:
            crs = parse_crs(filter_crs)
            first = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
            self.swap_axes = first in ("north", "south")
            reprojector = make_transformer(crs)
            self.reprojector = None if reprojector.is_identity else reprojector
        self.vertices = 0

    # ---- properties ------------------------------------------------------------------------

    def queryable_names(self) -> list[str]:
        return [self.coll.id_column, *self.fields, "geometry"]

    def prop(self, name: str) -> _Val:
        coll = self.coll
        if name in self.fields:
            f = self.fields[name]
            column, pg_type = f.name, f.pg_type
        elif name == coll.id_column or (name == "id" and "id" not in self.fields):
            column, pg_type = coll.id_column, coll.id_type
        elif name == coll.geometry_column or (name == "geometry" and "geometry" not in self.fields):
            column, pg_type = coll.geometry_column, "geometry"
        else:
            raise InputError(f"Unknown property {_short(name, 60)!r} in filter: queryables of "
                             f"{coll.id} are {', '.join(self.queryable_names())}")
        kind = _kind_of(pg_type)
        expr: sql.Composable = sql.Identifier(column)
        if pg_type == "timestamp":  # without time zone: read as UTC, whatever the session says
            expr = sql.SQL("({} AT TIME ZONE 'UTC')").format(expr)
        return _Val(expr, kind, f"property {name!r}", prop=name, pg_type=pg_type)

    # ---- conditions ------------------------------------------------------------------------

    def cond(self, node: Any) -> sql.Composable:
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, (ast.And, ast.Or)):
            items = self._flatten(node)
            joiner = sql.SQL(" AND " if isinstance(node, ast.And) else " OR ")
            return sql.SQL("(") + joiner.join(self.cond(i) for i in items) + sql.SQL(")")
        if isinstance(node, ast.Not):
            return sql.SQL("(NOT {})").format(self.cond(node.sub_node))
        if isinstance(node, ast.Comparison):
            return self.compare(node)
        if isinstance(node, ast.Between):
            return self.between(node)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            return self.in_(node)
        if isinstance(node, ast.IsNull):
            val = self.value(node.lhs)
            return sql.SQL("({} IS {}NULL)").format(val.sql, sql.SQL("NOT " if node.not_ else ""))
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, ast.TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, ast.Attribute):
            val = self.prop(node.name)
            hint = f": write {node.name} = TRUE" if val.kind == "boolean" else ""
            raise InputError(f"Property {node.name!r} alone is not a condition{hint}")
        if isinstance(node, ast.Function):
            self.value(node)  # raises for unknown functions
            raise InputError(f"{node.name.upper()}(...) is a value, not a condition: compare it, "
                             f"e.g. {node.name.upper()}(name) = {node.name.upper()}('...')")
        raise InputError(f"{_describe_node(node)} is not a condition: use a comparison or a "
                         "predicate such as S_INTERSECTS or T_INTERSECTS")

    @staticmethod
    def _flatten(node: ast.Combination) -> list[Any]:
        out, stack = [], [node]
        while stack:
            item = stack.pop()
            if type(item) is type(node):
                stack.extend((item.rhs, item.lhs))
            else:
                out.append(item)
        return out

    def _comparable(self, a: _Val, b: _Val, what: str) -> tuple[_Val, _Val]:
        """Check that two values can be compared; harmonise dates with timestamps."""
        for v in (a, b):
            if v.kind == "geometry":
                raise InputError(f"{what}: {v.label} is a geometry; compare geometries with "
                                 "S_EQUALS, S_INTERSECTS, ...")
            if v.kind == "other":
                raise InputError(f"{what}: {v.label} (type {v.pg_type}) cannot be compared")
        if a.kind in _TEMPORAL_KINDS and b.kind in _TEMPORAL_KINDS:
            if a.kind != b.kind:
                return self._as_timestamp(a), self._as_timestamp(b)
            return a, b
        if a.kind == b.kind:
            return a, b
        raise InputError(self._mismatch(a, b, what))

    def _mismatch(self, a: _Val, b: _Val, what: str) -> str:
        prop, other = (a, b) if a.prop or not b.prop else (b, a)
        if prop.prop:
            words = _KIND_WORDS[prop.kind]
            typ = f" ({prop.pg_type})" if prop.pg_type not in ("text", words) else ""
            head = (f"{what}: property {prop.prop!r} is {words}{typ} and cannot be compared with "
                    f"{other.label}")
        else:
            head = f"{what}: cannot compare {a.label} with {b.label}"
        hint = ""
        if prop.kind in _TEMPORAL_KINDS and other.kind == "string" and other.is_literal:
            text = _short(other.value)
            fn = "TIMESTAMP" if _TIMESTAMP_RE.fullmatch(other.value) else "DATE"
            if self.lang == "cql2-json":
                hint = f'; write {{"{fn.lower()}": "{text}"}}'
            else:
                hint = f"; write {fn}('{text}')"
        elif prop.kind == "number" and other.kind == "string" and other.is_literal:
            hint = "; write numbers without quotes"
        elif prop.kind == "string" and other.kind == "number" and other.is_literal:
            hint = (f"; quote the value: '{other.value}'" if self.lang == "cql2-text"
                    else f'; give the value as a string: "{other.value}"')
        return head + hint

    def compare(self, node: ast.Comparison) -> sql.Composable:
        op = node.op.value
        a, b = self._comparable(self.value(node.lhs), self.value(node.rhs), f"Comparison {op}")
        if a.kind == "boolean" and op not in ("=", "<>"):
            raise InputError(f"Comparison {op}: booleans can only be compared with = or <>")
        return sql.SQL("({} {} {})").format(a.sql, sql.SQL(op), b.sql)

    def between(self, node: ast.Between) -> sql.Composable:
        val = self.value(node.lhs)
        low = self.value(node.low)
        high = self.value(node.high)
        val1, low = self._comparable(val, low, "BETWEEN")
        val2, high = self._comparable(val, high, "BETWEEN")
        if low.kind != high.kind or val1.kind != val2.kind:  # mixed date/timestamp bounds
            val1, low, high = (self._as_timestamp(v) for v in (val, low, high))
        if val1.kind == "boolean":
            raise InputError("BETWEEN: booleans cannot be ordered")
        return sql.SQL("({} {}BETWEEN {} AND {})").format(
            val1.sql, sql.SQL("NOT " if node.not_ else ""), low.sql, high.sql)

    def like(self, node: ast.Like) -> sql.Composable:
        val = self.value(node.lhs)
        if val.kind != "string":
            raise InputError(f"LIKE: {val.label} is {_KIND_WORDS[val.kind]}, not text")
        inner = node.pattern
        while isinstance(inner, ast.Function) and inner.name.lower() in _STRING_FUNCTIONS \
                and len(inner.arguments) == 1:
            inner = inner.arguments[0]
        if not isinstance(inner, str):
            raise InputError("LIKE: the pattern must be a quoted string (optionally in CASEI() or "
                             f"ACCENTI()), got {_describe_node(inner)}")
        if re.search(r"(?<!\\)(\\\\)*\\$", inner):
            raise InputError(f"LIKE: the pattern {_short(inner)!r} ends with the escape "
                             "character '\\'; write '\\\\' for a backslash")
        pattern = self.value(node.pattern)
        return sql.SQL("({} {}LIKE {})").format(val.sql, sql.SQL("NOT " if node.not_ else ""),
                                                 pattern.sql)

    def in_(self, node: ast.In) -> sql.Composable:
        val = self.value(node.lhs)
        items = []
        for item in node.sub_nodes:
            left, right = self._comparable(val, self.value(item), "IN")
            items.append((left, right))
        if any(left.kind != items[0][0].kind for left, _ in items):
            items = [(self._as_timestamp(a), self._as_timestamp(b)) for a, b in items]
        left = items[0][0]
        return sql.SQL("({} {}IN ({}))").format(
            left.sql, sql.SQL("NOT " if node.not_ else ""),
            sql.SQL(", ").join(right.sql for _, right in items))

    # ---- spatial ---------------------------------------------------------------------------

    def spatial(self, node: ast.SpatialComparisonPredicate) -> sql.Composable:
        name = _SPATIAL_NAME[type(node)]
        args = []
        for arg in (node.lhs, node.rhs):
            val = self.value(arg)
            if val.kind != "geometry":
                raise InputError(f"{name} compares geometries: {val.label} is "
                                 f"{_KIND_WORDS[val.kind]}")
            args.append(val.sql)
        return sql.SQL("{}({}, {})").format(sql.SQL(_SPATIAL_SQL[type(node)]), *args)

    def geometry(self, value: values.Geometry | values.Envelope) -> _Val:
        label = "a geometry"
        try:
            if isinstance(value, values.Envelope):
                geom = shapely.box(value.x1, value.y1, value.x2, value.y2)
                label = "a BBOX"
            else:
                geom = shapely.geometry.shape(value.geometry)
        except InputError:
            raise
        except Exception as exc:  # shapely/GEOS raise many types for malformed input
            raise InputError(f"Invalid geometry in filter: {_short(exc, 120)}") from None
        kind = geom.geom_type
        self.vertices += int(shapely.get_num_coordinates(geom))
        if self.vertices > MAX_VERTICES:
            raise InputError(f"The geometries of the filter have more than {MAX_VERTICES} vertices")
        if geom.is_empty:
            raise InputError(f"The {kind} in the filter is empty")
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            raise InputError(f"The {kind} in the filter has coordinates that are not finite")
        geom = shapely.force_2d(geom)
        if self.swap_axes:
            geom = shapely.transform(geom, lambda c: c[:, ::-1])
        if self.reprojector is not None:
            geom = self.reprojector.transform_geoms(geom)
        minx, miny, maxx, maxy = geom.bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            crs = self.crs_name
            hint = (" (the filter-crs is latitude first: give latitude, longitude; for longitude "
                    "first use http://www.opengis.net/def/crs/OGC/1.3/CRS84)") if self.swap_axes \
                else ""
            raise InputError(f"The {kind} in the filter lies outside longitude -180..180 / "
                             f"latitude -90..90 once read in {crs}{hint}: check the coordinates "
                             "and the filter-crs")
        if not shapely.is_valid(geom):
            raise InputError(f"The {kind} in the filter is not valid "
                             f"({shapely.is_valid_reason(geom)}): fix the geometry")
        ewkb = shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)
        return _Val(sql.SQL("ST_GeomFromEWKB(decode({}, 'hex'))").format(sql.Literal(ewkb)),
                    "geometry", label, value=geom)

    # ---- temporal --------------------------------------------------------------------------

    def _as_timestamp(self, val: _Val) -> _Val:
        if val.kind != "date":
            return val
        if val.is_literal:
            ts = datetime(val.value.year, val.value.month, val.value.day, tzinfo=UTC)
            return _Val(sql.Literal(ts), "timestamp", val.label, value=ts)
        return _Val(sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(val.sql), "timestamp",
                    val.label, prop=val.prop, pg_type=val.pg_type)

    def period(self, node: Any, name: str) -> _Period:
        if isinstance(node, values.Interval):
            bounds = []
            for bound, sign in ((node.start, -1), (node.end, 1)):
                if bound is None:
                    bounds.append(_Bound(None, infinite=sign))
                    continue
                val = self.value(bound)
                if val.kind not in _TEMPORAL_KINDS:
                    raise InputError(f"{name}: the INTERVAL bound {val.label} is "
                                     f"{_KIND_WORDS[val.kind]}, not a date or timestamp")
                bounds.append(_Bound(val, coalesce=sign if val.prop else 0))
            # the collection's validity period [datetime_start, datetime_end) is half-open
            start, end = self.coll.datetime_start, self.coll.datetime_end
            validity = (isinstance(node.start, ast.Attribute) and node.start.name == start
                        and isinstance(node.end, ast.Attribute) and node.end.name == end
                        and start in self.fields and end in self.fields)
            return _Period(bounds[0], bounds[1], validity, "an INTERVAL")
        val = self.value(node)
        if val.kind not in _TEMPORAL_KINDS:
            hint = ""
            if val.kind == "string" and val.is_literal:
                hint = (" (write DATE('...'), TIMESTAMP('...') or INTERVAL('...', '...'))"
                        if self.lang == "cql2-text" else
                        ' (write {"date": ...}, {"timestamp": ...} or {"interval": [..., ...]})')
            raise InputError(f"{name} compares dates, timestamps and intervals: {val.label} is "
                             f"{_KIND_WORDS[val.kind]}{hint}")
        return _Period(_Bound(val), _Bound(val), False, val.label)

    def temporal(self, node: ast.TemporalPredicate) -> sql.Composable:
        name = _TEMPORAL_NAME[type(node)]
        a, b = self.period(node.lhs, name), self.period(node.rhs, name)
        kinds = {bd.val.kind for p in (a, b) for bd in (p.start, p.end) if bd.val is not None}
        kind = "timestamp" if "timestamp" in kinds else "date"
        pg = sql.SQL("timestamptz" if kind == "timestamp" else "date")

        def end(bound: _Bound) -> sql.Composable:
            if bound.val is None:
                return sql.SQL("'{}'::{}").format(
                    sql.SQL("-infinity" if bound.infinite < 0 else "infinity"), pg)
            val = self._as_timestamp(bound.val) if kind == "timestamp" else bound.val
            if bound.coalesce:
                return sql.SQL("COALESCE({}, '{}'::{})").format(
                    val.sql, sql.SQL("-infinity" if bound.coalesce < 0 else "infinity"), pg)
            return val.sql

        as_, ae, bs, be = end(a.start), end(a.end), end(b.start), end(b.end)

        def f(template: str, *args: sql.Composable) -> sql.Composable:
            return sql.SQL(template).format(*args)

        def intersects() -> sql.Composable:
            return f("({} {} {} AND {} {} {})", as_, sql.SQL("<" if b.end_open else "<="), be,
                     bs, sql.SQL("<" if a.end_open else "<="), ae)

        cls = type(node)
        if cls is ast.TimeAfter:
            return f("({} > {})", as_, be)
        if cls is ast.TimeBefore:
            return f("({} < {})", ae, bs)
        if cls is ast.TimeContains:
            return f("({} < {} AND {} > {})", as_, bs, ae, be)
        if cls is ast.TimeDisjoint:
            return f("(NOT {})", intersects())
        if cls is ast.TimeDuring:
            return f("({} > {} AND {} < {})", as_, bs, ae, be)
        if cls is ast.TimeEquals:
            return f("({} = {} AND {} = {})", as_, bs, ae, be)
        if cls is ast.TimeEndedBy:    # T_FINISHEDBY
            return f("({} < {} AND {} = {})", as_, bs, ae, be)
        if cls is ast.TimeEnds:       # T_FINISHES
            return f("({} > {} AND {} = {})", as_, bs, ae, be)
        if cls is TimeIntersects:
            return intersects()
        if cls is ast.TimeMeets:
            return f("({} = {})", ae, bs)
        if cls is ast.TimeMetBy:
            return f("({} = {})", as_, be)
        if cls is ast.TimeOverlappedBy:
            return f("({} > {} AND {} < {} AND {} > {})", as_, bs, as_, be, ae, be)
        if cls is ast.TimeOverlaps:
            return f("({} < {} AND {} > {} AND {} < {})", as_, bs, ae, bs, ae, be)
        if cls is ast.TimeBegunBy:    # T_STARTEDBY
            return f("({} = {} AND {} > {})", as_, bs, ae, be)
        if cls is ast.TimeBegins:     # T_STARTS
            return f("({} = {} AND {} < {})", as_, bs, ae, be)
        raise InputError(f"{name} is not supported")  # pragma: no cover - all mapped above

    # ---- values ----------------------------------------------------------------------------

    def value(self, node: Any) -> _Val:
        if isinstance(node, bool):
            return _Val(sql.SQL("TRUE" if node else "FALSE"), "boolean", _describe_node(node),
                        value=node)
        if isinstance(node, (int, float)):
            return _Val(sql.SQL("({})").format(sql.Literal(_number(node))), "number",
                        _describe_node(node), value=node)
        if isinstance(node, str):
            text = _clean_string(node)
            return _Val(_lit_str(text), "string", _describe_node(text), value=text)
        if isinstance(node, datetime):
            value = node if node.tzinfo is not None else node.replace(tzinfo=UTC)
            return _Val(sql.Literal(value), "timestamp", _describe_node(node), value=value)
        if isinstance(node, date):
            return _Val(sql.Literal(node), "date", _describe_node(node), value=node)
        if isinstance(node, (values.Geometry, values.Envelope)):
            return self.geometry(node)
        if isinstance(node, values.Interval):
            raise InputError("An INTERVAL can only be used in the T_ temporal functions")
        if isinstance(node, ast.Attribute):
            return self.prop(node.name)
        if isinstance(node, ast.Function):
            return self.function(node)
        if isinstance(node, ast.Arithmetic):
            return self.arithmetic(node)
        if isinstance(node, ast.Node):
            raise InputError(f"A condition ({type(node).__name__}) cannot be used as a value")
        raise InputError(f"Unsupported value {_short(node)!r} in filter")

    def function(self, node: ast.Function) -> _Val:
        name = node.name.lower()
        if name not in _STRING_FUNCTIONS:
            raise InputError(f"Unsupported function {_short(node.name)!r} in filter: this server "
                             "supports CASEI and ACCENTI (and the S_ spatial and T_ temporal "
                             "predicates)")
        if len(node.arguments) != 1:
            raise InputError(f"{name.upper()} takes 1 argument, got {len(node.arguments)}")
        arg = self.value(node.arguments[0])
        if arg.kind != "string":
            raise InputError(f"{name.upper()} applies to text: {arg.label} is "
                             f"{_KIND_WORDS[arg.kind]}")
        if name == "casei":
            expr = sql.SQL("lower({})").format(arg.sql)
        elif self.unaccent:
            fn = sql.Identifier(self.unaccent, "unaccent")
            expr = sql.SQL("{}({}::regdictionary, {})").format(
                fn, sql.Literal(f"{self.unaccent}.unaccent"), arg.sql)
        else:
            src, dst = _fold_table()
            expr = sql.SQL("translate({}, {}, {})").format(arg.sql, sql.Literal(src),
                                                           sql.Literal(dst))
        return _Val(expr, "string", f"{name.upper()}({arg.label})")

    def arithmetic(self, node: ast.Arithmetic) -> _Val:
        symbol = node.op.value
        a, b = self.value(node.lhs), self.value(node.rhs)
        for v in (a, b):
            if v.kind != "number":
                raise InputError(f"Arithmetic {symbol}: {v.label} is {_KIND_WORDS[v.kind]}, not a "
                                 "number")
        if a.is_literal and b.is_literal:
            result = _fold(type(node), a.value, b.value)
            return self.value(result)
        if type(node) in (ast.Div, Mod, IntDiv) and b.is_literal and b.value == 0:
            raise InputError("Division by zero in the filter")
        an = sql.SQL("{}::numeric").format(a.sql)
        bn = sql.SQL("{}::numeric").format(b.sql)
        cls = type(node)
        if cls in (ast.Add, ast.Sub, ast.Mul):
            expr = sql.SQL("({} {} {})").format(an, sql.SQL(symbol), bn)
        elif cls is ast.Div:
            expr = sql.SQL("({} / NULLIF({}, 0))").format(an, bn)
        elif cls is Mod:
            expr = sql.SQL("mod({}, NULLIF({}, 0))").format(an, bn)
        elif cls is IntDiv:
            expr = sql.SQL("div({}, NULLIF({}, 0))").format(an, bn)
        else:  # Power, in float8; undefined cases give NULL
            expr = sql.SQL(
                "(CASE WHEN {a} < 0 AND {b} <> trunc({b}) THEN NULL WHEN {a} = 0 AND {b} < 0 THEN "
                "NULL ELSE power({a}::float8, {b}::float8) END)").format(a=an, b=bn)
        return _Val(expr, "number", f"an expression ({symbol})")


def _fold(cls: type, a: int | float, b: int | float) -> int | float:
    """Arithmetic on two literals, done here so that PostgreSQL never folds a failing constant."""
    try:
        if cls is ast.Add:
            result = a + b
        elif cls is ast.Sub:
            result = a - b
        elif cls is ast.Mul:
            if isinstance(a, int) and isinstance(b, int):
                _fold_int(a)
                _fold_int(b)
            result = a * b
        elif cls in (ast.Div, Mod, IntDiv):
            if b == 0:
                raise InputError("Division by zero in the filter")
            if cls is ast.Div:
                result = a / b
            else:
                quotient = abs(a) // abs(b) if isinstance(a, int) and isinstance(b, int) \
                    else math.floor(abs(a) / abs(b))
                quotient = quotient if (a >= 0) == (b > 0) else -quotient
                result = quotient if cls is IntDiv else a - b * quotient
        else:  # Power
            if a == 0 and b < 0:
                raise InputError("Zero raised to a negative power in the filter")
            if a < 0 and float(b) != math.floor(b):
                raise InputError("A negative number raised to a fractional power in the filter")
            if isinstance(a, int) and isinstance(b, int) and 0 <= b <= 4096 and \
                    b * math.log10(abs(a) + 1) < 1000:
                result = a ** b
            else:
                result = math.pow(a, b)
    except (OverflowError, ZeroDivisionError):
        raise InputError("A number computed in the filter is too large") from None
    if isinstance(result, float):
        return _number(result) if math.isfinite(result) else _overflow()
    return _fold_int(result)


def _overflow() -> float:
    raise InputError("A number computed in the filter is too large")


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def to_sql(
    filter: str | dict,  # noqa: A002 - the OGC parameter name
    lang: str,
    collection: Collection,
    filter_crs: str | None = None,
    *,
    unaccent_schema: str | None = None,
) -> sql.Composable:
    """Translate a CQL2 filter into a WHERE-clause fragment for ``collection``.

    Parameters
    ----------
    filter : str or dict
        The filter: CQL2 text, or CQL2 JSON as a dict or a JSON string.
    lang : {"cql2-text", "cql2-json"}
        The encoding (the ``filter-lang`` parameter).
    collection : gis.catalog.Collection
        The collection filtered. Properties are its public fields, its id column (also as ``id``)
        and its geometry (also as ``geometry``).
    filter_crs : str, optional
        CRS of the filter's geometry literals (``filter-crs``), in any form that
        :func:`gis.crs.parse_crs` reads (``http://www.opengis.net/def/crs/EPSG/0/9210``,
        ``EPSG:3857``...). Coordinates follow the CRS's axis order, so EPSG:4326 is latitude
        first; the default is CRS84 (longitude, latitude).
    unaccent_schema : str, optional
        Schema of the ``unaccent`` extension (:func:`unaccent_schema`), to fold accents in
        ``ACCENTI`` with it; by default a ``translate()`` fold that needs no extension.

    Returns
    -------
    psycopg.sql.Composable
        A parenthesised boolean SQL expression on the collection's columns (unqualified names),
        e.g. ``("land_use" = 'ODT')``. Values are literals adapted by psycopg; the fragment
        can be composed into a query run with or without parameters.

    Raises
    ------
    gis.errors.InputError
        Bad ``lang``, a syntax error, an unknown property, a type mismatch, an unsupported function,
        an invalid geometry or CRS, a filter over the limits (:data:`MAX_NODES`, :data:`MAX_DEPTH`,
        :data:`MAX_VERTICES`, :data:`MAX_FILTER_CHARS`). The message is safe to show to the user.

    Examples
    --------
    >>> where = to_sql("land_use IN ('ODT', 'TMD') AND legal_area_m2 > 100", "cql2-text",
    ...                catalog["parcels"])  # doctest: +SKIP
    >>> conn.execute(sql.SQL("SELECT parcel_id FROM {t} WHERE {w}").format(
    ...     t=sql.Identifier("cadastral", "parcels_current"), w=where))  # doctest: +SKIP
    """
    tree = parse(filter, lang)
    compiler = _Compiler(collection, filter_crs, lang.strip().lower(), unaccent_schema)
    return compiler.cond(tree)


_GEOJSON_SCHEMAS = {
    "Point": "Point", "MultiPoint": "MultiPoint", "LineString": "LineString",
    "MultiLineString": "MultiLineString", "Polygon": "Polygon", "MultiPolygon": "MultiPolygon",
}


def queryables(collection: Collection, lang: str = "en") -> dict:
    """The queryables of ``collection`` as the JSON Schema of OGC API - Features - Part 3.

    Parameters
    ----------
    collection : gis.catalog.Collection
        The collection.
    lang : {"en", "vi"}
        Language of the titles.

    Returns
    -------
    dict
        ``{"$schema": ".../draft/2019-09/schema", "type": "object", "title": ..., "properties":
        {...}, "additionalProperties": false}``; the caller adds ``"$id"`` (the URL of the
        queryables resource). Properties are the id column, the public fields and ``geometry``,
        with their JSON type and format, unit (``x-ogc-unit``) and role (``x-ogc-role``).
    """
    vi = lang == "vi"
    props: dict[str, dict] = {}
    id_type = _kind_of(collection.id_type)
    props[collection.id_column] = {
        "title": "Mã định danh" if vi else "Identifier",
        "type": "integer" if collection.id_type in ("int2", "int4", "int8") else
        ("number" if id_type == "number" else "string"),
        "x-ogc-role": "id",
    }
    for f in collection.fields:
        entry: dict[str, Any] = {"title": (f.title_vi if vi else f.title_en) or f.name}
        if _kind_of(f.pg_type) == "geometry":
            entry.update(format="geometry-any", **{"$ref": "https://geojson.org/schema/Geometry.json"})
        else:
            entry["type"] = f.json_type
            if f.json_format:
                entry["format"] = f.json_format
        if f.unit:
            entry["x-ogc-unit"] = f.unit
        if f.name == collection.datetime_start:
            entry["x-ogc-role"] = ("primary-interval-start" if collection.datetime_end
                                   else "primary-instant")
        elif f.name == collection.datetime_end:
            entry["x-ogc-role"] = "primary-interval-end"
        props[f.name] = entry
    gtype = _GEOJSON_SCHEMAS.get(collection.geometry_type.replace("string", "String"), "Geometry")
    props["geometry"] = {
        "title": "Hình học" if vi else "Geometry",
        "format": f"geometry-{gtype.lower() if gtype != 'Geometry' else 'any'}",
        "$ref": f"https://geojson.org/schema/{gtype}.json",
        "x-ogc-role": "primary-geometry",
    }
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "title": collection.title(lang),
        "properties": props,
        "additionalProperties": False,
    }
