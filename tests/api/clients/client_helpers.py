"""Helpers of the client tests: the SQL oracle (counts and ids computed in the database)."""

from __future__ import annotations

from psycopg import sql

from gis.catalog import Collection


def count(db, coll: Collection, where: str = "TRUE", params=None) -> int:
    """SQL count of a collection's rows matching ``where`` (the oracle)."""
    return db.execute(
        sql.SQL("SELECT count(*) FROM {} AS t WHERE ").format(
            sql.Identifier(coll.schema, coll.relation)
        )
        + sql.SQL(where),
        params,
    ).fetchone()[0]


def ids(db, coll: Collection, where: str = "TRUE", params=None) -> list:
    """SQL ids (sorted) of a collection's rows matching ``where``."""
    return [
        r[0]
        for r in db.execute(
            sql.SQL("SELECT {i} FROM {t} AS t WHERE ").format(
                i=sql.Identifier(coll.id_column), t=sql.Identifier(coll.schema, coll.relation)
            )
            + sql.SQL(where)
            + sql.SQL(" ORDER BY 1"),
            params,
        )
    ]


def norm(value):
    """A value as plain Python, comparable across clients: numbers as float or int, times as
    naive UTC ``datetime``, missing values (None, NaN, NaT) as None."""
    import datetime as dt
    import math
    from decimal import Decimal

    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        if str(value) == "NaT":
            return None
        value = value.to_pydatetime()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, int):
        return value
    return value


def sql_rows(db, coll: Collection) -> dict:
    """Every row of a collection by id: its public fields (normalised) and geometry (WKB)."""
    names = [f.name for f in coll.fields]
    cols = [sql.Identifier(coll.id_column)] + [sql.Identifier(n) for n in names]
    stmt = sql.SQL("SELECT {cols}, ST_AsBinary({g}) FROM {t}").format(
        cols=sql.SQL(", ").join(cols),
        g=sql.Identifier(coll.geometry_column),
        t=sql.Identifier(coll.schema, coll.relation),
    )
    out = {}
    for row in db.execute(stmt):
        out[row[0]] = {
            "properties": {n: norm(v) for n, v in zip(names, row[1:-1], strict=True)},
            "wkb": bytes(row[-1]) if row[-1] is not None else None,
        }
    return out
