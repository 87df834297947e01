"""HTML pages: Jinja2 templates in ``api/templates``, bilingual labels, a local Leaflet map."""

from __future__ import annotations

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

#: UI labels by language.
LABELS = {
    "en": {
        "home": "Home",
        "collections": "Collections",
        "api": "API definition",
        "conformance": "Conformance",
        "features": "Features",
        "queryables": "Queryables",
        "title": "Ho Chi Minh City open GIS",
        "formats": "Other formats",
        "next": "Next page",
        "prev": "Previous page",
        "first": "First page",
        "returned": "features on this page",
        "matched": "features match",
        "property": "Property",
        "value": "Value",
        "type": "Type",
        "keywords": "Keywords",
        "licence": "Licence",
        "attribution": "Attribution",
        "extent": "Extent",
        "temporal": "Time",
        "crs": "Coordinate reference systems",
        "storage_crs": "Storage CRS",
        "limit": "Features per page",
        "show": "Show",
        "language": "Tiếng Việt",
        "description": "Description",
        "no_features": "No feature matches.",
        "feature": "Feature",
        "collection": "Collection",
        "unit": "Unit",
        "map_note": "The map shows longitude/latitude (CRS84) whatever the crs parameter.",
        "docs": "API documentation",
        "error": "Error",
        "name": "Name",
    },
    "vi": {
        "home": "Trang chủ",
        "collections": "Lớp dữ liệu",
        "api": "Định nghĩa API",
        "conformance": "Tiêu chuẩn đáp ứng",
        "features": "Đối tượng",
        "queryables": "Trường truy vấn",
        "title": "Dữ liệu GIS mở TP. Hồ Chí Minh",
        "formats": "Định dạng khác",
        "next": "Trang sau",
        "prev": "Trang trước",
        "first": "Trang đầu",
        "returned": "đối tượng trên trang này",
        "matched": "đối tượng thỏa điều kiện",
        "property": "Thuộc tính",
        "value": "Giá trị",
        "type": "Kiểu",
        "keywords": "Từ khóa",
        "licence": "Giấy phép",
        "attribution": "Nguồn",
        "extent": "Phạm vi",
        "temporal": "Thời gian",
        "crs": "Hệ tọa độ",
        "storage_crs": "Hệ tọa độ lưu trữ",
        "limit": "Số đối tượng mỗi trang",
        "show": "Hiển thị",
        "language": "English",
        "description": "Mô tả",
        "no_features": "Không có đối tượng nào.",
        "feature": "Đối tượng",
        "collection": "Lớp dữ liệu",
        "unit": "Đơn vị",
        "map_note": "Bản đồ hiển thị kinh độ/vĩ độ (CRS84) bất kể tham số crs.",
        "docs": "Tài liệu API",
        "error": "Lỗi",
        "name": "Tên",
    },
}


def _json_script(value) -> Markup:
    """JSON safe to embed in a <script type="application/json"> element."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


class Pages:
    """The template environment of one app."""

    def __init__(self, basemap_url: str, basemap_attribution: str) -> None:
        self.env = Environment(
            loader=PackageLoader("api", "templates"),
            autoescape=select_autoescape(["html"]),
            enable_async=False,
        )
        self.env.filters["json_script"] = _json_script
        self.basemap_url = basemap_url
        self.basemap_attribution = basemap_attribution

    def render(
        self,
        template: str,
        *,
        lang: str,
        base: str,
        self_url: str,
        alternates: list[dict],
        status_code: int = 200,
        headers: dict | None = None,
        **context,
    ) -> HTMLResponse:
        other = "vi" if lang == "en" else "en"
        page = self.env.get_template(template).render(
            lang=lang,
            t=LABELS[lang],
            base=base,
            self_url=self_url,
            alternates=alternates,
            other_lang=other,
            other_lang_url=_with_param(self_url, "lang", other),
            basemap_url=self.basemap_url,
            basemap_attribution=self.basemap_attribution,
            **context,
        )
        h = {"Content-Language": lang}
        if headers:
            h.update(headers)
        return HTMLResponse(page, status_code=status_code, headers=h)


def _with_param(url: str, name: str, value: str) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    q.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(q)))
