"""Helpers of the raster tests: our zonal statistics against exactextract's operations."""

from __future__ import annotations

#: our statistic, exactextract's column, for the moments
MOMENTS = (("count", "count"), ("sum", "sum"), ("mean", "mean"), ("min", "min"), ("max", "max"),
           ("std", "stdev"))


def exactextract_ops(percentiles: tuple[int, ...] = ()) -> tuple[list[str], list[tuple[str, str]]]:
    """exactextract's operations for our statistics and percentiles, and the pairs (our column,
    its column) to compare."""
    ops = [b for _, b in MOMENTS] + [f"quantile(q={p / 100})" for p in percentiles]
    pairs = list(MOMENTS) + [(f"p{p}", f"quantile_{p}") for p in percentiles]
    return ops, pairs
