"""Band profiles of the sensors and products the platform knows.

A profile says how many bands a file of that sensor has, in which order, and what each band is
(name, common name, unit, scale, offset, nodata). ``gis ingest raster --sensor NAME`` checks the
file against it and writes its band metadata into the COG and the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gis.errors import InputError

__all__ = ["SENSORS", "Band", "Sensor", "get_sensor"]


@dataclass(frozen=True)
class Band:
    """One band of a sensor profile (STAC 1.1 band object fields)."""

    name: str
    description: str = ""
    common_name: str | None = None  # eo:common_name (blue, green, red, nir, swir16, ...)
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    center_wavelength: float | None = None  # micrometres


@dataclass(frozen=True)
class Sensor:
    """A sensor or product: its bands, data type and nodata."""

    name: str
    title: str
    bands: tuple[Band, ...]
    data_type: str | None = None  # expected numpy dtype, if fixed
    nodata: float | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.bands]


_REFL = dict(unit="1", scale=1e-4, offset=0.0)

#: The profiles. ``sentinel2`` is the 5-band subset the platform works with (10 m blue, green,
#: red, NIR and 20 m SWIR resampled to 10 m), L2A surface reflectance x 10000 as uint16.
SENSORS: dict[str, Sensor] = {
    "sentinel2": Sensor(
        name="sentinel2",
        title="Sentinel-2 MSI L2A (B02, B03, B04, B08, B11)",
        bands=(
            Band("B02", "Blue", "blue", center_wavelength=0.49, **_REFL),
            Band("B03", "Green", "green", center_wavelength=0.56, **_REFL),
            Band("B04", "Red", "red", center_wavelength=0.665, **_REFL),
            Band("B08", "Near infrared", "nir", center_wavelength=0.842, **_REFL),
            Band("B11", "Short-wave infrared 1.6 um", "swir16", center_wavelength=1.61, **_REFL),
        ),
        data_type="uint16",
        nodata=0,
        keywords=("sentinel-2", "optical", "surface reflectance"),
    ),
    "worldpop": Sensor(
        name="worldpop",
        title="WorldPop population count",
        bands=(Band("population", "People per cell (UN-adjusted)", unit="persons"),),
        keywords=("population", "worldpop"),
    ),
    "era5-precipitation": Sensor(
        name="era5-precipitation",
        title="ERA5 total precipitation",
        bands=(Band("tp", "Total precipitation", unit="m"),),
        keywords=("era5", "precipitation", "climate"),
    ),
}


def get_sensor(name: str | None) -> Sensor | None:
    """The profile called ``name`` (None for None).

    Raises
    ------
    gis.errors.InputError
        For an unknown name, listing the known ones.
    """
    if name is None:
        return None
    key = name.strip().lower()
    if key not in SENSORS:
        raise InputError(f"Unknown sensor {name!r}: use one of {', '.join(sorted(SENSORS))}.")
    return SENSORS[key]
