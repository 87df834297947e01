"""Read the live server with QGIS's OAPIF provider; print what QGIS saw as one JSON document.

Run by ``test_qgis.py`` with the system Python that Debian's ``python3-qgis`` belongs to (not the
project's virtual environment), headless::

    QT_QPA_PLATFORM=offscreen QGIS_CLIENT_BOX=minx,miny,maxx,maxy \
        /usr/bin/python3 qgis_client.py http://127.0.0.1:PORT LAYER...

For each layer: validity, feature count, fields and geometry type; for ``parcels`` every
feature's attributes, a filtered read (a feature request with an expression) and a layer with a
subset string; for ``buildings`` a bounding-box read.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 - after the platform is chosen
    NULL,
    Qgis,
    QgsApplication,
    QgsFeatureRequest,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QDate, QDateTime, Qt  # noqa: E402

#: the box of the bounding-box read: "minx,miny,maxx,maxy" in QGIS_CLIENT_BOX
BOX = tuple(float(x) for x in os.environ["QGIS_CLIENT_BOX"].split(","))


def plain(v):
    if v is None or v == NULL:
        return None
    if isinstance(v, QDateTime):
        return v.toUTC().toString(Qt.ISODate)
    if isinstance(v, QDate):
        return v.toString(Qt.ISODate)
    return v


def layer(base: str, name: str, extra: str = "") -> QgsVectorLayer:
    return QgsVectorLayer(f"url='{base}' typename='{name}'{extra}", name, "OAPIF")


def main(base: str, names: list[str]) -> dict:
    out: dict = {"version": Qgis.QGIS_VERSION, "layers": {}}
    for name in names:
        lyr = layer(base, name)
        out["layers"][name] = {
            "valid": lyr.isValid(),
            "count": lyr.featureCount(),
            "fields": [[f.name(), f.typeName()] for f in lyr.fields()],
            "geometry": QgsWkbTypes.displayString(lyr.wkbType()),
        }
    p = layer(base, "parcels")
    out["parcels"] = [
        {f.name(): plain(feat[f.name()]) for f in p.fields()} for feat in p.getFeatures()
    ]
    expr = "\"land_use\" = 'ODT'"
    fresh = layer(base, "parcels")
    out["filtered"] = [
        plain(feat["land_use"])
        for feat in fresh.getFeatures(QgsFeatureRequest().setFilterExpression(expr))
    ]
    subset = layer(base, "parcels")
    out["subset_ok"] = subset.setSubsetString(expr)
    out["subset_count"] = subset.featureCount()
    out["subset_features"] = sum(1 for _ in subset.getFeatures())
    # QGIS caches whole layers; with restrictToRequestBBOX it asks the server for the box only
    b = layer(base, "buildings", " restrictToRequestBBOX='1'")
    req = QgsFeatureRequest().setFilterRect(QgsRectangle(*BOX))
    req.setFlags(QgsFeatureRequest.ExactIntersect)
    out["bbox"] = sorted(plain(feat["source_id"]) for feat in b.getFeatures(req))
    return out


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    try:
        result = main(sys.argv[1], sys.argv[2:])
    finally:
        app.exitQgis()
    print("QGIS-RESULT " + json.dumps(result, ensure_ascii=False))
