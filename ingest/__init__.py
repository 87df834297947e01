"""Ingest jobs: read -> normalise (CRS, validity, types, text) -> stage (COPY) -> merge in one
transaction -> record the run.

The entry point is :func:`ingest.job.run_ingest`; the CLI's ``gis ingest KIND PATH`` calls it.
"""
