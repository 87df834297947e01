#!/usr/bin/env bash
# The end-to-end series of bench/README.md: ogr2ogr side by side with gis ingest as it is, with the
# proposed patches (bench/patches.py) and with the streaming prototype (bench/proto.py).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
R=${2:-2}
PY=.venv/bin/python
$PY bench/ingest_bench.py --n "$N" --repeat "$R" --tag baseline
$PY bench/ingest_bench.py --n "$N" --repeat "$R" --patched --tag patched
$PY bench/ingest_bench.py --n "$N" --repeat "$R" --proto stream,fk,btree,convert,geom --tag stream
