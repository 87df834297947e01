"""Tiles: vector tiles from PostGIS (ST_AsMVT), raster tiles from COGs (rio-tiler), tile caching and
tile packages (PMTiles, MBTiles).

Nothing here knows about HTTP: the API (``api.tiles``), the CLI (``gis tiles``) and notebooks
(:mod:`gis.maps` through the API) all call these modules. Imports only :mod:`gis`.
"""
