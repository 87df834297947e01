// Map of the HCMC GIS OGC API pages: the page's features (GeoJSON, CRS84) or the collection's extent.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var el = document.getElementById("map");
    if (!el || typeof L === "undefined") { return; }
    var map = L.map(el, { preferCanvas: true });
    var tiles = el.getAttribute("data-basemap");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 20, attribution: el.getAttribute("data-attribution") || "" }).addTo(map);
    }
    var bounds = null;
    var data = document.getElementById("features");
    if (data) {
      var gj = JSON.parse(data.textContent);
      var layer = L.geoJSON(gj, {
        style: { color: "#d1495b", weight: 1.5, fillOpacity: 0.25 },
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 5 }); },
        onEachFeature: function (f, lyr) {
          var rows = ["<b>" + String(f.id) + "</b>"];
          var p = f.properties || {};
          Object.keys(p).slice(0, 12).forEach(function (k) {
            var v = p[k] === null ? "" : String(p[k]);
            var cell = document.createElement("span");
            cell.textContent = k + ": " + v;
            rows.push(cell.innerHTML);
          });
          lyr.bindPopup(rows.join("<br>"));
        }
      }).addTo(map);
      if (layer.getLayers().length) { bounds = layer.getBounds(); }
    }
    var ext = document.getElementById("extent");
    if (ext) {
      var b = JSON.parse(ext.textContent);
      if (b && b.length >= 4) {
        bounds = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
        L.rectangle(bounds, { color: "#0b4f6c", weight: 2, fill: false }).addTo(map);
      }
    }
    if (bounds && bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 18, padding: [10, 10] }); }
    else { map.setView([10.78, 106.70], 11); }
  });
})();
