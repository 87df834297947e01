"""OGC API - Processes (Part 1, 1.0): the analyses of :mod:`gis.analysis` as processes, run
synchronously or as jobs.

* ``/processes`` and ``/processes/{processId}``: the analyses of the registry
  (:mod:`gis.analysis.registry`) with their inputs' JSON Schemas and their output.
* ``POST /processes/{processId}/execution``: an execute request (``inputs``, ``outputs``,
  ``response``). A short analysis runs synchronously (200 with the result) unless the client sends
  ``Prefer: respond-async``; a long one (road graph, population raster: ``jobControlOptions``
  ``async-execute`` only) always runs as a job: 201, ``Location: /jobs/{jobId}``.
* ``/jobs``, ``/jobs/{jobId}``, ``/jobs/{jobId}/results``, ``DELETE /jobs/{jobId}``: the job list
  (filters of the job-list class), the status, the results (as asked at execution, or as a
  download with ``f=geojson|csv|gpkg|json``) and dismissal.

Every execution, synchronous or not, is a job of :mod:`gis.analysis.jobs`: its status is in
PostgreSQL (every worker process of the server answers the same), its results stay downloadable,
and a result with a geometry is published as the collection ``stats-job-<id>``. Bad input is a 400
naming the input before anything is queued; a job that fails keeps the user-safe reason.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from api.negotiation import MEDIA, language, negotiate
from api.params import check_params
from gis.errors import GisError, InputError, NotFoundError
from gis.settings import Settings

PROC = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"
CONFORMANCE = [
    f"{PROC}/core",
    f"{PROC}/ogc-process-description",
    f"{PROC}/json",
    f"{PROC}/html",
    f"{PROC}/oas30",
    f"{PROC}/job-list",
    f"{PROC}/dismiss",
]
REL = "http://www.opengis.net/def/rel/ogc/1.0"
REL_PROCESSES = f"{REL}/processes"
REL_JOBS = f"{REL}/job-list"
REL_EXECUTE = f"{REL}/execute"
REL_RESULTS = f"{REL}/results"
JSON = "application/json"
FORMATS = ("json", "html")
#: result media type -> format name of gis.analysis.jobs.RESULT_FILES
RESULT_MEDIA = {
    "application/geo+json": "geojson",
    "text/csv": "csv",
    "application/geopackage+sqlite3": "gpkg",
    "application/json": "json",
}
JOB_TYPES = ("process", "wps", "openeo")
_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}

LABELS = {
    "en": {
        "processes": "Processes",
        "jobs": "Jobs",
        "process": "Process",
        "job": "Job",
        "inputs": "Inputs",
        "outputs": "Outputs",
        "input": "Input",
        "schema": "Schema",
        "required": "required",
        "optional": "optional",
        "execute": "Execute",
        "execute_note": "Send an execute request (JSON); it runs as a job and this page then "
        "shows its status.",
        "status": "Status",
        "progress": "Progress",
        "created": "Created",
        "started": "Started",
        "finished": "Finished",
        "message": "Message",
        "results": "Results",
        "download": "Download",
        "collection": "Published as collection",
        "dismiss": "Dismiss",
        "modes": "Execution",
        "no_jobs": "No job.",
        "rows": "rows",
        "all": "all",
        "sync": "synchronous or asynchronous",
        "async": "asynchronous only (a long analysis)",
        "title": "Ho Chi Minh City open GIS",
    },
    "vi": {
        "processes": "Phép phân tích",
        "jobs": "Tác vụ",
        "process": "Phép phân tích",
        "job": "Tác vụ",
        "inputs": "Tham số đầu vào",
        "outputs": "Kết quả",
        "input": "Tham số",
        "schema": "Lược đồ",
        "required": "bắt buộc",
        "optional": "tùy chọn",
        "execute": "Chạy",
        "execute_note": "Gửi yêu cầu chạy (JSON); phép phân tích chạy như một tác vụ và trang "
        "này sẽ hiển thị trạng thái của nó.",
        "status": "Trạng thái",
        "progress": "Tiến độ",
        "created": "Tạo lúc",
        "started": "Bắt đầu",
        "finished": "Kết thúc",
        "message": "Thông báo",
        "results": "Kết quả",
        "download": "Tải về",
        "collection": "Đã công bố thành lớp dữ liệu",
        "dismiss": "Hủy",
        "modes": "Cách chạy",
        "no_jobs": "Chưa có tác vụ nào.",
        "rows": "dòng",
        "all": "tất cả",
        "sync": "đồng bộ hoặc bất đồng bộ",
        "async": "chỉ bất đồng bộ (phân tích lâu)",
        "title": "Dữ liệu GIS mở TP. Hồ Chí Minh",
    },
}


# ---------------------------------------------------------------------------------------------
# the api.parts interface
# ---------------------------------------------------------------------------------------------
def landing_links(base: str) -> list[dict]:
    """Landing page links to the processes and the job list."""
    return [
        {
            "href": f"{base}/processes",
            "rel": REL_PROCESSES,
            "type": JSON,
            "title": "Processes: the analyses (OGC API - Processes)",
        },
        {"href": f"{base}/jobs", "rel": REL_JOBS, "type": JSON, "title": "Jobs of the analyses"},
    ]


def openapi_paths(snapshot=None) -> dict:
    """The Processes paths of the OpenAPI 3.0 document (:mod:`api.openapi`)."""

    def p(name: str, description: str, schema: dict, where: str = "query") -> dict:
        out = {
            "name": name,
            "in": where,
            "required": where == "path",
            "description": description,
            "schema": schema,
        }
        if where == "query":
            out["style"], out["explode"] = "form", False
        return out

    f = p(
        "f",
        "Response format (overrides the Accept header).",
        {"type": "string", "enum": list(FORMATS)},
    )
    lang = p(
        "lang",
        "Language of titles (overrides Accept-Language).",
        {"type": "string", "enum": ["en", "vi"]},
    )
    pid = p(
        "processId",
        "Process id (see /processes), e.g. planning.land-use.",
        {"type": "string"},
        "path",
    )
    jid = p("jobId", "Job id (a UUID, see /jobs).", {"type": "string"}, "path")
    err = {"$ref": "#/components/responses/InvalidParameter"}
    nf = {"$ref": "#/components/responses/NotFound"}
    exc = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    links = {"type": "array", "items": {"$ref": "#/components/schemas/link"}}
    status_info = {
        "type": "object",
        "required": ["jobID", "status", "type"],
        "properties": {
            "type": {"type": "string", "enum": ["process"]},
            "processID": {"type": "string"},
            "jobID": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["accepted", "running", "successful", "failed", "dismissed"],
            },
            "message": {"type": "string"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "created": {"type": "string", "format": "date-time"},
            "started": {"type": "string", "format": "date-time"},
            "finished": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "links": links,
        },
    }
    html = {"text/html": {"schema": {"type": "string"}}}

    def js(schema: dict) -> dict:
        return {JSON: {"schema": schema}, **html}

    process_list = {
        "type": "object",
        "required": ["processes", "links"],
        "properties": {"processes": {"type": "array", "items": {"type": "object"}}, "links": links},
    }
    job_list = {
        "type": "object",
        "required": ["jobs", "links"],
        "properties": {"jobs": {"type": "array", "items": status_info}, "links": links},
    }
    execute = {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "additionalProperties": True,
                "description": "Input id -> value (see the process description).",
            },
            "outputs": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "format": {
                            "type": "object",
                            "properties": {"mediaType": {"type": "string"}},
                        },
                        "transmissionMode": {"type": "string", "enum": ["value", "reference"]},
                    },
                },
            },
            "response": {"type": "string", "enum": ["raw", "document"], "default": "raw"},
            "subscriber": {"type": "object"},
        },
    }
    results = {
        "application/geo+json": {"schema": {"type": "object"}},
        JSON: {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/geopackage+sqlite3": {"schema": {"type": "string", "format": "binary"}},
    }
    return {
        "/processes": {
            "get": {
                "tags": ["Processes"],
                "summary": "The processes (analyses)",
                "operationId": "getProcesses",
                "parameters": [
                    p(
                        "limit",
                        "Processes per page.",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    ),
                    p(
                        "offset",
                        "Processes to skip.",
                        {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0},
                    ),
                    f,
                    lang,
                ],
                "responses": {
                    "200": {"description": "The process list", "content": js(process_list)},
                    "400": err,
                },
            }
        },
        "/processes/{processId}": {
            "get": {
                "tags": ["Processes"],
                "summary": "A process description",
                "operationId": "getProcessDescription",
                "parameters": [pid, f, lang],
                "responses": {
                    "200": {
                        "description": "The process description (inputs, outputs)",
                        "content": js({"type": "object", "required": ["id", "version"]}),
                    },
                    "400": err,
                    "404": nf,
                },
            }
        },
        "/processes/{processId}/execution": {
            "post": {
                "tags": ["Processes"],
                "summary": "Execute a process",
                "operationId": "execute",
                "description": "Runs synchronously (200) unless the process is asynchronous only or "
                "'Prefer: respond-async' is sent (201, Location: the job).",
                "parameters": [
                    pid,
                    p("Prefer", "respond-async to run as a job.", {"type": "string"}, "header"),
                ],
                "requestBody": {"required": False, "content": {JSON: {"schema": execute}}},
                "responses": {
                    "200": {
                        "description": "The result (raw) or the results document",
                        "content": results,
                    },
                    "201": {
                        "description": "A job was created (asynchronous execution)",
                        "headers": {
                            "Location": {
                                "schema": {"type": "string"},
                                "description": "The job's status",
                            }
                        },
                        "content": {JSON: {"schema": status_info}},
                    },
                    "204": {
                        "description": "The result by reference (raw, transmissionMode reference): "
                        "see the Link header"
                    },
                    "400": err,
                    "404": nf,
                    "500": {"description": "The analysis failed unexpectedly", "content": exc},
                },
            }
        },
        "/jobs": {
            "get": {
                "tags": ["Processes"],
                "summary": "The jobs",
                "operationId": "getJobs",
                "parameters": [
                    p("type", "Job type.", {"type": "string", "enum": list(JOB_TYPES)}),
                    p(
                        "processID",
                        "Comma-separated process ids.",
                        {"type": "array", "items": {"type": "string"}},
                    ),
                    p(
                        "status",
                        "Comma-separated statuses.",
                        {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": [
                                    "accepted",
                                    "running",
                                    "successful",
                                    "failed",
                                    "dismissed",
                                ],
                            },
                        },
                    ),
                    p(
                        "datetime",
                        "Jobs created at this instant or in this interval (start/end, '..' open).",
                        {"type": "string"},
                    ),
                    p(
                        "minDuration",
                        "Jobs that ran at least this many seconds.",
                        {"type": "integer", "minimum": 0, "maximum": 10**9},
                    ),
                    p(
                        "maxDuration",
                        "Jobs that ran at most this many seconds.",
                        {"type": "integer", "minimum": 0, "maximum": 10**9},
                    ),
                    p(
                        "limit",
                        "Jobs per page.",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    ),
                    p(
                        "offset",
                        "Jobs to skip.",
                        {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
                    ),
                    f,
                    lang,
                ],
                "responses": {
                    "200": {"description": "The jobs, newest first", "content": js(job_list)},
                    "400": err,
                },
            }
        },
        "/jobs/{jobId}": {
            "get": {
                "tags": ["Processes"],
                "summary": "The status of a job",
                "operationId": "getStatus",
                "parameters": [jid, f, lang],
                "responses": {
                    "200": {"description": "The status", "content": js(status_info)},
                    "400": err,
                    "404": nf,
                },
            },
            "delete": {
                "tags": ["Processes"],
                "summary": "Dismiss a job (stop it, remove its results)",
                "operationId": "dismiss",
                "parameters": [jid],
                "responses": {
                    "200": {
                        "description": "The job, dismissed",
                        "content": {JSON: {"schema": status_info}},
                    },
                    "400": err,
                    "404": nf,
                },
            },
        },
        "/jobs/{jobId}/results": {
            "get": {
                "tags": ["Processes"],
                "summary": "The results of a job",
                "operationId": "getResult",
                "parameters": [
                    jid,
                    p(
                        "f",
                        "A download of the result in this format (default: as asked at execution).",
                        {"type": "string", "enum": ["geojson", "csv", "gpkg", "json"]},
                    ),
                ],
                "responses": {
                    "200": {"description": "The result", "content": results},
                    "204": {"description": "The result by reference: see the Link header"},
                    "400": err,
                    "404": nf,
                    "500": {"description": "The job failed unexpectedly", "content": exc},
                },
            }
        },
    }


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(doc, status: int = 200, headers: dict | None = None, media: str = JSON) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=media, headers=headers)


def _time(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _analysis(process_id: str):
    from gis.analysis.registry import REGISTRY

    a = REGISTRY.get(process_id)
    if a is None:
        shown = process_id if len(process_id) <= 60 else process_id[:57] + "..."
        raise NotFoundError(
            f"There is no process {shown!r}; the processes: {', '.join(REGISTRY)}.",
            code="NoSuchProcess",
        )
    return a


def _result_media(analysis) -> list[str]:
    if analysis.geometry:
        return ["application/geo+json", "text/csv", "application/geopackage+sqlite3"]
    return ["application/json", "text/csv"]


def _html(request: Request, template: str, lang: str, **ctx) -> Response:
    return request.app.state.pages.render(
        template,
        lang=lang,
        base=_base(request),
        self_url=str(request.url),
        alternates=_alternate(request, "html")[1:],
        p=LABELS[lang],
        **ctx,
    )


def _alternate(request: Request, fmt: str) -> list[dict]:
    q = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    other = "html" if fmt == "json" else "json"
    q.append(("f", other))
    return [
        {"href": str(request.url), "rel": "self", "type": MEDIA[fmt], "title": "This document"},
        {
            "href": f"{_base(request)}{request.url.path}?{urlencode(q)}",
            "rel": "alternate",
            "type": MEDIA[other],
            "title": f"This document as {other.upper()}",
        },
    ]


def _summary(base: str, a, lang: str) -> dict:
    d = a.describe()
    return {
        "id": a.id,
        "title": a.title_vi if lang == "vi" else a.title,
        "description": a.description,
        "version": d["version"],
        "keywords": d["keywords"],
        "jobControlOptions": d["jobControlOptions"],
        "outputTransmission": d["outputTransmission"],
        "links": [
            {
                "href": f"{base}/processes/{a.id}",
                "rel": "self",
                "type": JSON,
                "title": "Process description",
            },
            {
                "href": f"{base}/processes/{a.id}?f=html",
                "rel": "alternate",
                "type": "text/html",
                "title": "Process description as HTML",
            },
        ],
    }


def _description(base: str, a, lang: str) -> dict:
    d = a.describe()
    doc = _summary(base, a, lang)
    doc["inputs"] = d["inputs"]
    media = _result_media(a)
    doc["outputs"] = {
        "result": {
            "title": a.output,
            "description": "The result table: "
            + a.output
            + ". Units, assumptions and parameters are in "
            "the metadata (GeoPackage metadata, /jobs/{jobId} results' metadata.json).",
            "schema": {
                "oneOf": [
                    {"type": "object", "contentMediaType": m}
                    if m.endswith("json")
                    else {
                        "type": "string",
                        "contentMediaType": m,
                        **({"contentEncoding": "binary"} if "geopackage" in m else {}),
                    }
                    for m in media
                ]
            },
        }
    }
    doc["links"] += [
        {
            "href": f"{base}/processes/{a.id}/execution",
            "rel": REL_EXECUTE,
            "type": JSON,
            "title": "Execute (POST an execute request)",
        },
        {
            "href": f"{base}/jobs?processID={a.id}",
            "rel": REL_JOBS,
            "type": JSON,
            "title": "Jobs of this process",
        },
    ]
    return doc


def _status_info(base: str, job) -> dict:
    doc = {
        "type": "process",
        "processID": job.process_id,
        "jobID": job.job_id,
        "status": job.status,
        "message": job.message,
        "progress": job.progress,
        "created": _time(job.created),
        "started": _time(job.started),
        "finished": _time(job.finished),
        "updated": _time(job.updated),
    }
    doc = {k: v for k, v in doc.items() if v is not None}
    links = [
        {"href": f"{base}/jobs/{job.job_id}", "rel": "self", "type": JSON, "title": "Job status"},
        {
            "href": f"{base}/jobs/{job.job_id}?f=html",
            "rel": "alternate",
            "type": "text/html",
            "title": "Job status as HTML",
        },
        {
            "href": f"{base}/processes/{job.process_id}",
            "rel": "up",
            "type": JSON,
            "title": "The process",
        },
    ]
    if job.status == "successful":
        links.append(
            {
                "href": f"{base}/jobs/{job.job_id}/results",
                "rel": REL_RESULTS,
                "type": JSON,
                "title": "Results",
            }
        )
        from gis.analysis.jobs import RESULT_FILES

        for fmt in job.result_formats:
            links.append(
                {
                    "href": f"{base}/jobs/{job.job_id}/results?f={fmt}",
                    "rel": "enclosure",
                    "type": RESULT_FILES[fmt][1],
                    "title": f"Result as {fmt.upper()}",
                }
            )
        if job.result_collection:
            links.append(
                {
                    "href": f"{base}/collections/{job.result_collection}",
                    "rel": "related",
                    "type": JSON,
                    "title": "The result, published as a collection",
                }
            )
    doc["links"] = links
    return doc


def _job_error(job) -> GisError:
    """The exception of a failed or dismissed job, as the API answers it."""
    if job.status == "dismissed":
        return NotFoundError(
            f"Job {job.job_id} was dismissed: it has no results.", code="NoSuchJob"
        )
    if job.status in ("accepted", "running"):
        return NotFoundError(
            f"Job {job.job_id} is {job.status}: its results are not ready yet "
            f"(progress {job.progress} %).",
            code="ResultNotReady",
        )
    exc = GisError(job.message or "The job failed.", job.error_code or "JobFailed")
    exc.http_status = job.error_status or 500
    return exc


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        raise InputError(f"Parameter {name}: {raw[:40]!r} is not an integer")
    v = int(text)
    if not lo <= v <= hi:
        raise InputError(f"Parameter {name}: {v} is out of range; it must be between {lo} and {hi}")
    return v


def _list(request: Request, name: str) -> tuple[str, ...]:
    raw = request.query_params.get(name)
    if raw is None:
        return ()
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if not values:
        raise InputError(f"Parameter {name}: give one or more values, comma-separated")
    return values


# --- the execute request ------------------------------------------------------------------------
def _input_value(a, name: str, value):
    """An input of an execute request as the registry takes it (qualified values unwrapped, a
    bounding box or a GeoJSON geometry as the area of interest)."""
    try:
        param = a.param(name)
    except InputError as exc:
        raise InputError(f"Input {name!r}: {exc.message}") from None
    if isinstance(value, dict):
        if "href" in value:
            raise InputError(
                f"Input {name}: inputs by reference (href) are not supported; give the value."
            )
        if "value" in value:
            value = value["value"]
        elif param.format == "aoi" and "bbox" in value:
            box = value["bbox"]
            crs = value.get("crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")
            if crs not in (
                "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                "OGC:CRS84",
                "EPSG:4326",
                "http://www.opengis.net/def/crs/EPSG/0/4326",
            ):
                raise InputError(
                    f"Input {name}: give the bounding box in CRS84 (longitude, "
                    f"latitude); got crs {str(crs)[:80]!r}."
                )
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            ):
                raise InputError(
                    f"Input {name}: bbox must be 4 numbers minlon, minlat, maxlon, maxlat."
                )
            return ",".join(repr(float(v)) for v in box)
        elif param.format == "aoi" and value.get("type") in _GEOMETRY_TYPES:
            import shapely.geometry

            try:
                return shapely.geometry.shape(value).wkt
            except Exception:  # noqa: BLE001 - any malformed GeoJSON
                raise InputError(f"Input {name}: not a valid GeoJSON geometry.") from None
        else:
            raise InputError(
                f"Input {name}: an object is not a value of this input; give a "
                f'{param.type} (or {{"value": ...}}).'
            )
    if param.type == "array":
        items = value if isinstance(value, list) else [value]
        if any(
            isinstance(v, (dict, list)) or (isinstance(v, bool) and param.items != "boolean")
            for v in items
        ):
            raise InputError(f"Input {name}: give an array of {param.items} values.")
        return items
    if isinstance(value, list):
        if len(value) == 1 and not isinstance(value[0], (dict, list)):
            value = value[0]
        else:
            raise InputError(f"Input {name}: takes one {param.type} value, not an array.")
    if isinstance(value, bool) and param.type in ("integer", "number", "string"):
        raise InputError(f"Input {name}: must be a {param.type}; got {str(value).lower()}.")
    if param.type == "boolean" and isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InputError(f"Input {name}: must be true or false; got {value!r}.")
    return value


def _execute_request(a, body: bytes) -> tuple[dict, dict]:
    """(inputs, execution) of an execute request body."""
    if body.strip():
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InputError(
                'The request body is not valid JSON: send an execute request {"inputs": {...}}.'
            ) from None
    else:
        doc = {}
    if not isinstance(doc, dict):
        raise InputError('The request body must be a JSON object: {"inputs": {...}}.')
    unknown = [k for k in doc if k not in ("inputs", "outputs", "response", "subscriber", "mode")]
    if unknown:
        raise InputError(
            f"The execute request has no member {str(unknown[0])[:40]!r}; it takes "
            "inputs, outputs, response and subscriber."
        )
    raw_inputs = doc.get("inputs") or {}
    if not isinstance(raw_inputs, dict):
        raise InputError("inputs must be a JSON object of input id: value.")
    inputs = {k: _input_value(a, k, v) for k, v in raw_inputs.items() if v is not None}
    response = doc.get("response", "raw")
    if response not in ("raw", "document"):
        raise InputError(f"response must be raw or document; got {str(response)[:40]!r}.")
    media_ok = _result_media(a)
    outputs = doc.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise InputError("outputs must be a JSON object of output id: {format, transmissionMode}.")
    out = {"mediaType": media_ok[0], "transmissionMode": "value"}
    for key, spec in outputs.items():
        if key != "result":
            raise InputError(
                f"outputs: there is no output {str(key)[:40]!r}; this process has one "
                "output, result."
            )
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise InputError("outputs.result must be an object {format, transmissionMode}.")
        fmt = spec.get("format") or {}
        media = fmt.get("mediaType") if isinstance(fmt, dict) else None
        if media is not None:
            if media not in media_ok:
                raise InputError(
                    f"outputs.result.format.mediaType: {str(media)[:60]!r} is not "
                    f"available; give one of {', '.join(media_ok)}."
                )
            out["mediaType"] = media
        mode = spec.get("transmissionMode")
        if mode is not None:
            if mode not in ("value", "reference"):
                raise InputError(
                    f"outputs.result.transmissionMode must be value or reference; got "
                    f"{str(mode)[:40]!r}."
                )
            out["transmissionMode"] = mode
    return inputs, {"response": response, "outputs": {"result": out}}


def _results_response(request: Request, job, execution: dict) -> Response:
    """The results of a successful job, as the execute request asked (raw or document, value or
    reference)."""
    from gis.analysis.jobs import RESULT_FILES

    base = _base(request)
    out = (execution.get("outputs") or {}).get("result") or {}
    media = out.get("mediaType") or "application/geo+json"
    fmt = RESULT_MEDIA.get(media, "geojson")
    if fmt not in job.result_formats:
        fmt = job.result_formats[0]
        media = RESULT_FILES[fmt][1]
    href = f"{base}/jobs/{job.job_id}/results?f={fmt}"
    mode = out.get("transmissionMode", "value")
    monitor = f'<{base}/jobs/{job.job_id}>; rel="monitor"; type="application/json"'
    if execution.get("response", "raw") == "raw":
        if mode == "reference":
            return Response(
                status_code=204,
                headers={"Link": f'<{href}>; rel="{REL_RESULTS}"; type="{media}", {monitor}'},
            )
        return _file(job, fmt, headers={"Link": monitor})
    if mode == "value" and fmt in ("geojson", "json"):
        path = job.result_file(fmt)
        if path is None:
            raise NotFoundError(f"The results of job {job.job_id} are gone.", code="NoSuchJob")
        body = b'{"result":' + path.read_bytes() + b"}"
        return Response(body, media_type=JSON, headers={"Link": monitor})
    return _json({"result": {"href": href, "type": media}}, headers={"Link": monitor})


def _file(job, fmt: str, headers: dict | None = None, download: bool = False) -> Response:
    from gis.analysis.jobs import RESULT_FILES

    path = job.result_file(fmt)
    if path is None:
        raise NotFoundError(
            f"Job {job.job_id} has no result as {fmt}; it has: "
            f"{', '.join(job.result_formats) or 'none'}.",
            code="NoSuchJob",
        )
    h = dict(headers or {})
    if download:
        h["Content-Disposition"] = f'attachment; filename="job_{job.short}{path.suffix}"'
    return FileResponse(path, media_type=RESULT_FILES[fmt][1], headers=h)


# ---------------------------------------------------------------------------------------------
# the router
# ---------------------------------------------------------------------------------------------
def make_router(settings: Settings) -> APIRouter:
    """The Processes routes, bound to the platform ``settings``.

    Its lifespan (run inside the app's, after the pool is open) starts the job manager
    (:class:`gis.analysis.jobs.JobManager`: recovers interrupted jobs, starts the workers) and
    stops it on shutdown. ``app.state.job_settings``, when set before start-up, overrides the
    ``GIS_PROCESSES_*`` environment (tests).
    """

    @asynccontextmanager
    async def lifespan(app):
        from gis.analysis.jobs import JobManager, JobSettings

        js = getattr(app.state, "job_settings", None) or JobSettings()
        mgr = JobManager(app.state.gis.dsn, js, settings.data_dir, settings.raster_dir)
        await asyncio.to_thread(mgr.open)
        app.state.jobs = mgr
        try:
            yield
        finally:
            await asyncio.to_thread(mgr.close)

    router = APIRouter(lifespan=lifespan)
    start_lock = threading.Lock()

    def jobs(request: Request):
        """The job manager of this process. Started by the lifespan above; if the app was built
        without it (a router whose lifespan was not included), started here on first use and
        stopped at exit, so that the routes still work."""
        app = request.app
        mgr = getattr(app.state, "jobs", None)
        if mgr is not None:
            return mgr
        with start_lock:
            mgr = getattr(app.state, "jobs", None)
            if mgr is None:
                from gis.analysis.jobs import JobManager, JobSettings

                js = getattr(app.state, "job_settings", None) or JobSettings()
                mgr = JobManager(app.state.gis.dsn, js, settings.data_dir, settings.raster_dir)
                mgr.open()
                # before the interpreter joins the worker threads (concurrent.futures registers
                # its join the same way, earlier: these run last-registered first)
                register = getattr(threading, "_register_atexit", None) or atexit.register
                register(mgr.close, 5.0)
                app.state.jobs = mgr
        return mgr

    @router.get("/processes", include_in_schema=False)
    async def process_list(request: Request) -> Response:
        from gis.analysis.registry import ANALYSES

        check_params(request, ("f", "lang", "limit", "offset"))
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        limit = _int(request, "limit", 100, 1, 1000)
        offset = _int(request, "offset", 0, 0, 1_000_000)
        base = _base(request)
        page = ANALYSES[offset : offset + limit]
        links = _alternate(request, fmt)
        if offset + limit < len(ANALYSES):
            links.append(
                {
                    "href": f"{base}/processes?{urlencode({'limit': limit, 'offset': offset + limit})}",
                    "rel": "next",
                    "type": JSON,
                    "title": "Next page",
                }
            )
        links.append({"href": f"{base}/jobs", "rel": REL_JOBS, "type": JSON, "title": "Jobs"})
        doc = {"processes": [_summary(base, a, lang) for a in page], "links": links}
        if fmt == "html":
            return _html(request, "processes.html", lang, doc=doc)
        return _json(doc)

    @router.get("/processes/{process_id}", include_in_schema=False)
    async def process_description(request: Request, process_id: str) -> Response:
        a = _analysis(process_id)
        check_params(request, ("f", "lang"))
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        doc = _description(_base(request), a, lang)
        doc["links"] = _alternate(request, fmt) + doc["links"][2:]
        if fmt == "html":
            example = {
                "inputs": {
                    k: v["schema"]["default"]
                    for k, v in doc["inputs"].items()
                    if "default" in v["schema"]
                }
            }
            return _html(request, "process.html", lang, doc=doc, example=example)
        return _json(doc)

    @router.post("/processes/{process_id}/execution", include_in_schema=False)
    async def execute(request: Request, process_id: str) -> Response:
        a = _analysis(process_id)
        check_params(request, ())
        inputs, execution = _execute_request(a, await request.body())
        prefer = request.headers.get("prefer", "").lower()
        wants_async = "respond-async" in prefer
        run_async = a.long or wants_async
        mgr = await run_in_threadpool(jobs, request)
        job = await run_in_threadpool(
            mgr.submit, a, inputs, execution=execution, mode="async" if run_async else "sync"
        )
        base = _base(request)
        if run_async:
            headers = {"Location": f"{base}/jobs/{job.job_id}"}
            if wants_async:
                headers["Preference-Applied"] = "respond-async"
            return _json(_status_info(base, job), status=201, headers=headers)
        fut = mgr.future(job.job_id)
        if fut is not None:
            await asyncio.wrap_future(fut)
        job = await run_in_threadpool(mgr.get, job.job_id)
        if job.status != "successful":
            raise _job_error(job)
        return _results_response(request, job, execution)

    @router.get("/jobs", include_in_schema=False)
    async def job_list(request: Request) -> Response:
        from gis.query import parse_datetime

        check_params(
            request,
            (
                "f",
                "lang",
                "type",
                "processID",
                "status",
                "datetime",
                "minDuration",
                "maxDuration",
                "limit",
                "offset",
            ),
        )
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        types = _list(request, "type")
        bad = [t for t in types if t not in JOB_TYPES]
        if bad:
            raise InputError(f"Parameter type: {bad[0][:40]!r} is not a job type; give process")
        statuses = _list(request, "status")
        from gis.analysis.jobs import STATUSES

        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise InputError(
                f"Parameter status: {bad[0][:40]!r} is not a job status; give one of "
                f"{', '.join(STATUSES)}"
            )
        interval = None
        if request.query_params.get("datetime") is not None:
            interval = parse_datetime(request.query_params["datetime"], "datetime")
        filters = {
            "process_ids": _list(request, "processID"),
            "statuses": statuses,
            "created_from": interval.start if interval else None,
            "created_to": interval.end if interval else None,
            "min_duration": (
                _int(request, "minDuration", 0, 0, 10**9)
                if request.query_params.get("minDuration") is not None
                else None
            ),
            "max_duration": (
                _int(request, "maxDuration", 0, 0, 10**9)
                if request.query_params.get("maxDuration") is not None
                else None
            ),
            "limit": _int(request, "limit", 10, 1, 1000),
            "offset": _int(request, "offset", 0, 0, 10**9),
        }
        base = _base(request)
        if types and "process" not in types:
            found, total = [], 0
        else:
            found, total = await run_in_threadpool(lambda: jobs(request).list(**filters))
        links = _alternate(request, fmt)
        q = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset",)]
        limit, offset = filters["limit"], filters["offset"]
        if offset + limit < total:
            links.append(
                {
                    "href": f"{base}/jobs?{urlencode(q + [('offset', offset + limit)])}",
                    "rel": "next",
                    "type": MEDIA[fmt],
                    "title": "Next page",
                }
            )
        if offset > 0:
            links.append(
                {
                    "href": f"{base}/jobs?{urlencode(q + [('offset', max(0, offset - limit))])}",
                    "rel": "prev",
                    "type": MEDIA[fmt],
                    "title": "Previous page",
                }
            )
        links.append(
            {"href": f"{base}/processes", "rel": REL_PROCESSES, "type": JSON, "title": "Processes"}
        )
        doc = {
            "jobs": [_status_info(base, j) for j in found],
            "links": links,
            "numberMatched": total,
            "numberReturned": len(found),
        }
        if fmt == "html":
            return _html(request, "jobs.html", lang, doc=doc)
        return _json(doc)

    @router.get("/jobs/{job_id}", include_in_schema=False)
    async def job_status(request: Request, job_id: str) -> Response:
        check_params(request, ("f", "lang"))
        fmt = negotiate(request, FORMATS)
        lang = language(request)
        job = await run_in_threadpool(lambda: jobs(request).get(job_id))
        doc = _status_info(_base(request), job)
        doc["links"] = _alternate(request, fmt) + doc["links"][2:]
        if fmt == "html":
            a = _analysis(job.process_id) if job.process_id else None
            return _html(request, "job.html", lang, doc=doc, job=job, analysis=a)
        return _json(doc)

    @router.delete("/jobs/{job_id}", include_in_schema=False)
    async def dismiss(request: Request, job_id: str) -> Response:
        check_params(request, ())
        job = await run_in_threadpool(lambda: jobs(request).dismiss(job_id))
        return _json(_status_info(_base(request), job))

    @router.get("/jobs/{job_id}/results", include_in_schema=False)
    async def job_results(request: Request, job_id: str) -> Response:
        check_params(request, ("f",))
        f = request.query_params.get("f")
        from gis.analysis.jobs import RESULT_FILES

        if f is not None and f not in RESULT_FILES:
            raise InputError(
                f"Parameter f: {f[:40]!r} is not a result format; give one of "
                f"{', '.join(RESULT_FILES)}"
            )
        job = await run_in_threadpool(lambda: jobs(request).get(job_id))
        if job.status != "successful":
            raise _job_error(job)
        if f is not None:
            return _file(job, f, download=True)
        return _results_response(request, job, job.execution)

    return router
