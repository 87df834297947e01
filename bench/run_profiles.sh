#!/usr/bin/env bash
# The profile series of bench/README.md: baseline, all prototypes, and all-but-one (n = $1, default 1M).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
ALL=dupcheck,tempbuf,fk,btree,ids,convert,geom,nojit
PY=.venv/bin/python
$PY bench/profile_ingest.py --n "$N"
$PY bench/profile_ingest.py --n "$N" --proto "$ALL"
for drop in tempbuf fk btree ids nojit convert; do
  $PY bench/profile_ingest.py --n "$N" --no-rerun --proto "$(echo ",$ALL," | sed "s/,$drop,/,/; s/^,//; s/,$//")"
done
