-- 0013: raster layers whose cells hold counts (people per cell) can be drawn as densities per km2.
--
-- The map layer 'population' (0007) has a colour scale in persons/km2 that fits WorldPop's 1 km grid,
-- whose cells are about 0.85 km2 at HCMC's latitude; the 100 m (3 arc-second) grids, and the demo's
-- sample grid, hold people per 0.0085 km2 cell and looked nearly empty on that scale. With per_km2
-- the tiles divide each value by the area of its cell (from the item's resolution; for geographic
-- grids at the tile's latitude), so grids of any resolution share one scale.
ALTER TABLE gis_meta.raster_layers ADD COLUMN per_km2 boolean NOT NULL DEFAULT false;
UPDATE gis_meta.raster_layers SET per_km2 = true, title_vi = 'Mật độ dân số (WorldPop)',
    title_en = 'Population density (WorldPop)'
WHERE id = 'population';
