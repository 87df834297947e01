"""Analysis: planning, health-access and logistics statistics, as a library.

Every statistic is a documented function returning a (Geo)DataFrame whose ``attrs`` hold its units,
assumptions and parameters (the same facts are in the docstring). The functions take GeoDataFrames
(so they work on any data: the database, a file, a notebook's own frame); the runners of
:mod:`gis.analysis.processes` read the platform's layers from PostGIS and call them, and
:mod:`gis.analysis.registry` declares each analysis with its inputs (JSON Schema) and output so
that the CLI (``gis stats``) and, later, OGC API - Processes expose the same thing.

Modules
-------
layers
    Reading the layers (wards, parcels, plan lots, buildings, roads, POIs) with an area of interest.
network
    A routable road graph (scipy.sparse.csgraph): snapping, multi-source travel times, OD matrices,
    isochrones, routes.
population
    WorldPop cells and population points, population and density per ward, the 2019 -> 2025 ward
    crosswalk (area- or population-weighted).
planning
    Land use by ward, plan compliance, built density, development capacity.
health
    Nearest hospital, population within distance / time, 2SFCA, underserved wards.
logistics
    Ward-to-ward travel times, service areas, survey OD flows, facility location (p-median).
parallel
    The same code in-process or on Dask (a ``client`` argument).
output
    Writing results to GeoPackage, GeoParquet, GeoJSON, CSV or a published PostGIS table.
registry, processes
    The analyses as processes, and their runners.

Submodules are imported explicitly (``from gis.analysis import health``): importing this package
imports neither numpy nor scipy.
"""

__all__ = ["health", "layers", "logistics", "network", "output", "parallel", "planning", "population",
           "processes", "registry"]
