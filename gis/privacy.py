"""The minimum-count rule for published aggregates that count persons.

A statistic that counts owners, or the parcels of persons (households and individuals), per block
or ward can identify someone when the count is small: "1 individual owner in this block" names
the owner to any neighbour. Such counts are therefore published only when they are at least
:data:`MIN_COUNT` (k = 3, the threshold most statistical offices use for frequency tables):

* a count of 1 .. k-1 is suppressed (published as missing, never as a number);
* 0 is published: an empty cell says nothing about any person;
* values derived from a suppressed count in the same row (a share, a density) are suppressed too;
* within a group (e.g. the cells of one ward), when exactly one cell is suppressed the next smallest
  non-zero cell is suppressed as well (secondary suppression), so that a published total cannot
  give the hidden cell back by subtraction.

An analysis declares such columns in its result's ``attrs``:

``person_counts``
    a list of column names, or a mapping ``{count column: [derived columns]}``;
``person_count_groups``
    optional, the column(s) that group cells for secondary suppression (e.g. ``["code"]``).

:func:`apply_minimum_count` is applied by :mod:`gis.analysis.output` to every result it writes
(files and published tables), and records what it did in ``attrs["minimum_count_rule"]`` so that
the output's metadata states the rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gis.errors import InputError

#: the smallest count of persons (or of parcels of persons) that is published
MIN_COUNT = 3

STATEMENT = ("Counts of persons or of parcels of persons below {k} are suppressed (published as missing), "
             "with values derived from them; 0 is published. Where one cell of a group was suppressed, "
             "the next smallest was suppressed too, so totals cannot reveal it.")


def _declared(df: pd.DataFrame) -> dict[str, list[str]]:
    spec = df.attrs.get("person_counts")
    if not spec:
        return {}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        out = {str(k): [str(c) for c in (v or ())] for k, v in spec.items()}
    else:
        out = {str(c): [] for c in spec}
    missing = [c for c in [*out, *(d for v in out.values() for d in v)] if c not in df.columns]
    if missing:
        raise InputError(f"The result declares person counts in columns it does not have: {', '.join(missing)}.")
    return out


def apply_minimum_count(df: pd.DataFrame, k: int = MIN_COUNT) -> pd.DataFrame:
    """A copy of ``df`` with the minimum-count rule applied to its declared person counts.

    Parameters
    ----------
    df : DataFrame or GeoDataFrame
        A result; ``df.attrs["person_counts"]`` declares the counted columns (see the module).
        A result that declares none is returned as it is (not copied).
    k : int
        The threshold: counts 1 .. k-1 are suppressed.

    Returns
    -------
    DataFrame
        The counted columns as nullable integers (suppressed cells missing), derived columns
        missing where their count was suppressed, and ``attrs["minimum_count_rule"]``:
        ``k``, ``columns``, ``suppressed_cells`` (primary), ``secondary_cells`` and a statement.

    Raises
    ------
    InputError
        A declared column is missing, not numeric, or holds a negative or fractional count.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"block": ["a", "b", "c"], "n_owners": [0, 2, 7]})
    >>> df.attrs["person_counts"] = ["n_owners"]
    >>> apply_minimum_count(df)["n_owners"].tolist()
    [0, <NA>, 7]
    """
    if not isinstance(k, int) or k < 1:
        raise InputError(f"The minimum count must be a positive integer; got {k!r}.")
    spec = _declared(df)
    if not spec:
        return df
    groups = df.attrs.get("person_count_groups") or []
    if isinstance(groups, str):
        groups = [groups]
    missing = [g for g in groups if g not in df.columns]
    if missing:
        raise InputError(f"The result groups person counts by columns it does not have: {', '.join(missing)}.")
    out = df.copy()
    primary = secondary = 0
    for col, derived in spec.items():
        s = out[col]
        if not pd.api.types.is_numeric_dtype(s):
            raise InputError(f"Column {col!r} is declared a count of persons but is not numeric ({s.dtype}).")
        values = pd.to_numeric(s, errors="coerce")
        known = values.notna()
        if (values[known] < 0).any() or (values[known] % 1 != 0).any():
            raise InputError(f"Column {col!r} is declared a count of persons but holds negative or "
                             "fractional values.")
        hide = known & (values > 0) & (values < k)
        primary += int(hide.sum())
        if groups and hide.any():
            extra = pd.Series(False, index=out.index)
            key = groups[0] if len(groups) == 1 else list(groups)
            for idx in out.groupby(key, sort=False, dropna=False).groups.values():
                h = hide.loc[idx]
                if int(h.sum()) == 1:
                    rest = values.loc[idx][~h & known.loc[idx] & (values.loc[idx] > 0)]
                    if len(rest):
                        extra.loc[rest.idxmin()] = True
            secondary += int(extra.sum())
            hide = hide | extra
        out[col] = values.round().astype("Int64").mask(hide)
        for d in derived:
            if pd.api.types.is_numeric_dtype(out[d]):
                out[d] = out[d].astype("float64").mask(hide, np.nan)
            else:
                out[d] = out[d].astype(object).mask(hide, None)
    out.attrs = dict(df.attrs)
    out.attrs["minimum_count_rule"] = {
        "k": k, "columns": list(spec), "derived": sorted({d for v in spec.values() for d in v}),
        "groups": list(groups), "suppressed_cells": primary, "secondary_cells": secondary,
        "statement": STATEMENT.format(k=k),
    }
    out.attrs["assumptions"] = [*out.attrs.get("assumptions", []), STATEMENT.format(k=k)]
    return out
