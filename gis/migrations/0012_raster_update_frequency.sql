-- 0012: raster collections state how often they are updated, as the feature collections do (0010).
--
-- The records and the DCAT feed said "unknown" for every raster collection: a curator had nowhere to
-- say that WorldPop is annual or that a Sentinel-2 collection grows irregularly. Same ISO 19115
-- maintenance frequency codes as gis_meta.collections.update_frequency (gis.catalog.FREQUENCIES).
ALTER TABLE raster.collections
    ADD COLUMN update_frequency text NOT NULL DEFAULT 'unknown',
    ADD CONSTRAINT collections_update_frequency_check CHECK (update_frequency IN (
        'continual', 'daily', 'weekly', 'fortnightly', 'monthly', 'quarterly', 'biannually', 'annually',
        'asNeeded', 'irregular', 'notPlanned', 'unknown'));
