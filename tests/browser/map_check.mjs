// Drives Debian's chromium through playwright-core over the web map (/map) of a running `gis serve`,
// as a person would: load the page, wait for the tiles, take a screenshot, click a parcel, read the
// popup, switch the language. Prints one JSON object (read by tests/api/test_map_browser.py).
//
//   node map_check.mjs BASE_URL LON LAT ZOOM OUT_DIR
import { chromium } from "playwright-core";

const [base, lon, lat, zoom, outDir] = process.argv.slice(2);
const result = { console: [], pageErrors: [], failed: [], tiles: {}, badTiles: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on("console", (msg) => { if (msg.type() === "error") { result.console.push(msg.text()); } });
  page.on("pageerror", (err) => result.pageErrors.push(String(err)));
  page.on("requestfailed", (req) => result.failed.push(`${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (resp) => {
    const url = resp.url();
    const m = url.match(/\/collections\/([^/]+)\/tiles\/WebMercatorQuad\/\d+\/\d+\/\d+/) || url.match(/\/xyz\/([^/]+)\//);
    if (m) {
      result.tiles[m[1]] = result.tiles[m[1]] || {};
      result.tiles[m[1]][resp.status()] = (result.tiles[m[1]][resp.status()] || 0) + 1;
      if (resp.status() >= 400) { result.badTiles.push(`${resp.status()} ${url}`); }
    }
  });
  await page.goto(`${base}/map?lang=en#${zoom}/${lat}/${lon}`, { waitUntil: "load" });
  await page.waitForFunction(() => window.gisMapState && window.gisMapState.ready && window.gisMap.loaded()
    && window.gisMap.areTilesLoaded(), null, { timeout: 60000 });
  await page.waitForTimeout(500);
  result.layerList = await page.$$eval("#layer-list li", (lis) => lis.map((li) => li.dataset.layer));
  result.legend = await page.$$eval(".legend-layer", (els) => els.map((e) => e.dataset.layer));
  result.rendered = await page.evaluate(() => {
    const m = window.gisMap;
    const out = {};
    for (const l of m.getStyle().layers) {
      if (l.source) { out[l.id] = m.queryRenderedFeatures({ layers: [l.id] }).length; }
    }
    return out;
  });
  await page.screenshot({ path: `${outDir}/map.png` });

  // hide the layers drawn over the parcels (zoning lots, buildings), then click the parcel at (lon, lat)
  for (const id of ["planning-lots", "buildings"]) {
    const box = page.locator(`#layer-list li[data-layer="${id}"] input`);
    if (await box.count()) { await box.uncheck(); }
  }
  await page.waitForTimeout(300);
  const point = await page.evaluate(([x, y]) => window.gisMap.project([x, y]), [Number(lon), Number(lat)]);
  const box = await page.locator("#map").boundingBox();
  await page.mouse.click(box.x + point.x, box.y + point.y);
  await page.waitForSelector('.popup[data-loaded="1"]', { timeout: 20000 });
  await page.waitForFunction(() => window.gisMap.areTilesLoaded() && !window.gisMap.isMoving(), null, { timeout: 20000 });
  await page.waitForTimeout(500);
  result.popup = await page.$eval('.popup[data-loaded="1"]', (el) => ({
    layer: el.dataset.layer, fid: el.dataset.fid,
    rows: Object.fromEntries([...el.querySelectorAll("tr")].map((tr) => [tr.dataset.field, tr.querySelector("td").textContent])),
    title: el.querySelector("h3").textContent,
  }));
  await page.screenshot({ path: `${outDir}/popup.png` });

  // raster layer on
  await page.check('#layer-list li[data-layer="population"] input');
  await page.waitForFunction(() => window.gisMap.areTilesLoaded(), null, { timeout: 30000 });
  await page.waitForTimeout(300);

  // switch to Vietnamese
  await Promise.all([page.waitForNavigation(), page.click("#lang-switch")]);
  await page.waitForFunction(() => window.gisMapState && window.gisMapState.ready, null, { timeout: 60000 });
  result.vi = {
    lang: await page.getAttribute("html", "lang"),
    heading: await page.textContent("#panel h2"),
    firstLayer: await page.textContent("#layer-list li label"),
  };
  await page.screenshot({ path: `${outDir}/map_vi.png` });
  result.mapErrors = await page.evaluate(() => window.gisMapState.errors);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
