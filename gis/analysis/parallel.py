"""Running the same analysis code in-process or on Dask.

Every analysis that splits its work (origins of a travel-time matrix, facilities of a 2SFCA,
partitions of a polygon overlay) takes an optional ``client``:

* ``None`` (default): in this process, no Dask import;
* a scheduler name, ``"synchronous"``, ``"threads"`` or ``"processes"``: a Dask graph run by the
  local scheduler of that name;
* a :class:`dask.distributed.Client` (e.g. on a ``LocalCluster`` or a remote cluster): the shared
  inputs (the road graph) are scattered once to every worker and the chunks mapped over them.

The chunks are the same whatever runs them and results are put back in order, so the result is
identical (tests check it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gis.errors import InputError

SCHEDULERS = ("synchronous", "threads", "processes")


def check_client(client: Any) -> Any:
    """``client`` if it is None, a scheduler name or a distributed Client; InputError otherwise."""
    if client is None:
        return None
    if isinstance(client, str):
        if client not in SCHEDULERS:
            raise InputError(f"client must be a dask.distributed.Client or one of "
                             f"{', '.join(SCHEDULERS)}; got {client!r}.")
        return client
    if hasattr(client, "scatter") and hasattr(client, "map"):
        return client
    raise InputError(f"client must be a dask.distributed.Client or a scheduler name; got "
                     f"{type(client).__name__}.")


def map_chunks(fn: Callable[..., Any], chunks: Sequence[Any], *, shared: dict[str, Any] | None = None,
               client: Any = None, on_result: Callable[[Any, Any], None] | None = None) -> list[Any]:
    """Apply ``fn(chunk, **shared)`` to every chunk; results in chunk order.

    ``on_result(chunk, result)``, when given, is called as each result arrives (for progress and
    to place results without keeping them all).
    """
    client = check_client(client)
    shared = shared or {}
    results: list[Any] = [None] * len(chunks)
    if client is None:
        for i, c in enumerate(chunks):
            r = fn(c, **shared)
            if on_result:
                on_result(c, r)
            else:
                results[i] = r
        return results
    if isinstance(client, str):
        import dask

        shared_d = {k: dask.delayed(v, pure=True) for k, v in shared.items()}
        tasks = [dask.delayed(fn, pure=True)(c, **shared_d) for c in chunks]
        computed = dask.compute(*tasks, scheduler=client)
        for i, (c, r) in enumerate(zip(chunks, computed)):
            if on_result:
                on_result(c, r)
            else:
                results[i] = r
        return results
    from distributed import as_completed

    scattered = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
    futures = [client.submit(fn, c, pure=False, **scattered) for c in chunks]
    index = {f.key: i for i, f in enumerate(futures)}
    for fut, r in as_completed(futures, with_results=True):
        i = index[fut.key]
        if on_result:
            on_result(chunks[i], r)
        else:
            results[i] = r
    return results


def map_frame_partitions(fn: Callable[..., Any], gdf, *, npartitions: int, client: Any = None,
                         **kwargs: Any):
    """Apply ``fn(partition, **kwargs)`` to row partitions of a GeoDataFrame, concatenated.

    In-process without a client; with one, through dask-geopandas (``from_geopandas`` +
    ``map_partitions``), the keyword arguments (e.g. the zones) shipped to every task.
    """
    import pandas as pd

    client = check_client(client)
    if client is None or len(gdf) == 0:
        return fn(gdf, **kwargs)
    import dask_geopandas

    meta = fn(gdf.iloc[:0], **kwargs)
    ddf = dask_geopandas.from_geopandas(gdf, npartitions=max(1, min(npartitions, len(gdf))))
    mapped = ddf.map_partitions(fn, meta=meta, **kwargs)
    if isinstance(client, str):
        out = mapped.compute(scheduler=client)
    else:
        out = client.compute(mapped).result()
    return out if len(out) else pd.DataFrame(meta)
