"""The kinds of source an ingest job loads, and the target fields each one fills."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """A target field of a kind.

    ``type`` is one of text, int, float, date, bool; ``private`` fields hold personal data and never
    land in a published table.
    """

    name: str
    type: str = "text"
    required: bool = False
    private: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Kind:
    """What one ingest kind loads: fields, natural key, geometry family and target table."""

    name: str
    table: str
    geometry: str  # polygon | line | point
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


_SOURCE = (Field("source", doc="where the data comes from"), Field("licence", doc="licence of the data"))

KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind(
            "admin", "admin.units", "polygon",
            (
                Field("level", required=True, doc="province, district or ward"),
                Field("code", required=True, doc="GSO administrative code"),
                Field("name", required=True),
                Field("name_en"),
                Field("unit_type", doc="Phường, Xã, Đặc khu, Quận, Huyện"),
                Field("parent_code"),
                Field("population", "int"),
                Field("population_year", "int"),
                Field("area_km2", "float"),
                Field("valid_from", "date", required=True),
                Field("valid_to", "date"),
                *_SOURCE,
            ),
            key=("level", "code", "valid_from"),
            doc="Administrative units (wards, districts) with their validity period.",
        ),
        Kind(
            "cadastral", "cadastral.parcels", "polygon",
            (
                Field("commune_code", required=True, doc="mã xã"),
                Field("sheet_no", "int", required=True, doc="số tờ bản đồ"),
                Field("parcel_no", "int", required=True, doc="số thửa"),
                Field("land_use", required=True, doc="land-use code (ODT, ONT, LUC, CLN, ...)"),
                Field("legal_area_m2", "float", doc="diện tích pháp lý"),
                Field("address"),
                Field("owner_type", doc="đối tượng sử dụng (GDC, TKT, UBS, ...)"),
                Field("owner_name", private=True, doc="personal data: stored apart, never published"),
                Field("id_number", private=True, doc="personal data: stored apart, never published"),
                Field("parents", doc="split/merge lineage: 'sheet/parcel' of the parent parcels, ';'-separated"),
                *_SOURCE,
            ),
            key=("commune_code", "sheet_no", "parcel_no"),
            doc="Cadastral parcels (thửa đất); history kept, owners stored apart.",
        ),
        Kind(
            "planning", "planning.lots", "polygon",
            (
                Field("plan_name", required=True),
                Field("plan_level"),
                Field("decision_no"),
                Field("approval_date", "date"),
                Field("authority"),
                Field("lot_code", required=True),
                Field("use_class", required=True),
                Field("use_code"),
                Field("use_name"),
                Field("max_storeys", "int"),
                Field("max_height_m", "float"),
                Field("max_far", "float"),
                Field("max_coverage", "float", doc="0..1"),
                Field("max_density_pph", "float"),
                Field("area_m2", "float"),
                *_SOURCE,
            ),
            key=("plan_name", "lot_code"),
            doc="Zoning / land-use plan lots and their regulations.",
        ),
        Kind(
            "buildings", "city.buildings", "polygon",
            (
                Field("source_id", required=True),
                Field("name"),
                Field("use"),
                Field("height_m", "float"),
                Field("storeys", "int"),
                *_SOURCE,
            ),
            key=("source", "source_id"),
            doc="Building footprints with height and storeys.",
        ),
        Kind(
            "roads", "city.roads", "line",
            (
                Field("source_id", required=True),
                Field("name"),
                Field("road_class"),
                Field("lanes", "int"),
                Field("width_m", "float"),
                Field("oneway", "bool"),
                Field("maxspeed_kmh", "float"),
                *_SOURCE,
            ),
            key=("source", "source_id"),
            doc="Road centre lines with class, lanes and width.",
        ),
        Kind(
            "poi", "city.poi", "point",
            (
                Field("source_id", required=True),
                Field("name"),
                Field("category", required=True, doc="hospital, clinic, school, ..."),
                Field("subtype"),
                Field("capacity", "int", doc="beds, pupils, ... where known"),
                Field("address"),
                *_SOURCE,
            ),
            key=("source", "source_id"),
            doc="Points of interest: hospitals, clinics, schools, markets, ...",
        ),
    ]
}


def get_kind(name: str) -> Kind:
    """The kind called ``name``; an :class:`~gis.errors.InputError` naming the known kinds otherwise."""
    from gis.errors import InputError

    try:
        return KINDS[name]
    except KeyError:
        raise InputError(f"Unknown ingest kind {name!r}: use one of {', '.join(KINDS)}.") from None
