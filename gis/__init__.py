"""Core library of the HCMC GIS platform: settings, database, CRS, catalog, errors, analysis.

Nothing in this package knows about HTTP; the CLI, the API and notebooks all call it.
"""

__version__ = "0.1.0"
