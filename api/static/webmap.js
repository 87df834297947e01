// The web map (/map): MapLibre GL over the API's own tiles. The configuration (layers, styles,
// labels, links) comes from the page (<script id="map-config">), built by api/map.py.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const L = cfg.labels;
  const ORDER = { raster: 0, polygon: 1, line: 2, point: 3 };

  function esc(value) {
    return String(value).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
  }

  function colorExpr(style, fallback) {
    if (style.by && style.colors) {
      const expr = ["match", ["get", style.by]];
      for (const [value, color] of Object.entries(style.colors)) { expr.push(value, color); }
      expr.push(style.default || fallback);
      return expr;
    }
    return style.color || fallback;
  }

  // --- the style: one source per layer (MapLibre fetches tiles only for visible layers) ---------
  const sources = {};
  const styleLayers = [{ id: "background", type: "background", paint: { "background-color": "#f2efe9" } }];
  const layers = cfg.layers.slice().sort((a, b) => ORDER[a.kind === "raster" ? "raster" : a.geometry] - ORDER[b.kind === "raster" ? "raster" : b.geometry]);
  const drawn = {}; // layer id -> MapLibre layer ids
  for (const layer of layers) {
    const vis = layer.visible ? "visible" : "none";
    if (layer.kind === "raster") {
      sources[layer.id] = { type: "raster", tiles: [layer.tiles], tileSize: 256, minzoom: layer.minzoom,
        maxzoom: Math.min(layer.maxzoom, 12), attribution: layer.attribution || "" };
      styleLayers.push({ id: layer.id, type: "raster", source: layer.id, layout: { visibility: vis },
        paint: { "raster-opacity": 0.75 } });
      drawn[layer.id] = [layer.id];
      continue;
    }
    sources[layer.id] = { type: "vector", tiles: [layer.tiles], minzoom: layer.minzoom,
      maxzoom: Math.min(layer.maxzoom, 16) };
    const s = layer.style || {};
    const ids = [];
    const common = { source: layer.id, "source-layer": layer.id, layout: { visibility: vis }, minzoom: layer.minzoom };
    if (s.type === "fill") {
      styleLayers.push({ ...common, id: layer.id + "-fill", type: "fill",
        paint: { "fill-color": colorExpr(s, "#cccccc"), "fill-opacity": s.opacity ?? 0.5 } });
      styleLayers.push({ ...common, id: layer.id + "-outline", type: "line", layout: { visibility: vis },
        paint: { "line-color": s.outline || "#555555", "line-width": 0.6 } });
      ids.push(layer.id + "-fill", layer.id + "-outline");
    } else if (s.type === "circle") {
      styleLayers.push({ ...common, id: layer.id + "-circle", type: "circle",
        paint: { "circle-color": colorExpr(s, "#33a02c"), "circle-radius": s.radius || 5,
          "circle-stroke-color": s.outline || "#ffffff", "circle-stroke-width": 1 } });
      ids.push(layer.id + "-circle");
    } else {
      styleLayers.push({ ...common, id: layer.id + "-line", type: "line",
        paint: { "line-color": colorExpr(s, "#333333"), "line-width": s.width || 1.5 } });
      ids.push(layer.id + "-line");
    }
    drawn[layer.id] = ids;
  }

  const map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources, layers: styleLayers },
    bounds: cfg.bbox,
    fitBoundsOptions: { padding: 20 },
    attributionControl: { compact: true },
    hash: true,
  });
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");

  // what a test (or a curious user) can read: tiles loaded per source, readiness
  const state = { tilesLoaded: {}, errors: [], ready: false };
  window.gisMap = map;
  window.gisMapState = state;
  map.on("data", (e) => {
    if (e.dataType === "source" && e.tile && e.sourceId) {
      state.tilesLoaded[e.sourceId] = (state.tilesLoaded[e.sourceId] || 0) + 1;
    }
  });
  map.on("error", (e) => { state.errors.push(String(e.error && e.error.message || e.error || e)); });
  map.on("idle", () => { state.ready = true; });

  // --- layer list ---------------------------------------------------------------------------
  const list = document.getElementById("layer-list");
  for (const layer of cfg.layers) {
    const li = document.createElement("li");
    li.dataset.layer = layer.id;
    const links = layer.kind === "vector"
      ? `<a href="${esc(layer.links.items)}">${esc(L.items)}</a><a href="${esc(layer.links.geojson)}" download>${esc(L.geojson)}</a><a href="${esc(layer.links.csv)}" download>${esc(L.csv)}</a><a href="${esc(layer.links.tilejson)}">${esc(L.tilejson)}</a>`
      : `<a href="${esc(layer.links.tileset)}">${esc(L.tileset)}</a>`;
    li.innerHTML = `<label><input type="checkbox" ${layer.visible ? "checked" : ""}> ${esc(layer.title)}</label>
      <span class="zooms">(${esc(L.zooms)} ${layer.minzoom}–${layer.maxzoom})</span><span class="links">${links}</span>`;
    li.querySelector("input").addEventListener("change", (ev) => {
      layer.visible = ev.target.checked;
      for (const id of drawn[layer.id]) { map.setLayoutProperty(id, "visibility", layer.visible ? "visible" : "none"); }
      renderLegend();
    });
    list.appendChild(li);
  }

  // --- legend -------------------------------------------------------------------------------
  function swatch(color, kind) {
    return `<span class="swatch ${kind}" style="background:${esc(color)}"></span>`;
  }
  function renderLegend() {
    const out = [];
    for (const layer of cfg.layers) {
      if (!layer.visible) { continue; }
      let rows = "";
      if (layer.kind === "raster") {
        const stops = layer.legend.map((e) => e.color).join(",");
        const first = layer.legend[0].value, last = layer.legend[layer.legend.length - 1].value;
        rows = `<div class="ramp" style="background:linear-gradient(to right,${esc(stops)})"></div>
          <div class="ramp-labels"><span>${esc(first.toLocaleString())}</span><span>${esc(last.toLocaleString())} ${esc(layer.unit || "")}</span></div>`;
      } else {
        const s = layer.style || {};
        const kind = s.type === "circle" ? "circle" : s.type === "line" ? "line" : "";
        if (s.by && s.colors) {
          for (const [value, color] of Object.entries(s.colors)) { rows += `<div class="legend-row">${swatch(color, kind)}${esc(value)}</div>`; }
          rows += `<div class="legend-row">${swatch(s.default || "#ccc", kind)}${esc(L.other_values)}</div>`;
        } else {
          rows = `<div class="legend-row">${swatch(s.color || "#888", kind)}${esc(layer.title)}</div>`;
        }
      }
      out.push(`<div class="legend-layer" data-layer="${esc(layer.id)}"><h3>${esc(layer.title)}</h3>${rows}</div>`);
    }
    document.getElementById("legend").innerHTML = out.join("");
  }
  renderLegend();

  // --- popups: the feature's public attributes, from the features API ---------------------------
  const byStyleLayer = {};
  for (const layer of cfg.layers) { for (const id of drawn[layer.id] || []) { byStyleLayer[id] = layer; } }
  map.on("click", async (e) => {
    const visible = Object.keys(byStyleLayer).filter((id) => byStyleLayer[id].kind === "vector" && map.getLayoutProperty(id, "visibility") !== "none");
    const hits = map.queryRenderedFeatures(e.point, { layers: visible });
    if (!hits.length) { return; }
    // the topmost point or line wins over polygons under it
    hits.sort((a, b) => ORDER[byStyleLayer[b.layer.id].geometry] - ORDER[byStyleLayer[a.layer.id].geometry]);
    const hit = hits[0];
    const layer = byStyleLayer[hit.layer.id];
    const fid = hit.id !== undefined && hit.id !== null ? hit.id : hit.properties[layer.id_column];
    const popup = new maplibregl.Popup({ maxWidth: "22rem" }).setLngLat(e.lngLat)
      .setHTML(`<div class="popup" data-layer="${esc(layer.id)}" data-fid="${esc(fid)}">${esc(L.loading)}</div>`).addTo(map);
    const url = layer.links.item.replace("{id}", encodeURIComponent(fid));
    let props = hit.properties;
    try {
      const r = await fetch(`${url}?f=json&lang=${cfg.lang}`, { headers: { Accept: "application/geo+json" } });
      if (r.ok) { props = (await r.json()).properties || props; }
    } catch (err) { /* keep the tile's attributes */ }
    const rows = layer.fields.filter((f) => props[f.name] !== undefined && props[f.name] !== null)
      .map((f) => `<tr data-field="${esc(f.name)}"><th>${esc(f.title)}</th><td>${esc(props[f.name])}${f.unit ? " " + esc(f.unit) : ""}</td></tr>`).join("");
    popup.setHTML(`<div class="popup" data-layer="${esc(layer.id)}" data-fid="${esc(fid)}" data-loaded="1">
      <h3>${esc(layer.title)} #${esc(fid)}</h3><table>${rows}</table>
      <p><a href="${esc(url)}?f=html&lang=${cfg.lang}">${esc(L.open)}</a></p></div>`);
  });
  map.on("mousemove", (e) => {
    const ids = Object.keys(byStyleLayer).filter((id) => byStyleLayer[id].kind === "vector" && map.getLayer(id) && map.getLayoutProperty(id, "visibility") !== "none");
    map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: ids }).length ? "pointer" : "";
  });
})();
