"""The analyses as processes: declared inputs and outputs, validated parameters, one runner each.

Each :class:`Analysis` names a runner (``module:function``, imported only when it runs, so that
listing the analyses imports neither numpy nor scipy), declares its inputs as :class:`Param`
objects with a JSON Schema (:meth:`Param.schema`) and its output, and validates a parameter
dictionary (:meth:`Analysis.validate`): an unknown parameter, a wrong type, a value out of range
or outside its choices is an :class:`~gis.errors.InputError` naming it. :meth:`Analysis.describe`
gives the description in the shape of an OGC API - Processes process description, so the API can
publish these as processes without another declaration; the CLI builds its ``gis stats`` commands
from the same declarations.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any

from gis.errors import InputError, NotFoundError

_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


@dataclass(frozen=True)
class Param:
    """One input of an analysis.

    ``type`` is a JSON Schema type: string, integer, number, boolean, or array (of ``items``).
    """

    name: str
    type: str
    description: str
    default: Any = None
    required: bool = False
    enum: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    items: str = "number"
    unit: str | None = None
    format: str | None = None  # "path", "aoi", "layer"

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the input."""
        def scalar(t: str) -> dict[str, Any]:
            s: dict[str, Any] = {"type": t}
            if self.enum is not None:
                s["enum"] = list(self.enum)
            if self.minimum is not None:
                s["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
            if self.maximum is not None:
                s["maximum"] = self.maximum
            return s

        s = {"type": "array", "items": scalar(self.items), "minItems": 1} if self.type == "array" else scalar(self.type)
        if self.default is not None:
            s["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.format:
            s["format"] = self.format
        if self.unit:
            s["x-unit"] = self.unit
        return s

    def _scalar(self, value: Any, t: str) -> Any:
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
                return value.strip().lower() in ("true", "yes", "1")
            raise InputError(f"{self.name} must be true or false; got {value!r}.")
        if t == "integer":
            if isinstance(value, bool):
                raise InputError(f"{self.name} must be an integer; got {value!r}.")
            try:
                f = float(value)
            except (TypeError, ValueError):
                raise InputError(f"{self.name} must be an integer; got {value!r}.") from None
            if not f.is_integer():
                raise InputError(f"{self.name} must be an integer; got {value!r}.")
            v: Any = int(f)
        elif t == "number":
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InputError(f"{self.name} must be a number; got {value!r}.") from None
            if math.isnan(v) or math.isinf(v):
                raise InputError(f"{self.name} must be a finite number; got {value!r}.")
        else:
            v = str(value).strip()
        if self.enum is not None and v not in self.enum:
            raise InputError(f"{self.name} must be one of {', '.join(map(str, self.enum))}; got {value!r}.")
        if t in ("integer", "number"):
            lo, hi = self.minimum, self.maximum
            if lo is not None and (v <= lo if self.exclusive_minimum else v < lo):
                raise InputError(f"{self.name} must be {'>' if self.exclusive_minimum else '>='} {lo:g}"
                                 + (f" and <= {hi:g}" if hi is not None else "") + f"; got {value!r}.")
            if hi is not None and v > hi:
                raise InputError(f"{self.name} must be <= {hi:g}" + (f" and >= {lo:g}" if lo is not None else "")
                                 + f"; got {value!r}.")
        return v

    def coerce(self, value: Any) -> Any:
        """The value checked and converted (a comma-separated string is accepted for arrays)."""
        if self.type == "array":
            if isinstance(value, str):
                value = [x for x in (p.strip() for p in value.split(",")) if x]
            if not isinstance(value, (list, tuple)) or not value:
                raise InputError(f"{self.name} needs at least one value (e.g. 10,20,30); got {value!r}.")
            return [self._scalar(x, self.items) for x in value]
        return self._scalar(value, self.type)


@dataclass(frozen=True)
class Analysis:
    """An analysis: its id (``group.name``), titles, inputs, output and runner."""

    id: str
    title: str
    title_vi: str
    description: str
    runner: str  # "module:function"; called as fn(dsn, progress=..., client=..., **params)
    inputs: tuple[Param, ...]
    output: str  # what the result holds, one line
    keywords: tuple[str, ...] = ()
    geometry: bool = True
    extra: dict = field(default_factory=dict)
    #: runs for long (a road graph, a population raster): OGC API - Processes runs it as a job only
    long: bool = False

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]

    def param(self, name: str) -> Param:
        for p in self.inputs:
            if p.name == name:
                return p
        raise InputError(f"{self.id} has no parameter {name!r}; its parameters: "
                         f"{', '.join(p.name for p in self.inputs)}.")

    def validate(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Checked and converted parameters, defaults filled in.

        Raises
        ------
        InputError
            An unknown parameter, a missing required one, a wrong type or a value out of range.
        """
        params = dict(params or {})
        out: dict[str, Any] = {}
        for key in params:
            self.param(key)  # unknown -> InputError
        for p in self.inputs:
            v = params.get(p.name)
            if v is None or (isinstance(v, str) and v.strip() == "" and p.type != "string"):
                if p.required:
                    raise InputError(f"{self.id} needs the parameter {p.name} ({p.description}).")
                out[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
            else:
                out[p.name] = p.coerce(v)
        return out

    def run(self, dsn: str, params: dict[str, Any] | None = None, *, progress=None, client=None):
        """Validate ``params`` and run the analysis; returns a (Geo)DataFrame with ``attrs``."""
        from gis.analysis.parallel import check_client

        values = self.validate(params)
        check_client(client)
        module, func = self.runner.split(":")
        fn = getattr(importlib.import_module(module), func)
        result = fn(dsn, progress=progress, client=client, **values)
        result.attrs["analysis"] = self.id
        result.attrs["parameters"] = {**result.attrs.get("parameters", {}), **_jsonable(values)}
        return result

    def describe(self) -> dict[str, Any]:
        """The process description (OGC API - Processes, part 1 shape)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": "1.0.0",
            "keywords": list(self.keywords),
            "jobControlOptions": ["async-execute"] if self.long else ["sync-execute", "async-execute"],
            "outputTransmission": ["value", "reference"],
            "inputs": {p.name: {"title": p.name.replace("_", " "), "description": p.description,
                                "schema": p.schema(), "minOccurs": 1 if p.required else 0, "maxOccurs": 1}
                       for p in self.inputs},
            "outputs": {"result": {
                "title": self.output,
                "schema": {"type": "object", "contentMediaType":
                           "application/geo+json" if self.geometry else "application/json"}}},
            "additionalParameters": {"title_vi": self.title_vi},
        }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


# --- shared inputs ------------------------------------------------------------------------------
AOI = Param("aoi", "string", "Area of interest: 'minlon,minlat,maxlon,maxlat', WKT (lon/lat), or "
            "'ward:CODE' / 'ward2019:CODE' / 'district:CODE'.", format="aoi")
ZONES = Param("zones", "string", "Zone layer the statistics are given per.", default="wards_2025",
              enum=("wards_2025", "wards_2019", "districts"), format="layer")
WORLDPOP = Param("worldpop", "string", "Population raster (WorldPop GeoTIFF, people per cell); "
                 "over the API, raster:<collection> names one of the catalog, e.g. raster:worldpop.",
                 required=True, format="path")
STOREY_H = Param("storey_height_m", "number", "Storey height used where only a building's height is known.",
                 default=3.5, minimum=1.5, maximum=10, unit="m")
DIRECTED = Param("directed", "boolean", "Honour one-way roads (false: every road two-way, symmetric times).",
                 default=True)
MAX_SNAP = Param("max_snap_m", "number", "Points farther than this from the road graph are off the network.",
                 default=2000.0, minimum=0, exclusive_minimum=True, maximum=50_000, unit="m")
CATEGORIES = Param("categories", "array", "Point-of-interest categories that are the facilities.",
                   default=("hospital", "clinic"), items="string")

ANALYSES: tuple[Analysis, ...] = (
    # --- planning ---
    Analysis("planning.land-use", "Land use by ward", "Cơ cấu sử dụng đất theo phường",
             "Area and share of each land use (cadastral parcels = current, plan lots = planned) per "
             "ward or district; areas per ward sum to the ward's area ('(unmapped)' included).",
             "gis.analysis.processes:land_use",
             (Param("source", "string", "parcels (current land use) or lots (planned).", default="parcels",
                    enum=("parcels", "lots")),
              ZONES, Param("by", "string", "Each land-use value, or broad groups.", default="use",
                           enum=("use", "group")), AOI),
             "one row per (ward, use): area_m2, share_of_zone, share_of_mapped", ("planning", "land use")),
    Analysis("planning.compliance", "Plan compliance", "Vi phạm quy hoạch",
             "Buildings and parcels against the zoning plan: land use allowed, max storeys and height, "
             "max FAR and coverage; one row per violation with the rule broken.",
             "gis.analysis.processes:compliance",
             (Param("check", "string", "What to check.", default="both", enum=("buildings", "parcels", "both")),
              STOREY_H, Param("zero_is_unset", "boolean", "A limit of 0 means 'not set'.", default=True), AOI),
             "one row per violation", ("planning", "compliance")),
    Analysis("planning.built-density", "Built density", "Mật độ xây dựng",
             "Building footprint, floor area (footprint x storeys), coverage and FAR per ward or plan lot.",
             "gis.analysis.processes:built_density",
             (Param("zones", "string", "Zone layer.", default="wards_2025",
                    enum=("wards_2025", "wards_2019", "districts", "lots"), format="layer"), STOREY_H, AOI),
             "one row per zone", ("planning", "density")),
    Analysis("planning.capacity", "Development capacity", "Dư địa phát triển",
             "Floor area the plan still permits, per plan lot or per ward.",
             "gis.analysis.processes:capacity",
             (Param("level", "string", "Per lot or per zone.", default="lot", enum=("lot", "zone")),
              ZONES, STOREY_H, AOI),
             "one row per lot or zone: permitted, existing, remaining floor area (m2)", ("planning", "capacity")),
    Analysis("planning.population", "Population and density per ward", "Dân số và mật độ theo phường",
             "Population (census or the layer's figure), area and density per ward; optionally the "
             "WorldPop estimate.", "gis.analysis.processes:population",
             (Param("zones", "string", "Zone layer.", default="wards_2019",
                    enum=("wards_2025", "wards_2019", "districts"), format="layer"),
              Param("worldpop", "string", "Optional WorldPop raster for an estimate per ward.", format="path"), AOI),
             "one row per ward", ("population", "census")),
    Analysis("planning.crosswalk", "2019 -> 2025 ward crosswalk", "Bảng chuyển đổi phường 2019 - 2025",
             "Share of each 2019 ward that went to each 2025 ward, area- or population-weighted.",
             "gis.analysis.processes:crosswalk",
             (Param("method", "string", "Weighting.", default="area", enum=("area", "population")),
              Param("worldpop", "string", "WorldPop raster (for method=population).", format="path"),
              Param("min_share", "number", "Sliver threshold (share of a 2019 ward).", default=0.005,
                    minimum=0, maximum=0.5, unit="fraction")),
             "one row per (2019 ward, 2025 ward) piece with its weight", ("population", "crosswalk")),
    Analysis("planning.population-2025", "2019 population on the 2025 wards", "Dân số 2019 theo phường 2025",
             "The 2019 census carried to the 2025 wards through the crosswalk (method stated).",
             "gis.analysis.processes:population_2025",
             (Param("method", "string", "Weighting.", default="area", enum=("area", "population")),
              Param("worldpop", "string", "WorldPop raster (for method=population).", format="path"),
              Param("min_share", "number", "Sliver threshold.", default=0.005, minimum=0, maximum=0.5)),
             "one row per 2025 ward", ("population", "crosswalk")),
    # --- health ---
    Analysis("health.nearest", "Nearest hospital", "Cơ sở y tế gần nhất",
             "Nearest hospital or clinic of every population cell (or residential parcel), by straight "
             "line and by road travel time.", "gis.analysis.processes:nearest",
             (Param("origins", "string", "Population cells (WorldPop) or residential parcels.", default="cells",
                    enum=("cells", "parcels")),
              Param("worldpop", "string", "WorldPop raster (origins=cells).", format="path"),
              ZONES, CATEGORIES, DIRECTED, MAX_SNAP, AOI),
             "one row per origin", ("health", "access"), long=True),
    Analysis("health.access", "Population within reach of a hospital", "Dân số trong tầm tiếp cận bệnh viện",
             "People within 1/3/5 km (straight line) and 10/20/30 min (road) of a hospital, per ward.",
             "gis.analysis.processes:access",
             (WORLDPOP, ZONES, CATEGORIES,
              Param("distances_km", "array", "Distance thresholds.", default=(1.0, 3.0, 5.0), minimum=0,
                    exclusive_minimum=True, maximum=100, unit="km"),
              Param("minutes", "array", "Travel-time thresholds.", default=(10.0, 20.0, 30.0), minimum=0,
                    exclusive_minimum=True, maximum=600, unit="min"),
              DIRECTED, MAX_SNAP, AOI),
             "one row per ward", ("health", "access"), long=True),
    Analysis("health.2sfca", "2SFCA accessibility", "Chỉ số tiếp cận 2SFCA",
             "Two-step floating catchment accessibility (capacity = beds where known) per population cell.",
             "gis.analysis.processes:two_sfca",
             (WORLDPOP, ZONES, CATEGORIES,
              Param("catchment_min", "number", "Catchment (road time).", default=30.0, minimum=0,
                    exclusive_minimum=True, maximum=600, unit="min"),
              Param("decay", "string", "Distance decay.", default="step", enum=("step", "gaussian")),
              Param("default_capacity", "number", "Capacity of facilities without one (default: median).",
                    minimum=0, exclusive_minimum=True),
              Param("per", "number", "Express per this many people.", default=1000.0, minimum=0,
                    exclusive_minimum=True),
              DIRECTED, MAX_SNAP, AOI),
             "one row per population point: access", ("health", "2sfca"), long=True),
    Analysis("health.underserved", "Underserved wards", "Phường thiếu dịch vụ y tế",
             "Wards whose 2SFCA accessibility is below a share of the city-wide ratio.",
             "gis.analysis.processes:underserved",
             (WORLDPOP, ZONES, CATEGORIES,
              Param("catchment_min", "number", "Catchment (road time).", default=30.0, minimum=0,
                    exclusive_minimum=True, maximum=600, unit="min"),
              Param("ratio", "number", "Underserved below this share of the city-wide ratio.", default=0.5,
                    minimum=0, exclusive_minimum=True, maximum=1),
              DIRECTED, MAX_SNAP, AOI),
             "one row per ward, underserved first", ("health", "2sfca"), long=True),
    # --- logistics ---
    Analysis("logistics.od-matrix", "Ward-to-ward travel times", "Ma trận thời gian di chuyển giữa các phường",
             "Road travel time between every pair of ward centroids.", "gis.analysis.processes:od_matrix",
             (ZONES, DIRECTED, MAX_SNAP, AOI), "one row per (origin, destination)", ("logistics", "od"), long=True),
    Analysis("logistics.service-areas", "Service areas", "Vùng phục vụ",
             "Areas within 10/20/30 min by road of a set of facilities (isochrones).",
             "gis.analysis.processes:service_areas",
             (CATEGORIES,
              Param("minutes", "array", "Travel-time thresholds.", default=(10.0, 20.0, 30.0), minimum=0,
                    exclusive_minimum=True, maximum=600, unit="min"),
              Param("buffer_m", "number", "Band along reached roads counted as served.", default=100.0,
                    minimum=0, exclusive_minimum=True, maximum=5000, unit="m"),
              Param("per_facility", "boolean", "One area per facility.", default=False),
              Param("worldpop", "string", "Optional WorldPop raster: people in each area.", format="path"),
              DIRECTED, MAX_SNAP, AOI),
             "one polygon per threshold (and facility)", ("logistics", "isochrone"), long=True),
    Analysis("logistics.od-flows", "Survey OD flows", "Luồng OD khảo sát",
             "Survey origin-destination flows summarised per ward (or district) or per corridor.",
             "gis.analysis.processes:od_flows",
             (Param("flows", "string", "The survey file (e.g. 2014_HIDS_OD_Matrix.shp, Survey_OD.shp).",
                    required=True, format="path"),
              Param("zones", "string", "Zones the survey refers to.", default="wards_2019",
                    enum=("wards_2019", "districts", "wards_2025"), format="layer"),
              Param("level", "string", "Per zone or per corridor.", default="zone", enum=("zone", "corridor"))),
             "one row per zone or corridor", ("logistics", "od", "survey")),
    Analysis("logistics.p-median", "Facility location (p-median)", "Chọn vị trí cơ sở (p-median)",
             "Choose k sites among candidates minimising population-weighted road travel time; coverage "
             "before and after.", "gis.analysis.processes:p_median",
             (Param("k", "integer", "Sites to open.", default=3, minimum=1, maximum=50),
              WORLDPOP, ZONES,
              Param("candidates", "string", "Candidate sites: zone centroids, or points of interest of "
                    "the candidate_categories.", default="zone-centroids", enum=("zone-centroids", "poi")),
              Param("candidate_categories", "array", "POI categories of candidate sites.", default=("school",),
                    items="string"),
              Param("existing", "boolean", "Count the existing facilities (categories) as open.", default=True),
              CATEGORIES,
              Param("method", "string", "Solver.", default="auto", enum=("auto", "greedy", "exact")),
              Param("coverage_min", "number", "Coverage threshold.", default=15.0, minimum=0,
                    exclusive_minimum=True, maximum=600, unit="min"),
              DIRECTED, MAX_SNAP, AOI),
             "the chosen sites; attrs.summary: before/after", ("logistics", "location"), long=True),
    # --- raster -------------------------------------------------------------------------------------
    Analysis("raster.zonal", "Zonal statistics of a raster", "Thống kê vùng của ảnh raster",
             "Statistics of a raster's cells per ward, district, parcel or plan lot, each cell weighted "
             "by the share of it inside the zone (exact coverage): count, sum, mean, min, max, std, "
             "percentiles and the fraction of the zone covered by valid cells; one row per zone and band.",
             "gis.analysis.processes:zonal_statistics",
             (Param("raster", "string", "The raster (GeoTIFF, COG, any CRS); over the API, "
                    "raster:<collection> (its latest item) or raster:<collection>/<item> names one of the "
                    "catalog, e.g. raster:worldpop.", required=True, format="path"),
              Param("zones", "string", "Zone layer the statistics are given per.", default="wards_2025",
                    enum=("wards_2025", "wards_2019", "districts", "parcels", "lots"), format="layer"),
              Param("bands", "array", "Bands of the raster (1 = the first).", default=(1,), items="integer",
                    minimum=1),
              Param("percentiles", "array", "Percentiles, coverage-weighted.", default=(10.0, 50.0, 90.0),
                    minimum=0, maximum=100),
              AOI),
             "one row per (zone, band): count, sum, mean, min, max, std, p<N>, frac", ("raster", "zonal statistics")),
    Analysis("raster.indices", "Spectral indices per zone", "Chỉ số phổ theo vùng",
             "NDVI, NDBI, NDWI and the built-up mask of a multispectral scene (red, NIR, SWIR, green bands "
             "found by name), summarised per ward, district, parcel or plan lot with exact cell coverage: "
             "mean, min, max, std and percentiles of each index (the built-up mask's mean is the built-up "
             "share of the zone).",
             "gis.analysis.processes:indices",
             (Param("raster", "string", "The scene; over the API raster:<collection>/<item> (e.g. a "
                    "Sentinel-2 scene ingested with --sensor sentinel2).", required=True, format="path"),
              Param("indices", "array", "Indices to compute.", default=("ndvi", "ndbi", "ndwi", "built_up"),
                    items="string", enum=("ndvi", "ndbi", "ndwi", "built_up")),
              Param("zones", "string", "Zone layer.", default="wards_2025",
                    enum=("wards_2025", "wards_2019", "districts", "parcels", "lots"), format="layer"),
              Param("percentiles", "array", "Percentiles, coverage-weighted.", default=(50.0,), minimum=0,
                    maximum=100),
              AOI),
             "one row per (zone, index): count, mean, min, max, std, p<N>, frac", ("raster", "spectral indices"),
             long=True),
    Analysis("raster.change", "Change between two dates, per zone", "Biến động giữa hai thời điểm theo vùng",
             "Between two rasters of one grid: the new built-up area (built-up masks of two multispectral "
             "scenes, NDBI/NDVI rule) or the change of one band (later - earlier, e.g. people between two "
             "WorldPop editions), summed per ward, district, parcel or plan lot with exact cell coverage.",
             "gis.analysis.processes:change",
             (Param("earlier", "string", "The earlier raster; over the API raster:<collection>/<item>.",
                    required=True, format="path"),
              Param("later", "string", "The later raster, on the same grid.", required=True, format="path"),
              Param("method", "string", "built-up (new built-up area) or difference (later - earlier).",
                    default="built-up", enum=("built-up", "difference")),
              Param("band", "integer", "Band of a difference.", default=1, minimum=1),
              Param("zones", "string", "Zone layer the change is summed per.", default="wards_2025",
                    enum=("wards_2025", "wards_2019", "districts", "parcels", "lots"), format="layer"),
              AOI),
             "one row per zone: new_built_up_m2 and its share of the zone (built-up), or change (difference)",
             ("raster", "change detection"), long=True),
)

REGISTRY: dict[str, Analysis] = {a.id: a for a in ANALYSES}
GROUPS = ("planning", "health", "logistics", "raster")


def get_analysis(analysis_id: str) -> Analysis:
    """The analysis ``analysis_id`` (``group.name``); :class:`NotFoundError` listing them otherwise."""
    try:
        return REGISTRY[analysis_id]
    except KeyError:
        raise NotFoundError(f"Unknown analysis {analysis_id!r}; analyses: {', '.join(REGISTRY)}.") from None


def run(analysis_id: str, dsn: str, params: dict[str, Any] | None = None, **kwargs: Any):
    """Run an analysis by id (see :meth:`Analysis.run`)."""
    return get_analysis(analysis_id).run(dsn, params, **kwargs)
