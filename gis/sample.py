"""The platform's small, synthetic demo dataset, and a fast generator of large parcel files.

Everything here is made up. The places are real (2025 ward codes of Ho Chi Minh City and the
VN-2000 coordinates of a neighbourhood of Phường An Khánh, Thủ Thiêm), the content is not: no
parcel, owner, identity number, plan or building in these files exists. Nothing is read from
disk at run time, so the demo works on a machine that has only this package.

Two entry points:

* :func:`generate` writes the demo dataset (cadastre and a later edition of one sheet, a zoning
  plan, buildings, roads, points of interest, administrative units of 2019 and 2025, a population
  grid, two Sentinel-2-like scenes and a README) into a folder, in about a second. It is
  deterministic: the same seed gives the same content, byte for byte (the GeoPackage timestamps
  are pinned through GDAL's ``OGR_CURRENT_DATE``).
* :func:`iter_parcel_batches` / :func:`write_parcels` produce any number of synthetic cadastral
  parcels with the schema of the sample, in batches of bounded size, for ingest benchmarks
  (one million parcels in a few seconds of generation).

The layout of the parcels
-------------------------
Parcels are laid out on map sheets (tờ bản đồ). A sheet holds ``nb`` street blocks one above the
other, separated by residential streets; each block has two rows of lots back to back, fronting
the street above and the street below, and a service lane (hẻm) cuts every block in two halves.
Sheets sit on a grid separated by wider streets. Lot corners are nodes shared between neighbouring
lots and jittered by a few decimetres, so the parcels are irregular quadrilaterals that still tile
without gaps or overlaps.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

__all__ = [
    "ADMIN_FIELDS",
    "CADASTRAL_FIELDS",
    "INVALID_PARCEL",
    "LAYER_ADMIN",
    "LAYER_PARCELS",
    "LAYER_PLANNING",
    "PLANNING_FIELDS",
    "SAMPLE_COMMUNE",
    "SAMPLE_DISTRICT",
    "SAMPLE_WARDS_2019",
    "SAMPLE_WARDS_2025",
    "SPLIT_WARD_2019",
    "UPDATE_LAND_USE_PARCEL",
    "UPDATE_SHEET",
    "UPDATE_SPLIT_PARCEL",
    "generate",
    "iter_parcel_batches",
    "write_parcels",
]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- public constants --------------------------------------------------------------------------
CRS_CADASTRAL = "EPSG:9210"  # VN-2000 / TM-3 105-45, the projection of HCMC cadastral maps
CRS_WGS84 = "EPSG:4326"
LICENCE = "CC0-1.0"
LAYER_PARCELS = "thua_dat"
LAYER_PLANNING = "quy_hoach"

#: The 2025 ward in which the demo sheets lie: Phường An Khánh (Thủ Thiêm).
SAMPLE_COMMUNE = "27094"
SAMPLE_COMMUNE_NAME = _nfc("Phường An Khánh")

#: The one self-intersecting (bow-tie) parcel of the demo cadastre: (MaXa, sheet, parcel number).
INVALID_PARCEL: tuple[str, int, int] = (SAMPLE_COMMUNE, 2, 37)

#: ``cadastral_update.gpkg`` is a later edition of this sheet of the demo cadastre, in which
#: parcel UPDATE_SPLIT_PARCEL is split in two and parcel UPDATE_LAND_USE_PARCEL changes land use.
UPDATE_SHEET = 1
UPDATE_SPLIT_PARCEL = 1
UPDATE_LAND_USE_PARCEL = 10

#: Fields of the cadastral layer, in order (the update edition adds ``TachTuThua``).
CADASTRAL_FIELDS = (
    "MaXa", "SoHieuToBanDo", "SoThuTuThua", "KyHieuMucDichSuDung", "DienTich", "DiaChiThuaDat",
    "KyHieuDoiTuong", "TenChuSuDung", "SoGiayTo",
)
PLANNING_FIELDS = (
    "TenDoAn", "SoQuyetDinh", "NgayPheDuyet", "KyHieuLo", "ChucNang", "MaChucNang",
    "TangCaoToiDa", "ChieuCaoToiDa", "HeSoSDD", "MatDoXD", "DienTich",
)

# --- geometry of the layout (metres) -----------------------------------------------------------
_LOT_W = 6.0           # mean lot frontage
_LOT_D = 18.0          # mean lot depth; a block (two rows) is 2 * _LOT_D deep
_INNER_STREET = 12.0   # residential street between blocks of a sheet
_LANE = 6.0            # service lane cutting each block in two
_BORDER_STREET = 20.0  # street between sheets
_JITTER = 0.25         # corner jitter (+-)

# The demo: a grid of sheets whose north-west corner is here (EPSG:9210), inside An Khánh.
_SAMPLE_ORIGIN = (605_800.0, 1_191_920.0)
# Large files: 48 sheets a row from here (north-west of Gò Vấp) southwards; 1,000,000 parcels
# (2,000 sheets of 500) cover about 15.6 x 10.4 km: lon 106.64-106.78, lat 10.78-10.87.
_LARGE_ORIGIN = (597_100.0, 1_202_200.0)
_LARGE_COLUMNS = 48

# 2025 wards of HCMC around the large grid: (code, full name, x, y of an interior point in
# EPSG:9210). A sheet of a large file belongs to the ward whose point is nearest its centre.
_WARDS = (
    ("26737", "Phường Tân Định", 603031, 1193525),
    ("26740", "Phường Sài Gòn", 604154, 1192389),
    ("26743", "Phường Bến Thành", 603101, 1191257),
    ("26758", "Phường Cầu Ông Lãnh", 602531, 1190281),
    ("26767", "Phường An Phú Đông", 602916, 1201410),
    ("26773", "Phường Thới An", 599959, 1203237),
    ("26782", "Phường Tân Thới Hiệp", 597073, 1202733),
    ("26791", "Phường Đông Hưng Thuận", 595153, 1198406),
    ("26800", "Phường Linh Xuân", 611866, 1202102),
    ("26803", "Phường Tam Bình", 607278, 1202501),
    ("26809", "Phường Hiệp Bình", 606224, 1199381),
    ("26824", "Phường Thủ Đức", 609974, 1198908),
    ("26842", "Phường Tăng Nhơn Phú", 614259, 1199222),
    ("26848", "Phường Phước Long", 611888, 1196508),
    ("26876", "Phường An Nhơn", 602315, 1198462),
    ("26878", "Phường An Hội Đông", 600059, 1200032),
    ("26882", "Phường An Hội Tây", 596802, 1199404),
    ("26884", "Phường Gò Vấp", 600763, 1198446),
    ("26890", "Phường Hạnh Thông", 601798, 1196848),
    ("26898", "Phường Thông Tây Hội", 598742, 1199098),
    ("26905", "Phường Bình Lợi Trung", 603677, 1196989),
    ("26911", "Phường Bình Quới", 607880, 1196858),
    ("26929", "Phường Bình Thạnh", 604221, 1195708),
    ("26944", "Phường Gia Định", 603642, 1194497),
    ("26956", "Phường Thạnh Mỹ Tây", 605617, 1194290),
    ("26968", "Phường Tân Sơn Nhất", 599141, 1193925),
    ("26977", "Phường Tân Sơn Hoà", 599988, 1195155),
    ("26983", "Phường Bảy Hiền", 598068, 1193617),
    ("26995", "Phường Tân Hoà", 598745, 1192367),
    ("27004", "Phường Tân Bình", 597367, 1194548),
    ("27007", "Phường Tân Sơn", 598302, 1196786),
    ("27031", "Phường Tân Phú", 596924, 1191882),
    ("27043", "Phường Đức Nhuận", 601174, 1195100),
    ("27058", "Phường Cầu Kiệu", 602094, 1194344),
    ("27073", "Phường Phú Nhuận", 600738, 1193843),
    ("27094", "Phường An Khánh", 606997, 1193064),
    ("27097", "Phường Bình Trưng", 610675, 1193765),
    ("27112", "Phường Cát Lái", 611644, 1190475),
    ("27139", "Phường Xuân Hoà", 602390, 1192689),
    ("27142", "Phường Nhiêu Lộc", 601078, 1192889),
    ("27154", "Phường Bàn Cờ", 601731, 1191269),
    ("27163", "Phường Hoà Hưng", 600374, 1192017),
    ("27169", "Phường Diên Hồng", 599584, 1191042),
    ("27190", "Phường Vườn Lài", 600841, 1190800),
    ("27211", "Phường Hoà Bình", 597714, 1191182),
    ("27226", "Phường Phú Thọ", 598710, 1190886),
    ("27232", "Phường Bình Thới", 597381, 1190344),
    ("27238", "Phường Minh Phụng", 598122, 1189795),
    ("27259", "Phường Xóm Chiếu", 605008, 1190075),
    ("27265", "Phường Khánh Hội", 604143, 1189984),
    ("27286", "Phường Vĩnh Hội", 603308, 1189550),
    ("27301", "Phường Chợ Quán", 601596, 1189774),
    ("27316", "Phường An Đông", 600602, 1189482),
    ("27343", "Phường Chợ Lớn", 599229, 1189311),
    ("27349", "Phường Phú Lâm", 596096, 1189264),
    ("27364", "Phường Bình Phú", 595923, 1187708),
    ("27367", "Phường Bình Tây", 597699, 1189030),
    ("27373", "Phường Bình Tiên", 597470, 1188116),
    ("27418", "Phường Chánh Hưng", 601197, 1188232),
    ("27424", "Phường Bình Đông", 596482, 1185246),
    ("27427", "Phường Phú Định", 596320, 1186319),
    ("27475", "Phường Tân Hưng", 604226, 1187550),
    ("27478", "Phường Tân Thuận", 607513, 1189568),
    ("27484", "Phường Phú Thuận", 608823, 1186462),
    ("27487", "Phường Tân Mỹ", 606725, 1185694),
    ("27619", "Xã Bình Hưng", 599298, 1184164),
    ("27655", "Xã Nhà Bè", 606096, 1182795),
)
_WARD_CODES = np.array([w[0] for w in _WARDS], dtype=object)
_WARD_NAMES = np.array([_nfc(w[1]) for w in _WARDS], dtype=object)
_WARD_XY = np.array([(w[2], w[3]) for w in _WARDS], dtype=float)

# --- vocabularies ------------------------------------------------------------------------------
# Land-use codes (Circular 25/2014/TT-BTNMT, kept by Circular 08/2024/TT-BTNMT).
_LAND_USES = np.array(["ODT", "CLN", "TMD", "DGD", "DYT", "DGT", "SON", "DKV", "TON"], dtype=object)
# Land-use weights of a parcel by the function of the planning lot it lies in.
_LOT_FUNCTIONS = ("ODT", "HH", "CX", "GD", "YT")
_LAND_USE_WEIGHTS = np.array([
    #  ODT   CLN   TMD   DGD   DYT   DGT   SON   DKV   TON
    [0.80, 0.03, 0.07, 0.015, 0.01, 0.025, 0.01, 0.02, 0.02],  # ODT lot (and large files)
    [0.50, 0.00, 0.45, 0.00, 0.00, 0.02, 0.00, 0.03, 0.00],    # HH: mixed use
    [0.20, 0.10, 0.00, 0.00, 0.00, 0.02, 0.03, 0.65, 0.00],    # CX: green
    [0.15, 0.00, 0.00, 0.85, 0.00, 0.00, 0.00, 0.00, 0.00],    # GD: education
    [0.15, 0.00, 0.00, 0.00, 0.85, 0.00, 0.00, 0.00, 0.00],    # YT: health
])
_LAND_USE_CUM = np.cumsum(_LAND_USE_WEIGHTS / _LAND_USE_WEIGHTS.sum(1, keepdims=True), axis=1)

_FAMILY = [_nfc(s) for s in (
    "Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Phan", "Võ", "Vũ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý", "Trương", "Đinh", "Lâm", "Mai", "Tô", "Châu")]
_FAMILY_CUM = np.cumsum(np.array([
    38, 11, 9.5, 7, 4, 3, 4.5, 4, 2, 2, 2, 1.5, 1.5, 1.3, 1, 0.8, 1, 0.7, 1, 0.6, 0.5, 0.6]))
_FAMILY_CUM /= _FAMILY_CUM[-1]
_MIDDLE = (
    [_nfc(s) for s in ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Hoàng", "Công", "Ngọc")],
    [_nfc(s) for s in ("Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ", "Bích", "Hồng", "Thị")],
)
_GIVEN = (
    [_nfc(s) for s in ("An", "Bình", "Cường", "Dũng", "Hùng", "Hải", "Khoa", "Long", "Minh", "Nam",
                       "Phúc", "Quang", "Sơn", "Tài", "Thắng", "Trung", "Tuấn", "Việt", "Vinh", "Hiếu")],
    [_nfc(s) for s in ("Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai",
                       "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Vy", "Yến")],
)
_N_MID, _N_GIVEN = len(_MIDDLE[0]), len(_GIVEN[0])
# Every full name, indexed by ((gender * families + family) * middles + middle) * givens + given.
_FULL_NAMES = np.array([f"{f} {m} {g}" for gender in (0, 1) for f in _FAMILY
                        for m in _MIDDLE[gender] for g in _GIVEN[gender]], dtype=object)

_COMPANIES = np.array([_nfc(s) for s in (
    "Công ty TNHH Thương mại Dịch vụ Sài Gòn Mới",
    "Công ty Cổ phần Đầu tư Xây dựng Thủ Thiêm",
    "Công ty TNHH Bất động sản Sông Sài Gòn",
    "Công ty Cổ phần Phát triển Đô thị An Phú",
    "Công ty TNHH Thương mại Bến Nghé",
    "Công ty Cổ phần Dịch vụ Bình An",
    "Công ty TNHH Đầu tư Hoa Sen",
    "Công ty Cổ phần Địa ốc Phương Nam",
)], dtype=object)
_RELIGIOUS = np.array([_nfc(s) for s in (
    "Chùa Phước Khánh", "Chùa Long Hoa", "Tịnh xá Ngọc Thạnh", "Giáo xứ Thủ Thiêm",
)], dtype=object)
_STATE = {"DGD": _nfc("Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh"),
          "DYT": _nfc("Sở Y tế Thành phố Hồ Chí Minh")}

# Street names. The demo uses streets of Thủ Thiêm; large files cycle through big HCMC streets.
_SAMPLE_H_STREETS = [_nfc(s) for s in (
    "Đường Nguyễn Cơ Thạch", "Đường Tố Hữu", "Đường Trần Bạch Đằng", "Đường Song Hành")]
_SAMPLE_SOUTH_STREET = _nfc("Đường Mai Chí Thọ")
_SAMPLE_V_STREETS = [_nfc(s) for s in (
    "Đường Trần Não", "Đường Lương Định Của", "Đường Trần Lựu", "Đường Lê Văn Thịnh")]
_LARGE_H_STREETS = np.array([_nfc(s) for s in (
    "Đường Nguyễn Văn Trỗi", "Đường Điện Biên Phủ", "Đường Võ Thị Sáu", "Đường Nam Kỳ Khởi Nghĩa",
    "Đường Hai Bà Trưng", "Đường Cách Mạng Tháng Tám", "Đường Lê Văn Sỹ", "Đường Phan Đăng Lưu",
    "Đường Nguyễn Thị Minh Khai", "Đường Xô Viết Nghệ Tĩnh", "Đường Nguyễn Hữu Cảnh",
    "Đường Phạm Văn Đồng", "Đường Nguyễn Oanh", "Đường Quang Trung", "Đường Hoàng Văn Thụ",
    "Đường Trường Chinh")], dtype=object)


# --- layout ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    per_sheet: int        # parcels a sheet
    cols: int             # sheets a grid row
    origin: tuple[float, float]  # north-west corner of sheet 0 (EPSG:9210)
    domain: int           # separates the random streams of the demo and of large files

    @property
    def nb(self) -> int:  # street blocks a sheet
        return max(1, round(math.sqrt(self.per_sheet / 20)))

    @property
    def ncol(self) -> int:  # lots a row of a block
        return math.ceil(self.per_sheet / (2 * self.nb))

    @property
    def cmid(self) -> int:  # the lane runs after this many lots
        return self.ncol // 2

    @property
    def width(self) -> float:
        return self.ncol * _LOT_W + _LANE

    @property
    def block_pitch(self) -> float:
        return 2 * _LOT_D + _INNER_STREET

    @property
    def height(self) -> float:
        return self.nb * 2 * _LOT_D + (self.nb - 1) * _INNER_STREET

    @property
    def pitch_x(self) -> float:
        return self.width + _BORDER_STREET

    @property
    def pitch_y(self) -> float:
        return self.height + _BORDER_STREET

    def sheet_nw(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """West x and north y of sheets with grid indices ``g``."""
        g = np.asarray(g)
        return (self.origin[0] + (g % self.cols) * self.pitch_x,
                self.origin[1] - (g // self.cols) * self.pitch_y)

    def border_y(self, row: np.ndarray | int) -> np.ndarray:
        """Centre line of the street north of sheet row ``row`` (``row`` = rows: the south one)."""
        return self.origin[1] - np.asarray(row) * self.pitch_y + _BORDER_STREET / 2

    def border_x(self, col: np.ndarray | int) -> np.ndarray:
        return self.origin[0] + np.asarray(col) * self.pitch_x - _BORDER_STREET / 2

    def inner_y(self, row: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
        """Centre line of inner street ``j`` (1 .. nb-1, between blocks j-1 and j) of sheet row."""
        return (self.origin[1] - np.asarray(row) * self.pitch_y
                - np.asarray(j) * self.block_pitch + _INNER_STREET / 2)

    def lane_x(self, g: np.ndarray | int) -> np.ndarray:
        return self.sheet_nw(g)[0] + self.cmid * _LOT_W + _LANE / 2


def _sample_layout(sheets: int, parcels_per_sheet: int) -> _Layout:
    return _Layout(parcels_per_sheet, math.ceil(math.sqrt(sheets)), _SAMPLE_ORIGIN, domain=0)


def _large_layout(parcels_per_sheet: int) -> _Layout:
    return _Layout(parcels_per_sheet, _LARGE_COLUMNS, _LARGE_ORIGIN, domain=1)


def _sample_border_street(row: int, rows: int) -> str:
    if row == rows:
        return _SAMPLE_SOUTH_STREET
    return _SAMPLE_H_STREETS[row % len(_SAMPLE_H_STREETS)]


# --- parcels -----------------------------------------------------------------------------------
_N_U = 12  # uniforms drawn per parcel


@dataclass
class _Sheets:
    """Parcels of whole sheets before they become a frame, with their place in the layout."""

    g: np.ndarray          # grid index of the sheet of each parcel
    b: np.ndarray          # block
    r: np.ndarray          # row in the block (0: fronts the street north of it)
    c: np.ndarray          # lot in the row, west to east
    number: np.ndarray     # SoThuTuThua
    coords: np.ndarray     # (n, 5, 2) closed rings
    u: np.ndarray          # (n, _N_U) uniforms


def _build_sheets(layout: _Layout, gids: np.ndarray, seed: int) -> tuple[_Sheets, np.ndarray]:
    """Corners and random draws of every parcel of sheets ``gids``; also returns the half index.

    Each sheet draws from its own generator ``default_rng([seed, domain, g])``, so a sheet is the
    same whatever batch it is built in.
    """
    P, nb, ncol, cmid = layout.per_sheet, layout.nb, layout.ncol, layout.cmid
    S = len(gids)
    n_w, n_d, n_j = ncol, nb, nb * 3 * (ncol + 2) * 2
    draws = np.empty((S, n_w + n_d + n_j + P * _N_U))
    for i, g in enumerate(gids):
        draws[i] = np.random.default_rng([seed, layout.domain, int(g)]).random(draws.shape[1])
    w = 4.0 + 4.0 * draws[:, :n_w]                                # frontages 4-8 m
    d0 = 15.0 + 6.0 * draws[:, n_w:n_w + n_d]                     # depth of the north row
    jit = (draws[:, n_w + n_d:n_w + n_d + n_j] * 2 - 1) * _JITTER
    jit = jit.reshape(S, nb, 3, ncol + 2, 2)
    u = draws[:, n_w + n_d + n_j:].reshape(S * P, _N_U)

    # x of lot boundaries from the sheet's west edge; each half of a block keeps its nominal width
    xs = np.zeros((S, ncol + 2))
    if cmid:
        left = w[:, :cmid] * (cmid * _LOT_W / w[:, :cmid].sum(1, keepdims=True))
        xs[:, 1:cmid + 1] = np.cumsum(left, axis=1)
    right = w[:, cmid:] * ((ncol - cmid) * _LOT_W / w[:, cmid:].sum(1, keepdims=True))
    xs[:, cmid + 1] = cmid * _LOT_W + _LANE
    xs[:, cmid + 2:] = xs[:, cmid + 1:cmid + 2] + np.cumsum(right, axis=1)
    # y of the three boundary lines of each block, from the sheet's north edge
    top = -np.arange(nb) * layout.block_pitch
    ys = np.stack([np.broadcast_to(top, (S, nb)), top - d0,
                   np.broadcast_to(top - 2 * _LOT_D, (S, nb))], axis=2)   # (S, nb, 3)
    west, north = layout.sheet_nw(gids)
    X = west[:, None, None, None] + xs[:, None, None, :] + jit[..., 0]
    Y = north[:, None, None, None] + ys[:, :, :, None] + jit[..., 1]

    p = np.arange(P)
    b, r, c = p // (2 * ncol), (p // ncol) % 2, p % ncol
    k = c + (c >= cmid)
    L = np.stack([r + 1, r + 1, r, r], axis=1)          # SW, SE, NE, NW corners: anticlockwise
    K = np.stack([k, k + 1, k + 1, k], axis=1)
    B = np.broadcast_to(b[:, None], L.shape)
    coords = np.empty((S, P, 5, 2))
    coords[:, :, :4, 0] = X[:, B, L, K]
    coords[:, :, :4, 1] = Y[:, B, L, K]
    coords[:, :, 4] = coords[:, :, 0]
    sheets = _Sheets(g=np.repeat(gids, P), b=np.tile(b, S), r=np.tile(r, S), c=np.tile(c, S),
                     number=np.tile(p + 1, S), coords=coords.reshape(S * P, 5, 2), u=u)
    return sheets, (sheets.c >= cmid).astype(np.int64)


def _person_names(u_gender, u_family, u_middle, u_given) -> tuple[np.ndarray, np.ndarray]:
    gender = (u_gender < 0.5).astype(np.int64)  # 1: female
    fam = np.minimum(np.searchsorted(_FAMILY_CUM, u_family), len(_FAMILY) - 1)
    mid = (u_middle * _N_MID).astype(np.int64)
    giv = (u_given * _N_GIVEN).astype(np.int64)
    idx = ((gender * len(_FAMILY) + fam) * _N_MID + mid) * _N_GIVEN + giv
    return _FULL_NAMES[idx], gender


def _id_numbers(gender, u_year, u_serial) -> list[str]:
    """Synthetic 12-digit citizen identity numbers: 079 (HCMC), century/sex digit, year, serial."""
    year = 1945 + (u_year * 60).astype(np.int64)                 # born 1945-2004
    digit = gender + 2 * (year >= 2000)
    value = (79 * 10**9 + digit * 10**8 + (year % 100) * 10**6
             + (u_serial * 10**6).astype(np.int64))
    return [f"{v:012d}" for v in value.tolist()]


def _parcel_attributes(s: _Sheets, lot_fn: np.ndarray, commune: np.ndarray, sheet_no: np.ndarray,
                       ward_name: np.ndarray, street: np.ndarray, house: np.ndarray,
                       area: np.ndarray) -> dict[str, object]:
    """The attribute columns of parcels (``lot_fn``: index in _LOT_FUNCTIONS per parcel)."""
    u = s.u
    n = len(u)
    lu_idx = (u[:, 0:1] > _LAND_USE_CUM[lot_fn]).sum(1)
    lu_idx = np.minimum(lu_idx, len(_LAND_USES) - 1)
    land_use = _LAND_USES[lu_idx]

    # legal area: the surveyed area to 0.1 m2; one in seven records deviates by up to 1.2 %
    dev = np.where(u[:, 1] < 1 / 7, (u[:, 2] * 2 - 1) * 0.012, 0.0)
    legal = np.round(area * (1 + dev), 1)

    # owner type follows the land use
    uo = u[:, 3]
    owner_type = np.full(n, "GDC", dtype=object)
    owner_type[(land_use == "ODT") & (uo < 0.05)] = "TKT"
    owner_type[(land_use == "TMD") & (uo < 0.8)] = "TKT"
    owner_type[np.isin(land_use, ["DGD", "DYT"])] = "TCN"
    owner_type[np.isin(land_use, ["DGD", "DYT"]) & (uo < 0.2)] = "TKT"
    owner_type[np.isin(land_use, ["DGT", "SON", "DKV"])] = "UBS"
    owner_type[land_use == "TON"] = "TTG"

    names, gender = _person_names(u[:, 4], u[:, 5], u[:, 6], u[:, 7])
    person = owner_type == "GDC"
    owner = names.copy()
    pick = (u[:, 8] * len(_COMPANIES)).astype(np.int64)
    tkt = owner_type == "TKT"
    owner[tkt] = _COMPANIES[pick[tkt]]
    ubs = owner_type == "UBS"
    owner[ubs] = np.array([_nfc("Ủy ban nhân dân ") + w for w in ward_name[ubs]], dtype=object)
    for code, agency in _STATE.items():
        owner[(owner_type == "TCN") & (land_use == code)] = agency
    ttg = owner_type == "TTG"
    owner[ttg] = _RELIGIOUS[(u[ttg, 8] * len(_RELIGIOUS)).astype(np.int64)]

    ids = np.array(_id_numbers(gender, u[:, 9], u[:, 10]), dtype=object)
    ids[~person] = None

    address = np.array([f"{h} {st}, {w}" for h, st, w in zip(house.tolist(), street, ward_name)],
                       dtype=object)
    address[np.isin(land_use, ["DGT", "SON"])] = None   # roads and canals have no house number
    return {
        "MaXa": commune,
        "SoHieuToBanDo": sheet_no.astype(np.int32),
        "SoThuTuThua": s.number.astype(np.int32),
        "KyHieuMucDichSuDung": land_use,
        "DienTich": legal,
        "DiaChiThuaDat": address,
        "KyHieuDoiTuong": owner_type,
        "TenChuSuDung": owner,
        "SoGiayTo": ids,
    }


def _streets_and_numbers(layout: _Layout, s: _Sheets,
                         border_name: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Name of the street each parcel fronts, and its house number on that street.

    Row 0 of a block fronts the street north of it (even numbers), row 1 the one south (odd);
    numbers run west to east across the sheets of a grid row.
    """
    nb, ncol = layout.nb, layout.ncol
    R, C = s.g // layout.cols, s.g % layout.cols
    north = s.r == 0
    on_border = np.where(north, s.b == 0, s.b == nb - 1)
    border_row = R + (~north)
    j = np.where(north, s.b, s.b + 1)                     # inner street index (1..nb-1)
    inner_no = R * (nb - 1) + j
    street = np.empty(len(s.g), dtype=object)
    street[on_border] = border_name(border_row[on_border])
    street[~on_border] = np.array([f"Đường Số {k}" for k in inner_no[~on_border].tolist()],
                                  dtype=object)
    pos = C * ncol + s.c
    house = np.where(north, 2 * pos + 2, 2 * pos + 1)
    return street, house


# --- large files -------------------------------------------------------------------------------
def _large_sheet_table(layout: _Layout, nsheets: int) -> tuple[np.ndarray, np.ndarray]:
    """Ward (index in _WARDS) and sheet number of the first ``nsheets`` sheets of a large file.

    A sheet belongs to the ward nearest its centre; sheets are numbered 1, 2, ... in each ward
    in grid order, so (MaXa, SoHieuToBanDo) is unique.
    """
    g = np.arange(nsheets)
    west, north = layout.sheet_nw(g)
    cx, cy = west + layout.width / 2, north - layout.height / 2
    ward = np.empty(nsheets, dtype=np.int64)
    for lo in range(0, nsheets, 100_000):
        hi = min(nsheets, lo + 100_000)
        d = (cx[lo:hi, None] - _WARD_XY[None, :, 0]) ** 2 + (cy[lo:hi, None] - _WARD_XY[None, :, 1]) ** 2
        ward[lo:hi] = d.argmin(1)
    order = np.argsort(ward, kind="stable")
    counts = np.bincount(ward, minlength=len(_WARDS))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    number = np.empty(nsheets, dtype=np.int64)
    number[order] = np.arange(nsheets) - np.repeat(starts, counts) + 1
    return ward, number


def _large_border_name(row: np.ndarray) -> np.ndarray:
    return _LARGE_H_STREETS[np.asarray(row) % len(_LARGE_H_STREETS)]


def iter_parcel_batches(n: int, *, seed: int = 2025, batch_size: int = 50_000,
                        parcels_per_sheet: int = 500) -> Iterator[gpd.GeoDataFrame]:
    """Yield ``n`` synthetic cadastral parcels in batches, with the schema of the demo cadastre.

    Parameters
    ----------
    n : int
        Number of parcels in all.
    seed : int, default 2025
        Seed of the random draws. The parcels depend only on ``seed``, ``n`` and
        ``parcels_per_sheet``, not on ``batch_size``; the first ``m`` parcels of ``n`` are the
        parcels of ``m``.
    batch_size : int, default 50_000
        Rows per yielded frame (the last may be shorter). Memory use is proportional to it.
    parcels_per_sheet : int, default 500
        Parcels on a map sheet. Sheets lie on a grid 48 sheets wide from the north-west of
        Gò Vấp southwards (each about 326 x 248 m at 500 parcels) and belong to the real 2025
        ward nearest their centre; sheet numbers restart at 1 in each ward. Up to about
        1.8 million parcels the grid stays within lon 106.64-106.79, lat 10.70-10.87.

    Yields
    ------
    geopandas.GeoDataFrame
        Columns :data:`CADASTRAL_FIELDS` and ``geometry`` (Polygon, EPSG:9210). All geometries
        are valid; (MaXa, SoHieuToBanDo, SoThuTuThua) is unique over all batches.
    """
    if n < 0 or batch_size < 1 or parcels_per_sheet < 1:
        raise ValueError("n must be >= 0, batch_size and parcels_per_sheet >= 1")
    layout = _large_layout(parcels_per_sheet)
    P = parcels_per_sheet
    ward, sheet_no = _large_sheet_table(layout, -(-n // P))
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        s0, s1 = start // P, -(-stop // P)
        gids = np.arange(s0, s1)
        sheets, half = _build_sheets(layout, gids, seed)
        cut = slice(start - s0 * P, stop - s0 * P)
        for f in ("g", "b", "r", "c", "number", "coords", "u"):
            setattr(sheets, f, getattr(sheets, f)[cut])
        geoms = shapely.polygons(sheets.coords)
        w = ward[sheets.g]
        street, house = _streets_and_numbers(layout, sheets, _large_border_name)
        cols = _parcel_attributes(sheets, np.zeros(len(w), dtype=np.int64), _WARD_CODES[w],
                                  sheet_no[sheets.g], _WARD_NAMES[w], street, house,
                                  shapely.area(geoms))
        yield gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=CRS_CADASTRAL))


class _PinnedDate:
    """Pin GDAL's notion of now, so that GeoPackages written twice are byte-identical."""

    def __init__(self, value: str = "2025-01-01T00:00:00Z"):
        self.value = value

    def __enter__(self):
        self.old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": self.value})
        return self

    def __exit__(self, *exc):
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": self.old})
        return False


def write_parcels(path: Path, n: int, *, seed: int = 2025, driver: str = "GPKG",
                  progress: Callable[[int, int], object] | None = None,
                  batch_size: int = 50_000, parcels_per_sheet: int = 500) -> Path:
    """Stream ``n`` synthetic parcels (:func:`iter_parcel_batches`) into a file, batch by batch.

    Parameters
    ----------
    path : Path
        File to write; replaced if it exists.
    n : int
        Number of parcels.
    seed : int, default 2025
        Seed, as in :func:`iter_parcel_batches`.
    driver : {"GPKG", "FlatGeobuf"}
        OGR driver. The layer is ``thua_dat``; a GeoPackage gets its R-tree spatial index and
        a FlatGeobuf its packed Hilbert R-tree.
    progress : callable, optional
        Called as ``progress(done, n)`` after each batch is written.
    batch_size, parcels_per_sheet : int
        As in :func:`iter_parcel_batches`. Memory use is proportional to ``batch_size``.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    A GeoPackage is written by appending each batch with :func:`pyogrio.write_dataframe`. GDAL
    appends to a FlatGeobuf by rewriting the whole file, which makes batch appends quadratic,
    so a FlatGeobuf is written in one :func:`pyogrio.write_arrow` call that pulls the batches
    from an Arrow stream, one at a time.
    """
    if driver not in ("GPKG", "FlatGeobuf"):
        raise ValueError(f"driver must be 'GPKG' or 'FlatGeobuf', not {driver!r}")
    if n < 1:
        raise ValueError("n must be >= 1")
    path = Path(path)
    if path.exists():
        path.unlink()
    batches = iter_parcel_batches(n, seed=seed, batch_size=batch_size,
                                  parcels_per_sheet=parcels_per_sheet)
    with _PinnedDate():
        if driver == "GPKG":
            done = 0
            for i, batch in enumerate(batches):
                pyogrio.write_dataframe(batch, path, layer=LAYER_PARCELS, driver=driver,
                                        geometry_type="Polygon", append=i > 0, use_arrow=True)
                done += len(batch)
                if progress is not None:
                    progress(done, n)
        else:
            _write_arrow_stream(batches, path, n, driver, progress)
    return path


def _write_arrow_stream(batches: Iterator[gpd.GeoDataFrame], path: Path, n: int, driver: str,
                        progress: Callable[[int, int], object] | None) -> None:
    import pyarrow as pa

    def table(gdf: gpd.GeoDataFrame) -> pa.Table:
        return pa.table(gdf.to_arrow(geometry_encoding="WKB", index=False))

    first = table(next(batches))
    schema = first.schema.remove_metadata()

    def stream() -> Iterator[pa.RecordBatch]:
        done, current = 0, first
        while current is not None:
            yield from current.replace_schema_metadata(None).cast(schema).to_batches()
            done += current.num_rows
            if progress is not None:
                progress(done, n)
            current = next((table(b) for b in batches), None)

    reader = pa.RecordBatchReader.from_batches(schema, stream())
    pyogrio.write_arrow(reader, path, layer=LAYER_PARCELS, driver=driver, geometry_name="geometry",
                        geometry_type="Polygon", crs=CRS_CADASTRAL)


# --- the demo dataset --------------------------------------------------------------------------
_PLAN_NAME = _nfc("Quy hoạch phân khu tỷ lệ 1/2000 Khu dân cư Bắc Mai Chí Thọ, Phường An Khánh")
_PLAN_DECISION = _nfc("2468/QĐ-UBND")
_PLAN_DATE = "2023-05-12"
# MaChucNang -> ChucNang
_PLAN_CLASSES = {
    "ODT": _nfc("Đất ở"), "HH": _nfc("Đất hỗn hợp"), "CX": _nfc("Đất cây xanh"),
    "GD": _nfc("Đất giáo dục"), "YT": _nfc("Đất y tế"), "GT": _nfc("Đất giao thông"),
}

# Points of interest: (amenity, name, beds, land uses of the parcel it may stand on).
_POIS = [
    ("hospital", "Bệnh viện Quận 2", 500, ("DYT",)),
    ("hospital", "Bệnh viện Đa khoa Thủ Thiêm", 220, ("DYT",)),
    ("hospital", "Bệnh viện Nhi Sài Gòn Mới", 150, ("DYT",)),
    ("clinic", "Trạm Y tế Phường An Khánh", None, ("DYT",)),
    ("clinic", "Phòng khám Đa khoa An Khánh", None, ("TMD", "DYT")),
    ("clinic", "Phòng khám Nhi Bình An", None, ("TMD",)),
    ("clinic", "Phòng khám Nha khoa Hoa Sen", None, ("ODT", "TMD")),
    ("school", "Trường Tiểu học An Khánh", None, ("DGD",)),
    ("school", "Trường THCS Thủ Thiêm", None, ("DGD",)),
    ("school", "Trường THPT Thủ Thiêm", None, ("DGD",)),
    ("school", "Trường Tiểu học Lương Định Của", None, ("DGD",)),
    ("kindergarten", "Trường Mầm non Hoa Sen", None, ("DGD", "ODT")),
    ("kindergarten", "Trường Mầm non Sơn Ca", None, ("DGD", "ODT")),
    ("university", "Trường Đại học Sài Gòn Mới", None, ("DGD",)),
    ("marketplace", "Chợ An Khánh", None, ("TMD",)),
]
_POI_BUILDING = {"hospital": "hospital", "school": "school", "kindergarten": "school",
                 "university": "school", "marketplace": "commercial"}
_APARTMENT_NAMES = [_nfc(s) for s in (
    "Chung cư Sông Xanh", "Chung cư An Khánh", "Chung cư Bình Minh", "Chung cư Hoa Sen",
    "Chung cư Sài Gòn Mới", "Chung cư Thủ Thiêm Xanh")]
_COMMERCIAL_NAMES = [_nfc(s) for s in (
    "Tòa nhà Sông Sài Gòn", "Tòa nhà An Phú", "Tòa nhà Bến Nghé", "Trung tâm Thương mại Thủ Thiêm")]


def _sample_parcels(layout: _Layout, sheets: int, seed: int, lot_fn: np.ndarray
                    ) -> tuple[gpd.GeoDataFrame, _Sheets, np.ndarray]:
    """The demo cadastre (valid geometries), its layout records and each parcel's lot index."""
    gids = np.arange(sheets)
    s, half = _build_sheets(layout, gids, seed)
    # the parcels the update edition splits and re-zones are house lots of households
    for number in (UPDATE_SPLIT_PARCEL, UPDATE_LAND_USE_PARCEL):
        s.u[(s.g == UPDATE_SHEET - 1) & (s.number == number), 0] = 0.0   # ODT
        s.u[(s.g == UPDATE_SHEET - 1) & (s.number == number), 3] = 0.5   # GDC
    lot = (s.g * layout.nb + s.b) * 2 + half                      # index of its planning lot
    rows = -(-sheets // layout.cols)
    names = np.array([_sample_border_street(r, rows) for r in range(rows + 1)], dtype=object)
    street, house = _streets_and_numbers(layout, s, lambda r: names[r])
    geoms = shapely.polygons(s.coords)
    n = len(geoms)
    cols = _parcel_attributes(s, lot_fn[lot], np.full(n, SAMPLE_COMMUNE, dtype=object),
                              s.g + 1, np.full(n, SAMPLE_COMMUNE_NAME, dtype=object),
                              street, house, shapely.area(geoms))
    gdf = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=CRS_CADASTRAL))
    return gdf, s, lot


def _assign_lot_functions(n_lots: int, rng: np.random.Generator) -> np.ndarray:
    """Function (index in _LOT_FUNCTIONS) of each block-half lot of the plan: mostly housing."""
    fn = np.zeros(n_lots, dtype=np.int64)
    order = rng.permutation(n_lots)
    wanted = [(3, max(1, round(n_lots / 12))), (4, max(1, round(n_lots / 24))),
              (2, max(1, round(n_lots / 10))), (1, max(1, round(n_lots / 6)))]
    i = 0
    for code, count in wanted:
        take = order[i:min(i + count, n_lots - 1)]
        fn[take] = code
        i += len(take)
    return fn


def _planning(layout: _Layout, sheets: int, lot_fn: np.ndarray, rng: np.random.Generator
              ) -> gpd.GeoDataFrame:
    """Zoning lots: each half block, and the corridors of the streets between sheets."""
    nb, cmid = layout.nb, layout.cmid
    rows, cols = -(-sheets // layout.cols), layout.cols
    geoms, fns, codes = [], [], []
    counters: dict[str, int] = {}
    for g in range(sheets):
        west, north = (float(v) for v in layout.sheet_nw(g))
        letter = chr(ord("A") + g // cols)
        for b in range(nb):
            top = north - b * layout.block_pitch
            for h in range(2):
                x0 = west if h == 0 else west + cmid * _LOT_W + _LANE
                x1 = west + cmid * _LOT_W if h == 0 else west + layout.width
                geoms.append(shapely.box(x0, top - 2 * _LOT_D, x1, top))
                fns.append(_LOT_FUNCTIONS[lot_fn[(g * nb + b) * 2 + h]])
                counters[letter] = counters.get(letter, 0) + 1
                codes.append(f"{letter}{counters[letter]}")
    # street corridors: the east-west ones whole, the north-south ones between them
    xw, xe = float(layout.border_x(0)), float(layout.border_x(cols))
    half = _BORDER_STREET / 2
    gt = []
    for r in range(rows + 1):
        y = float(layout.border_y(r))
        gt.append(shapely.box(xw - half, y - half, xe + half, y + half))
    for c in range(cols + 1):
        x = float(layout.border_x(c))
        for r in range(rows):
            gt.append(shapely.box(x - half, float(layout.border_y(r + 1)) + half,
                                  x + half, float(layout.border_y(r)) - half))
    for i, geom in enumerate(gt, 1):
        geoms.append(geom)
        fns.append("GT")
        codes.append(f"GT{i}")

    n = len(geoms)
    storeys = np.zeros(n, dtype=np.int32)
    height = np.zeros(n)
    far = np.zeros(n)
    cover = np.zeros(n)
    for i, fn in enumerate(fns):
        if fn == "ODT":
            st, cv = int(rng.choice([4, 5, 6])), float(rng.choice([70, 75, 80, 85]))
            storeys[i], cover[i], height[i] = st, cv, st * 3.6 + 4.0
            far[i] = round(st * cv / 100, 1)
        elif fn == "HH":
            st, cv = int(rng.choice([15, 20, 25, 30])), float(rng.choice([40, 50, 60]))
            storeys[i], cover[i], height[i] = st, cv, st * 3.6 + 6.0
            far[i] = round(min(13.0, st * cv / 100 * 0.7), 1)
        elif fn == "CX":
            storeys[i], cover[i], height[i], far[i] = 1, 5.0, 6.0, 0.05
        elif fn == "GD":
            st = int(rng.choice([4, 5]))
            storeys[i], cover[i], height[i], far[i] = st, 40.0, st * 3.9 + 3.0, round(st * 0.4, 1)
        elif fn == "YT":
            st = int(rng.choice([7, 9]))
            storeys[i], cover[i], height[i], far[i] = st, 40.0, st * 3.9 + 4.0, round(st * 0.4, 1)
    geoms_arr = np.array(geoms, dtype=object)
    return gpd.GeoDataFrame({
        "TenDoAn": [_PLAN_NAME] * n,
        "SoQuyetDinh": [_PLAN_DECISION] * n,
        "NgayPheDuyet": [_PLAN_DATE] * n,
        "KyHieuLo": codes,
        "ChucNang": [_PLAN_CLASSES[f] for f in fns],
        "MaChucNang": fns,
        "TangCaoToiDa": storeys,
        "ChieuCaoToiDa": np.round(height, 1),
        "HeSoSDD": far,
        "MatDoXD": cover,
        "DienTich": np.round(shapely.area(geoms_arr), 1),
    }, geometry=gpd.GeoSeries(geoms_arr, crs=CRS_CADASTRAL))


def _quad_point(ring: np.ndarray, r: np.ndarray, uu: np.ndarray, vv: np.ndarray) -> np.ndarray:
    """Bilinear point of parcel quads: uu across the frontage, vv from the front to the back."""
    sw, se, ne, nw = ring[:, 0], ring[:, 1], ring[:, 2], ring[:, 3]
    front_row0 = (r == 0)[:, None]
    f0, f1 = np.where(front_row0, nw, sw), np.where(front_row0, ne, se)
    b0, b1 = np.where(front_row0, sw, nw), np.where(front_row0, se, ne)
    uu, vv = uu[:, None], vv[:, None]
    return (1 - vv) * ((1 - uu) * f0 + uu * f1) + vv * ((1 - uu) * b0 + uu * b1)


def _buildings(parcels: gpd.GeoDataFrame, s: _Sheets, lot_fn_of_parcel: np.ndarray,
               eligible: np.ndarray, rng: np.random.Generator) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Footprints inside half of the parcels; returns them and the parcel index of each."""
    idx = np.flatnonzero(eligible)
    count = min(len(idx), round(len(parcels) / 2))
    chosen = np.sort(rng.choice(idx, size=count, replace=False))
    n = len(chosen)
    ring = s.coords[chosen]
    u0, u1 = rng.uniform(0.03, 0.08, n), 1 - rng.uniform(0.03, 0.08, n)
    v0, v1 = rng.uniform(0.04, 0.15, n), rng.uniform(0.6, 0.9, n)
    r = s.r[chosen]
    corners = [_quad_point(ring, r, a, b) for a, b in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))]
    coords = np.stack(corners + [corners[0]], axis=1)
    geoms = shapely.polygons(coords)

    land_use = parcels["KyHieuMucDichSuDung"].to_numpy(dtype=object)[chosen]
    kind = np.full(n, "house", dtype=object)
    in_hh = lot_fn_of_parcel[chosen] == _LOT_FUNCTIONS.index("HH")
    kind[(land_use == "ODT") & in_hh & (rng.random(n) < 0.4)] = "apartments"
    kind[land_use == "TMD"] = "commercial"
    kind[land_use == "DGD"] = "school"
    kind[land_use == "DYT"] = "hospital"
    levels = np.where(kind == "house", rng.choice([1, 2, 3, 4, 5], n, p=[.1, .25, .35, .2, .1]), 0)
    levels = np.where(kind == "apartments", rng.integers(8, 26, n), levels)
    levels = np.where(kind == "commercial", rng.integers(2, 13, n), levels)
    levels = np.where(kind == "school", rng.integers(2, 6, n), levels)
    levels = np.where(kind == "hospital", rng.integers(3, 10, n), levels)
    storey = np.select([kind == "apartments", kind == "commercial"], [3.2, 4.0], 3.5)
    height = np.round(levels * storey + rng.uniform(0.5, 2.5, n), 1)
    missing = rng.random(n) < 0.35
    name = np.full(n, None, dtype=object)
    pick = rng.random(n)
    apt = np.flatnonzero((kind == "apartments") & (pick < 0.6))
    name[apt] = [_APARTMENT_NAMES[i % len(_APARTMENT_NAMES)] for i in range(len(apt))]
    com = np.flatnonzero((kind == "commercial") & (pick < 0.2))
    name[com] = [_COMMERCIAL_NAMES[i % len(_COMMERCIAL_NAMES)] for i in range(len(com))]
    gdf = gpd.GeoDataFrame({
        "osm_id": [f"way/{1_000_001 + i}" for i in range(n)],
        "building": kind,
        "building:levels": pd.array(levels, dtype="Int64"),
        "height": pd.array(np.where(missing, np.nan, height), dtype="Float64"),
        "name": name,
    }, geometry=gpd.GeoSeries(geoms, crs=CRS_CADASTRAL))
    return gdf, chosen


def _pois(parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, building_parcel: np.ndarray,
          valid: np.ndarray, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Points of interest on parcels of a fitting land use; names the buildings they stand in."""
    land_use = parcels["KyHieuMucDichSuDung"].to_numpy(dtype=object)
    has_building = np.zeros(len(parcels), dtype=bool)
    has_building[building_parcel] = True
    where_building = {int(p): i for i, p in enumerate(building_parcel)}
    used: set[int] = set()
    rows, points = [], []
    for i, (amenity, name, beds, uses) in enumerate(_POIS):
        name = _nfc(name)
        ok = np.isin(land_use, uses) & valid
        cand = [p for p in np.flatnonzero(ok & has_building) if p not in used]
        if not cand:
            cand = [p for p in np.flatnonzero(ok) if p not in used]
        if not cand:  # a tiny sample without such land use: any valid parcel
            cand = [p for p in np.flatnonzero(valid) if p not in used]
        p = int(cand[int(rng.integers(len(cand)))])
        used.add(p)
        b = where_building.get(p)
        if b is not None:
            points.append(shapely.centroid(buildings.geometry.iloc[b]))
            if amenity in _POI_BUILDING:
                buildings.iloc[b, buildings.columns.get_loc("building")] = _POI_BUILDING[amenity]
                buildings.iloc[b, buildings.columns.get_loc("name")] = name
        else:
            points.append(shapely.point_on_surface(parcels.geometry.iloc[p]))
        address = parcels["DiaChiThuaDat"].iloc[p]
        if not isinstance(address, str):
            address = SAMPLE_COMMUNE_NAME
        rows.append({"osm_id": f"node/{3_000_001 + i}", "amenity": amenity, "name": name,
                     "beds": beds, "addr:full": f"{address}, Thành phố Hồ Chí Minh"})
    gdf = gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(points, crs=CRS_CADASTRAL))
    gdf["beds"] = pd.array(gdf["beds"].tolist(), dtype="Int64")
    return gdf


def _roads(layout: _Layout, sheets: int) -> gpd.GeoDataFrame:
    """Street centre lines, split at every junction so that they form a noded, connected graph."""
    cols, nb = layout.cols, layout.nb
    rows = -(-sheets // cols)
    xb = [float(layout.border_x(c)) for c in range(cols + 1)]
    yb = [float(layout.border_y(r)) for r in range(rows + 1)]
    yi = {(r, j): float(layout.inner_y(r, j)) for r in range(rows) for j in range(1, nb)}
    lanes_x = {g: float(layout.lane_x(g)) for g in range(sheets)}

    def lanes_in_row(r: int) -> list[float]:
        return [x for g, x in lanes_x.items() if g // cols == r]

    records: list[tuple[list[tuple[float, float]], dict]] = []

    def add(points: list[tuple[float, float]], attrs: dict) -> None:
        pts = sorted(set(points))
        for a, b in zip(pts, pts[1:]):
            records.append(([a, b], attrs))

    for r in range(rows + 1):
        name = _sample_border_street(r, rows)
        if r == rows:
            attrs = dict(highway="primary", name=name, lanes=6, width=30.0, oneway="no", maxspeed=60)
        elif r % 2:
            attrs = dict(highway="secondary", name=name, lanes=4, width=15.0, oneway="no", maxspeed=50)
        else:
            attrs = dict(highway="tertiary", name=name, lanes=2, width=10.0, oneway="no", maxspeed=40)
        xs = set(xb) | set(lanes_in_row(r - 1) if r > 0 else []) | set(lanes_in_row(r) if r < rows else [])
        add([(x, yb[r]) for x in xs], attrs)
    for (r, j), y in yi.items():
        k = r * (nb - 1) + j
        attrs = dict(highway="residential", name=f"Đường Số {k}", lanes=None, width=7.0,
                     oneway="yes" if k % 3 == 0 else "no", maxspeed=None)
        add([(x, y) for x in set(xb) | set(lanes_in_row(r))], attrs)
    all_y = set(yb) | set(yi.values())
    for c, x in enumerate(xb):
        name = _SAMPLE_V_STREETS[c % len(_SAMPLE_V_STREETS)]
        if c == 0:
            attrs = dict(highway="secondary", name=name, lanes=4, width=16.0, oneway="no", maxspeed=50)
        else:
            attrs = dict(highway="tertiary", name=name, lanes=2, width=10.0, oneway="no", maxspeed=None)
        add([(x, y) for y in all_y], attrs)
    for g, x in lanes_x.items():
        r, c = divmod(g, cols)
        number = 2 * (c * layout.ncol + layout.cmid) + 2
        attrs = dict(highway="service", name=f"Hẻm {number} {_sample_border_street(r, rows)}",
                     lanes=None, width=4.0, oneway="no", maxspeed=None)
        ys = [yb[r], yb[r + 1]] + [yi[(r, j)] for j in range(1, nb)]
        add([(x, y) for y in ys], attrs)

    n = len(records)
    geoms = shapely.linestrings(np.array([pts for pts, _ in records]))
    get = lambda key: [a[key] for _, a in records]  # noqa: E731
    return gpd.GeoDataFrame({
        "osm_id": [f"way/{2_000_001 + i}" for i in range(n)],
        "highway": get("highway"),
        "name": [_nfc(v) for v in get("name")],
        "lanes": pd.array(get("lanes"), dtype="Int64"),
        "width": pd.array(get("width"), dtype="Float64"),
        "oneway": get("oneway"),
        "maxspeed": pd.array(get("maxspeed"), dtype="Int64"),
    }, geometry=gpd.GeoSeries(geoms, crs=CRS_CADASTRAL))


def _bow_tie(ring: np.ndarray) -> np.ndarray:
    """The ring with its two northern corners swapped: a self-intersecting quadrilateral."""
    out = ring.copy()
    out[[2, 3]] = ring[[3, 2]]
    return out


def _split_quad(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a SW, SE, NE, NW quad across its frontage into a western and an eastern half."""
    sw, se, ne, nw = ring[:4]
    ms, mn = (sw + se) / 2, (nw + ne) / 2
    west = np.array([sw, ms, mn, nw, sw])
    east = np.array([ms, se, ne, mn, ms])
    return west, east


def _update_edition(parcels: gpd.GeoDataFrame, s: _Sheets, per_sheet: int,
                    rng: np.random.Generator) -> gpd.GeoDataFrame:
    """A later edition of sheet UPDATE_SHEET: one parcel split in two, one with a new land use."""
    on_sheet = np.flatnonzero(parcels["SoHieuToBanDo"].to_numpy() == UPDATE_SHEET)
    sheet = parcels.iloc[on_sheet].copy()
    sheet["TachTuThua"] = pd.Series([None] * len(sheet), index=sheet.index, dtype=object)
    numbers = sheet["SoThuTuThua"].to_numpy()
    changed = sheet.index[numbers == UPDATE_LAND_USE_PARCEL][0]
    old = sheet.at[changed, "KyHieuMucDichSuDung"]
    sheet.at[changed, "KyHieuMucDichSuDung"] = "TMD" if old != "TMD" else "ODT"

    parent_pos = int(on_sheet[numbers == UPDATE_SPLIT_PARCEL][0])
    parent = parcels.iloc[parent_pos]
    west, east = _split_quad(s.coords[parent_pos])
    children = []
    for k, (ring, number) in enumerate(((west, per_sheet + 1), (east, per_sheet + 2))):
        child = parent.to_dict()
        geom = shapely.polygons(ring)
        child.update(geometry=geom, SoThuTuThua=number, DienTich=round(float(geom.area), 1),
                     TachTuThua=f"{UPDATE_SHEET}/{UPDATE_SPLIT_PARCEL}")
        if k == 1:  # the eastern half was sold: a new owner and house number
            names, gender = _person_names(*rng.random((4, 1)))
            child.update(KyHieuDoiTuong="GDC", TenChuSuDung=names[0],
                         SoGiayTo=_id_numbers(gender, *rng.random((2, 1)))[0])
            if isinstance(child["DiaChiThuaDat"], str):
                no, rest = child["DiaChiThuaDat"].split(" ", 1)
                child["DiaChiThuaDat"] = f"{no}A {rest}"
        children.append(child)
    sheet = sheet[sheet["SoThuTuThua"] != UPDATE_SPLIT_PARCEL]
    kids = gpd.GeoDataFrame(children, geometry="geometry", crs=CRS_CADASTRAL)
    out = pd.concat([sheet, kids[sheet.columns]], ignore_index=True)
    out["SoHieuToBanDo"] = out["SoHieuToBanDo"].astype(np.int32)
    out["SoThuTuThua"] = out["SoThuTuThua"].astype(np.int32)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=CRS_CADASTRAL)


def _to_nfc(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    for col in gdf.columns:
        if col != gdf.geometry.name and not pd.api.types.is_numeric_dtype(gdf[col]):
            gdf[col] = gdf[col].map(lambda v: _nfc(v) if isinstance(v, str) else v)
    return gdf


def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    if path.exists():
        path.unlink()
    with _PinnedDate():
        pyogrio.write_dataframe(_to_nfc(gdf), path, layer=layer, driver="GPKG",
                                geometry_type="Polygon")


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(_to_nfc(gdf.to_crs(CRS_WGS84)), path, layer=layer, driver="GeoJSON",
                            layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": 7,
                                           "WRITE_NAME": "NO"})


# --- administrative units, population and imagery ----------------------------------------------
#: Layer of ``admin.gpkg``: administrative units (đơn vị hành chính) of both systems.
LAYER_ADMIN = "dvhc"
#: Fields of the administrative layer, in order: the target names of ``gis ingest admin``, so the
#: job takes the file as it is (no mapping preset needed; ``source`` says it is synthetic).
ADMIN_FIELDS = (
    "level", "code", "name", "name_en", "unit_type", "parent_code", "population",
    "population_year", "area_km2", "valid_from", "valid_to", "source", "licence",
)
#: Start of the 2025 wards (the HCMC reorganisation); the 2019 units end on that day.
ADMIN_2025_FROM = "2025-07-01"
ADMIN_2019_FROM = "2019-04-01"  # the 2019 census
#: The 2019 district of the demo: (code, name, English name).
SAMPLE_DISTRICT = ("769", _nfc("Quận 2"), "District 2")
#: The 2025 wards of the demo: (code, name, English name). The cadastre lies in the first.
SAMPLE_WARDS_2025 = (
    (SAMPLE_COMMUNE, _nfc("An Khánh"), "An Khanh"),
    ("27097", _nfc("Bình Trưng"), "Binh Trung"),
    ("27112", _nfc("Cát Lái"), "Cat Lai"),
)
#: The 2019 wards of the demo: (code, name, English name, 2025 ward it went to). As in the
#: 2025 reorganisation, SPLIT_WARD_2019 (An Phú) went in part to An Khánh, in part to Bình Trưng.
SAMPLE_WARDS_2019 = (
    ("27088", _nfc("Thảo Điền"), "Thao Dien", SAMPLE_COMMUNE),
    ("27106", _nfc("An Khánh"), "An Khanh", SAMPLE_COMMUNE),
    ("27118", _nfc("Thủ Thiêm"), "Thu Thiem", SAMPLE_COMMUNE),
    ("27115", _nfc("An Lợi Đông"), "An Loi Dong", SAMPLE_COMMUNE),
    ("27091", _nfc("An Phú"), "An Phu", None),
    ("27100", _nfc("Bình Trưng Tây"), "Binh Trung Tay", "27097"),
    ("27097", _nfc("Bình Trưng Đông"), "Binh Trung Dong", "27097"),
    ("27112", _nfc("Thạnh Mỹ Lợi"), "Thanh My Loi", "27112"),
    ("27109", _nfc("Cát Lái"), "Cat Lai", "27112"),
)
SPLIT_WARD_2019 = "27091"
_SPLIT_WEST, _SPLIT_EAST = SAMPLE_COMMUNE, "27097"
# Where each 2019 ward's Voronoi seed lies in the demo area (fractions of its width and height),
# and where the cadastre's centre lies: at the corner of three 2019 wards of An Khánh.
_WARD_SEEDS = ((0.30, 0.90), (0.46, 0.62), (0.12, 0.52), (0.26, 0.20), (0.64, 0.86),
               (0.70, 0.50), (0.91, 0.68), (0.58, 0.14), (0.88, 0.22))
_ADMIN_SIZE = (3000.0, 2400.0)   # metres, for the default cadastre (grows with a larger one)
_ADMIN_SAMPLE_AT = (0.32, 0.46)
_WARP_M, _WARP_WAVE_M = 45.0, 900.0   # ward boundaries: a smooth warp of straight Voronoi edges
_POP_CELL_DEG = 1 / 1200                # 3 arc-seconds (about 92 m), the WorldPop 100 m grid
_POP_NODATA = -99999.0
_POP_YEAR = "2020"
#: The sample's Sentinel-2-like scenes: pixel size (m) and growth patches between the dates.
_S2_RESOLUTION, _S2_GROWTH = 20.0, 8
_S2_CORE_OFFSET_KM = (-5.0, -0.45)   # urban core of the synthetic landscape, from the area's centre


def _admin_frame(extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The demo area (EPSG:9210): ``_ADMIN_SIZE`` around the cadastre, larger for a large one."""
    x0, y0, x1, y1 = extent
    scale = max(1.0, (x1 - x0) / 400.0, (y1 - y0) / 340.0)
    w, h = _ADMIN_SIZE[0] * scale, _ADMIN_SIZE[1] * scale
    fx = (x0 + x1) / 2 - _ADMIN_SAMPLE_AT[0] * w
    fy = (y0 + y1) / 2 - _ADMIN_SAMPLE_AT[1] * h
    return fx, fy, fx + w, fy + h


def _admin_faces(frame: tuple[float, float, float, float], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces that tile the demo area: the 2019 wards, with the split ward cut in two.

    The 2019 wards are the Voronoi cells of ``_WARD_SEEDS``; the split ward is cut by a north-south
    line through its seed. The noded edges are densified and polygonized, then every vertex goes
    through the same smooth warp (a homeomorphism: small and gentle), so that boundaries meander
    while neighbouring faces still share every vertex: no gap, no overlap.

    Returns
    -------
    faces : ndarray of Polygon (EPSG:9210)
    ward_2019 : ndarray of int, index in SAMPLE_WARDS_2019 of each face
    ward_2025 : ndarray of str, 2025 ward code of each face
    """
    fx0, fy0, fx1, fy1 = frame
    w, h = fx1 - fx0, fy1 - fy0
    box = shapely.box(*frame)
    seeds = shapely.points([(fx0 + u * w, fy0 + v * h) for u, v in _WARD_SEEDS])
    cells = np.array([shapely.intersection(c, box) for c in shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True))])
    split = next(k for k, wd in enumerate(SAMPLE_WARDS_2019) if wd[0] == SPLIT_WARD_2019)
    xs = fx0 + _WARD_SEEDS[split][0] * w
    cut = shapely.get_coordinates(shapely.intersection(
        shapely.linestrings([(xs, fy0 - 1), (xs, fy1 + 1)]), cells[split]))
    a, b = cut[0], cut[-1]
    d = (b - a) / np.linalg.norm(b - a)
    lines = shapely.get_parts(shapely.union_all(
        [*shapely.boundary(cells), shapely.linestrings([a - 2 * d, b + 2 * d])]))
    # drop the cut's two overshoots (edges with a free end), then merge edges between nodes
    ends = np.round(np.concatenate([shapely.get_coordinates(shapely.get_point(lines, 0)),
                                    shapely.get_coordinates(shapely.get_point(lines, -1))]), 6)
    _, inverse, counts = np.unique(ends, axis=0, return_inverse=True, return_counts=True)
    degree = counts[inverse.ravel()].reshape(2, -1)
    edges = shapely.line_merge(shapely.multilinestrings(lines[(degree > 1).all(axis=0)]))
    dense = shapely.get_parts(shapely.segmentize(edges, 50.0))
    faces = shapely.get_parts(shapely.polygonize(dense))
    inside = shapely.point_on_surface(faces)
    ward_2019 = np.array([int(np.flatnonzero(shapely.contains(cells, p))[0]) for p in inside])
    ward_2025 = np.array([SAMPLE_WARDS_2019[k][3] or (_SPLIT_WEST if p.x < xs else _SPLIT_EAST)
                          for k, p in zip(ward_2019, inside)], dtype=object)

    ph = rng.random(4) * 2 * np.pi
    lam = _WARP_WAVE_M * max(w / _ADMIN_SIZE[0], 1.0)

    def warp(xy: np.ndarray) -> np.ndarray:
        x, y = (xy[:, 0] - fx0) * 2 * np.pi / lam, (xy[:, 1] - fy0) * 2 * np.pi / lam
        return np.column_stack([
            xy[:, 0] + _WARP_M * np.sin(x + ph[0]) * np.cos(y / 1.3 + ph[1]),
            xy[:, 1] + _WARP_M * np.sin(y + ph[2]) * np.cos(x / 1.3 + ph[3])])

    order = np.lexsort((ward_2025.astype(str), ward_2019))
    return shapely.transform(faces[order], warp), ward_2019[order], ward_2025[order]


def _lonlat_cell_grid(bounds: tuple[float, float, float, float]) -> tuple[int, int, float, float]:
    """Rows, columns and north-west corner of the 3-arc-second grid that covers ``bounds``."""
    c = _POP_CELL_DEG
    west, north = math.floor(bounds[0] / c - 2) * c, math.ceil(bounds[3] / c + 2) * c
    cols = math.ceil(bounds[2] / c + 2) - math.floor(bounds[0] / c - 2)
    rows = math.ceil(bounds[3] / c + 2) - math.floor(bounds[1] / c - 2)
    return rows, cols, west, north


def _population_grid(bounds: tuple[float, float, float, float], s2: dict, seed: int
                     ) -> tuple[np.ndarray, tuple[float, ...]]:
    """People per 3-arc-second cell (float32, WorldPop-like) over ``bounds`` (lon/lat).

    The density follows the built-up share of the first Sentinel-2-like scene's land cover
    (the same landscape), with smooth noise: about 3,000 people/km2 on vegetation, up to
    about 40,000 in fully built-up cells, none on water.
    """
    from pyproj import Transformer

    from gis.raster.synthetic import landcover

    rows, cols, west, north = _lonlat_cell_grid(bounds)
    c, k = _POP_CELL_DEG, 4   # k x k sub-samples per cell
    classes, _, (res, _, x0, _, _, y1) = landcover(seed, **s2)
    sub = (np.arange(k) + 0.5) / k
    lon = west + (np.arange(cols)[:, None] + sub[None, :]).ravel() * c
    lat = north - (np.arange(rows)[:, None] + sub[None, :]).ravel() * c
    LON, LAT = np.meshgrid(lon, lat)
    ux, uy = Transformer.from_crs(CRS_WGS84, "EPSG:32648", always_xy=True).transform(LON, LAT)
    i = np.clip(((y1 - uy) / res).astype(int), 0, classes.shape[0] - 1)
    j = np.clip(((ux - x0) / res).astype(int), 0, classes.shape[1] - 1)
    cls = classes[i, j].reshape(rows, k, cols, k)
    valid = (cls > 0).sum(axis=(1, 3))
    built = np.where(valid > 0, (cls == 4).sum(axis=(1, 3)) / np.maximum(valid, 1), 0.5)
    water = np.where(valid > 0, (cls == 1).sum(axis=(1, 3)) / np.maximum(valid, 1), 0.0)
    rng = np.random.default_rng([seed, 7])
    yy, xx = np.mgrid[0:rows, 0:cols] / 6.0
    ph = rng.random(4) * 2 * np.pi
    noise = 0.5 + 0.25 * (np.sin(xx + ph[0]) * np.cos(yy / 1.4 + ph[1])
                          + np.sin(yy + ph[2]) * np.cos(xx / 1.7 + ph[3]))
    density = (3000.0 + 36000.0 * built ** 1.5) * (0.7 + 0.6 * noise) * (1.0 - water)
    lat_c = north - (np.arange(rows) + 0.5) * c
    km2 = (c * 111.32) * (c * 111.32 * np.cos(np.radians(lat_c)))[:, None]
    people = np.round(density * km2, 3).astype(np.float32)
    return people, (c, 0.0, west, 0.0, -c, north)


def _write_population(path: Path, people: np.ndarray, transform: tuple[float, ...]) -> None:
    import rasterio
    from affine import Affine

    tmp = path.with_name(path.name + ".part")
    rows, cols = people.shape
    with rasterio.open(tmp, "w", driver="GTiff", width=cols, height=rows, count=1,
                       dtype="float32", crs=CRS_WGS84, transform=Affine(*transform),
                       nodata=_POP_NODATA, compress="deflate", predictor=3) as dst:
        dst.write(people, 1)
        dst.set_band_description(1, "population")
        dst.update_tags(DATETIME=_POP_YEAR, SOURCE="synthetic (gis.sample)",
                        UNIT="persons per cell")
    tmp.replace(path)


def _people_in(faces_lonlat: np.ndarray, people: np.ndarray,
               transform: tuple[float, ...]) -> np.ndarray:
    """People of the population grid in each face (4 x 4 sub-samples per cell)."""
    c, _, west, _, _, north = transform
    rows, cols = people.shape
    k = 4
    sub = (np.arange(k) + 0.5) / k
    lon = west + (np.arange(cols)[:, None] + sub[None, :]).ravel() * c
    lat = north - (np.arange(rows)[:, None] + sub[None, :]).ravel() * c
    LON, LAT = np.meshgrid(lon, lat)
    share = np.repeat(np.repeat(people.astype(float) / (k * k), k, axis=0), k, axis=1)
    return np.array([share[shapely.contains_xy(f, LON, LAT)].sum() for f in faces_lonlat])


def _admin_units(faces: np.ndarray, ward_2019: np.ndarray, ward_2025: np.ndarray,
                 people: np.ndarray, transform: tuple[float, ...], rng: np.random.Generator
                 ) -> gpd.GeoDataFrame:
    """The district, the 2019 wards and the 2025 wards, with invented populations.

    A 2019 ward's census population is 88-96 % of the population grid's people in it (the grid
    is of 2020); a 2025 ward's (2024) is 104-108 %; the district's is the sum of its wards'.
    """
    from gis.crs import make_transformer

    lonlat = make_transformer(CRS_CADASTRAL).transform_geoms(faces)
    in_face = _people_in(lonlat, people, transform)
    records = []
    geoms = []

    def unit(level, code, name, name_en, unit_type, parent, population, year, geom, valid_from,
             valid_to):
        values = (level, code, name, name_en, unit_type, parent, int(population), year,
                  round(float(geom.area) / 1e6, 3), valid_from, valid_to, "gis.sample (synthetic)",
                  LICENCE)
        records.append(dict(zip(ADMIN_FIELDS, values, strict=True)))
        geoms.append(geom)

    pops_2019 = []
    wards = []
    for k, (code, name, name_en, _) in enumerate(SAMPLE_WARDS_2019):
        mine = ward_2019 == k
        pops_2019.append(round(in_face[mine].sum() * (0.88 + 0.08 * rng.random())))
        wards.append((code, name, name_en, shapely.union_all(faces[mine])))
    unit("district", SAMPLE_DISTRICT[0], SAMPLE_DISTRICT[1], SAMPLE_DISTRICT[2], _nfc("Quận"), "79",
         sum(pops_2019), 2019, shapely.union_all(faces), ADMIN_2019_FROM, ADMIN_2025_FROM)
    for (code, name, name_en, geom), pop in zip(wards, pops_2019):
        unit("ward", code, name, name_en, _nfc("Phường"), SAMPLE_DISTRICT[0], pop, 2019, geom,
             ADMIN_2019_FROM, ADMIN_2025_FROM)
    for code, name, name_en in SAMPLE_WARDS_2025:
        mine = ward_2025 == code
        pop = round(in_face[mine].sum() * (1.04 + 0.04 * rng.random()))
        unit("ward", code, name, name_en, _nfc("Phường"), "79", pop, 2024,
             shapely.union_all(faces[mine]), ADMIN_2025_FROM, None)
    return gpd.GeoDataFrame(pd.DataFrame.from_records(records, columns=list(ADMIN_FIELDS)),
                            geometry=gpd.GeoSeries(geoms, crs=CRS_CADASTRAL))


def _admin_and_rasters(out_dir: Path, extent: tuple[float, float, float, float], seed: int
                       ) -> tuple[gpd.GeoDataFrame, dict[str, Path]]:
    """Write ``admin.gpkg``, the two Sentinel-2-like scenes and ``population.tif``."""
    from gis.crs import make_transformer
    from gis.raster.synthetic import generate_pair

    rng = np.random.default_rng([seed, 5])
    frame = _admin_frame(extent)
    faces, ward_2019, ward_2025 = _admin_faces(frame, rng)
    to_lonlat = make_transformer(CRS_CADASTRAL)
    area = shapely.union_all(faces)
    bounds = tuple(float(b) for b in shapely.bounds(to_lonlat.transform_geoms(area)))
    lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    km_lon = 111.32 * math.cos(math.radians(lat))
    size = 1.2 * max(frame[2] - frame[0], frame[3] - frame[1])
    core = (round(lon + _S2_CORE_OFFSET_KM[0] / km_lon, 5),
            round(lat + _S2_CORE_OFFSET_KM[1] / 111.32, 5))
    s2 = {"resolution": _S2_RESOLUTION, "size_m": round(size, -2),
          "centre": (round(lon, 5), round(lat, 5)), "growth_patches": _S2_GROWTH, "core": core}
    pair = generate_pair(out_dir, seed=seed, **s2)
    people, transform = _population_grid(bounds, s2, seed)
    paths = {"population": out_dir / "population.tif", "s2_before": pair.before,
             "s2_after": pair.after,
             "s2_truth": pair.truth, "admin": out_dir / "admin.gpkg"}
    _write_population(paths["population"], people, transform)
    admin = _admin_units(faces, ward_2019, ward_2025, people, transform, rng)
    _write_gpkg(admin, paths["admin"], LAYER_ADMIN)
    return admin, paths


def generate(out_dir: Path, *, seed: int = 2025, sheets: int = 4,
             parcels_per_sheet: int = 150) -> dict[str, Path]:
    """Write the synthetic demo dataset into ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Folder to write into (created if missing); files of the same names are replaced.
    seed : int, default 2025
        Seed of every random draw (``numpy.random.default_rng``): the same seed gives the same
        files, byte for byte.
    sheets : int, default 4
        Map sheets of the cadastre (at least 2), on a grid in Phường An Khánh (MaXa 27094).
    parcels_per_sheet : int, default 150
        Parcels on each sheet (at least 40).

    Returns
    -------
    dict[str, Path]
        Keys ``cadastral`` (``cadastral.gpkg``, layer ``thua_dat``), ``cadastral_update``
        (``cadastral_update.gpkg``), ``planning`` (``planning.gpkg``, layer ``quy_hoach``),
        ``buildings``, ``roads``, ``poi`` (GeoJSON, EPSG:4326), ``admin`` (``admin.gpkg``, layer
        ``dvhc``: the 2019 district and wards and the 2025 wards), ``population``
        (``population.tif``, people per 3-arc-second cell), ``s2_before``, ``s2_after`` (the
        Sentinel-2-like scenes of 2019 and 2024), ``s2_truth`` (where built-up land appeared
        between them) and ``readme`` (``README.md``).

    Notes
    -----
    Parcel :data:`INVALID_PARCEL` is a self-intersecting bow-tie (its ``DienTich`` is the area of
    the quadrilateral it should have been). The update edition is of sheet :data:`UPDATE_SHEET`:
    parcel :data:`UPDATE_SPLIT_PARCEL` is replaced by parcels ``parcels_per_sheet + 1`` and
    ``+ 2`` with ``TachTuThua`` = "1/1", and parcel :data:`UPDATE_LAND_USE_PARCEL` changes land use.

    The 2025 wards :data:`SAMPLE_WARDS_2025` tile an area of about 3 x 2.4 km around the cadastre,
    which lies in the first of them; each is the union of 2019 wards :data:`SAMPLE_WARDS_2019`,
    except :data:`SPLIT_WARD_2019`, shared by two. The populations are invented from the population
    grid, whose density follows the built-up land of the first scene.

    Examples
    --------
    >>> paths = generate("data/sample")  # doctest: +SKIP
    >>> sorted(paths)[:3]  # doctest: +SKIP
    ['admin', 'buildings', 'cadastral']
    """
    if sheets < 2 or parcels_per_sheet < 40:
        raise ValueError("the demo needs sheets >= 2 and parcels_per_sheet >= 40")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    layout = _sample_layout(sheets, parcels_per_sheet)

    lot_fn = _assign_lot_functions(sheets * layout.nb * 2, rng)
    parcels, s, lot = _sample_parcels(layout, sheets, seed, lot_fn)

    _, bad_sheet, bad_no = INVALID_PARCEL
    bad = int(np.flatnonzero((parcels["SoHieuToBanDo"] == bad_sheet).to_numpy()
                             & (parcels["SoThuTuThua"] == bad_no).to_numpy())[0])
    valid = np.ones(len(parcels), dtype=bool)
    valid[bad] = False

    update = _update_edition(parcels, s, parcels_per_sheet, rng)
    parcels.loc[bad, "geometry"] = shapely.polygons(_bow_tie(s.coords[bad]))

    planning = _planning(layout, sheets, lot_fn, rng)
    land_use = parcels["KyHieuMucDichSuDung"].to_numpy(dtype=object)
    eligible = np.isin(land_use, ["ODT", "TMD", "DGD", "DYT"]) & valid
    buildings, building_parcel = _buildings(parcels, s, lot_fn[lot], eligible, rng)
    poi = _pois(parcels, buildings, building_parcel, valid, rng)
    roads = _roads(layout, sheets)

    paths = {
        "cadastral": out_dir / "cadastral.gpkg",
        "cadastral_update": out_dir / "cadastral_update.gpkg",
        "planning": out_dir / "planning.gpkg",
        "buildings": out_dir / "buildings.geojson",
        "roads": out_dir / "roads.geojson",
        "poi": out_dir / "poi.geojson",
        "readme": out_dir / "README.md",
    }
    _write_gpkg(parcels, paths["cadastral"], LAYER_PARCELS)
    _write_gpkg(update, paths["cadastral_update"], LAYER_PARCELS)
    _write_gpkg(planning, paths["planning"], LAYER_PLANNING)
    _write_geojson(buildings, paths["buildings"], "buildings")
    _write_geojson(roads, paths["roads"], "roads")
    _write_geojson(poi, paths["poi"], "poi")
    extent = np.array([g.total_bounds for g in (parcels, planning, roads)])
    admin, more = _admin_and_rasters(out_dir, (*extent[:, :2].min(0), *extent[:, 2:].max(0)), seed)
    paths.update(more)
    counts = {"cadastral": len(parcels), "cadastral_update": len(update), "planning": len(planning),
              "buildings": len(buildings), "roads": len(roads), "poi": len(poi),
              "admin": len(admin)}
    paths["readme"].write_text(_readme(seed, sheets, parcels_per_sheet, counts, admin, paths),
                               encoding="utf-8")
    return paths


def _readme(seed: int, sheets: int, per_sheet: int, counts: dict[str, int], admin: gpd.GeoDataFrame,
            paths: dict[str, Path]) -> str:
    bad = INVALID_PARCEL
    s2a, s2b, truth = (paths[k].name for k in ("s2_before", "s2_after", "s2_truth"))
    d19 = {c: n for c, n, *_ in SAMPLE_WARDS_2019}
    split = (_SPLIT_WEST, _SPLIT_EAST)
    pop = {(r.code, r.valid_from): r.population for r in admin.itertuples() if r.level == "ward"}
    went = "\n".join(
        f"* {n} ({c}), {pop[(c, ADMIN_2025_FROM)]:,} people in 2024: " + ", ".join(
            f"{d19[w[0]]} ({w[0]}, {pop[(w[0], ADMIN_2019_FROM)]:,} in 2019)"
            + (" in part" if w[3] is None else "")
            for w in SAMPLE_WARDS_2019 if w[3] == c or (w[3] is None and c in split))
        for c, n, _ in SAMPLE_WARDS_2025)
    text = f"""# HCMC GIS demo dataset (synthetic)

**Every record in these files is synthetic.** They were made by `gis.sample.generate`
(seed {seed}, {sheets} sheets of {per_sheet} parcels) from random numbers; no parcel, owner,
identity number, plan, building, road, facility, boundary, population figure or image here
exists. Ward codes, ward names and street names are real, so that the data looks familiar, and
the parcels lie in Phường An Khánh (Thủ Thiêm), Ho Chi Minh City; the ward boundaries and their
populations are invented. Regenerate with:

    gis sample data/sample

Licence: CC0 1.0 (public domain dedication), https://creativecommons.org/publicdomain/zero/1.0/.
Text is UTF-8, Unicode NFC.

| file | layer | CRS | geometry | features |
| --- | --- | --- | --- | --- |
| cadastral.gpkg | thua_dat | EPSG:9210 (VN-2000 / TM-3 105-45) | Polygon | {counts['cadastral']} |
| cadastral_update.gpkg | thua_dat | EPSG:9210 | Polygon | {counts['cadastral_update']} |
| planning.gpkg | quy_hoach | EPSG:9210 | Polygon | {counts['planning']} |
| buildings.geojson | buildings | EPSG:4326 (RFC 7946, lon/lat) | Polygon | {counts['buildings']} |
| roads.geojson | roads | EPSG:4326 | LineString | {counts['roads']} |
| poi.geojson | poi | EPSG:4326 | Point | {counts['poi']} |
| admin.gpkg | dvhc | EPSG:9210 | Polygon | {counts['admin']} |
| population.tif | raster, 1 band float32 | EPSG:4326, 3 arc-seconds | | |
| {s2a}, {s2b} | raster, 5 bands uint16 | EPSG:32648, {_S2_RESOLUTION:g} m | | |
| {truth} | raster, 1 band uint8 | EPSG:32648 | | |

## Loading it

On a migrated database (`gis db up`, or `DATABASE_URL` and `gis db migrate`):

    gis ingest cadastral cadastral.gpkg --valid-from 2024-01-01
    gis ingest cadastral cadastral_update.gpkg --valid-from 2025-01-01
    gis ingest planning planning.gpkg
    gis ingest buildings buildings.geojson
    gis ingest roads roads.geojson
    gis ingest poi poi.geojson
    gis ingest admin admin.gpkg
    gis ingest raster {s2a} {s2b} --collection s2-synthetic --sensor sentinel2
    gis ingest raster population.tif --collection worldpop --sensor worldpop \\
        --title "Synthetic population (people per 3 arc-second cell)"

then, for example, `gis stats planning land-use --zones wards_2019` or
`gis stats health access --worldpop population.tif`.

## cadastral.gpkg, layer thua_dat: cadastral parcels (thửa đất)

The natural key is (MaXa, SoHieuToBanDo, SoThuTuThua).

| field | type | meaning |
| --- | --- | --- |
| MaXa | text | commune (ward) code, 2025 GSO code: {SAMPLE_COMMUNE} = {SAMPLE_COMMUNE_NAME} |
| SoHieuToBanDo | integer | map sheet number (số hiệu tờ bản đồ) |
| SoThuTuThua | integer | parcel number on the sheet (số thứ tự thửa) |
| KyHieuMucDichSuDung | text | land-use code, Circular 25/2014 and 08/2024 (ODT urban housing, TMD commerce, DGD education, DYT health, CLN perennial crops, DGT transport, SON river/canal, DKV public recreation, TON religious) |
| DienTich | real | legal area in m² (diện tích pháp lý); the surveyed area to 0.1 m², some records off by up to 1.2 % as in real registers |
| DiaChiThuaDat | text | address of the parcel; empty for roads and canals |
| KyHieuDoiTuong | text | owner type (GDC household/individual, TKT economic organisation, TCN state agency, UBS ward People's Committee, TTG religious organisation) |
| TenChuSuDung | text | owner name. **Personal data** in a real register (here invented) |
| SoGiayTo | text | owner's 12-digit citizen identity number, individuals only. **Personal data** in a real register (here invented) |

Parcel {bad[2]} of sheet {bad[1]} has a self-intersecting (bow-tie) geometry on purpose, to show
the repair step of the ingest.

## cadastral_update.gpkg, layer thua_dat: a later edition of sheet {UPDATE_SHEET}

The same fields, plus `TachTuThua` (text, "sheet/parcel" of the parcel it was split from).
Parcel {UPDATE_SPLIT_PARCEL} is split into parcels {per_sheet + 1} and {per_sheet + 2}
(TachTuThua = "{UPDATE_SHEET}/{UPDATE_SPLIT_PARCEL}"), and parcel {UPDATE_LAND_USE_PARCEL} has
a new land-use code.

## planning.gpkg, layer quy_hoach: zoning plan 1/2000 (quy hoạch phân khu)

| field | type | meaning |
| --- | --- | --- |
| TenDoAn | text | name of the plan |
| SoQuyetDinh | text | number of the approval decision |
| NgayPheDuyet | text | approval date, ISO 8601 |
| KyHieuLo | text | lot code |
| ChucNang | text | land-use function (Đất ở, Đất hỗn hợp, Đất cây xanh, Đất giáo dục, Đất y tế, Đất giao thông) |
| MaChucNang | text | its short code (ODT, HH, CX, GD, YT, GT) |
| TangCaoToiDa | integer | maximum storeys |
| ChieuCaoToiDa | real | maximum height, m |
| HeSoSDD | real | maximum floor area ratio (hệ số sử dụng đất) |
| MatDoXD | real | maximum building coverage, percent (0-100) |
| DienTich | real | lot area, m² |

## buildings.geojson, roads.geojson, poi.geojson: OpenStreetMap-like layers

* buildings: `osm_id` ("way/..."), `building` (house, apartments, commercial, school,
  hospital), `building:levels`, `height` (m, may be null), `name` (may be null).
* roads: `osm_id`, `highway` (primary, secondary, tertiary, residential, service), `name`,
  `lanes`, `width` (m), `oneway` ("yes" along the line's direction, or "no"), `maxspeed`
  (km/h); null where unknown. Lines are split at every junction and share end points there,
  so they form one connected network.
* poi: `osm_id` ("node/..."), `amenity` (hospital, clinic, school, kindergarten, university,
  marketplace), `name`, `beds` (hospitals), `addr:full`.

## admin.gpkg, layer dvhc: administrative units (đơn vị hành chính)

The wards of 2025, the wards of 2019 they were made of and their 2019 district
({SAMPLE_DISTRICT[1]}, {SAMPLE_DISTRICT[0]}), over
{admin.loc[admin['level'] == 'district', 'area_km2'].iloc[0]:g} km² around the cadastre. The units
of each period tile that area without gap or overlap; the cadastre lies in An Khánh (2025), across
three 2019 wards. Each 2025 ward and the 2019 wards it was made of:

{went}

The fields carry the target names of `gis ingest admin`, which takes the file as it is. The
natural key is (level, code, valid_from): a 2019 and a 2025 ward may share a code, as they do in
Ho Chi Minh City.

| field | type | meaning |
| --- | --- | --- |
| level | text | district or ward |
| code | text | GSO code (mã đơn vị hành chính) |
| name, name_en | text | name without its type (An Khánh), and in English |
| unit_type | text | Quận, Phường |
| parent_code | text | district of a 2019 ward (769); province of a 2025 ward or a district (79) |
| population | integer | invented: census 2019 (2019 units) or 2024 estimate (2025 wards) |
| population_year | integer | year of the population |
| area_km2 | real | area in EPSG:9210 |
| valid_from, valid_to | text | ISO dates of validity: {ADMIN_2019_FROM} to {ADMIN_2025_FROM} for the 2019 units, from {ADMIN_2025_FROM} for the 2025 wards (valid_to empty) |
| source, licence | text | gis.sample (synthetic), {LICENCE} |

## population.tif: population grid (WorldPop-like)

People per cell (float32, nodata {_POP_NODATA:g}) on the 3-arc-second (about 92 m) grid of
WorldPop's 100 m products, EPSG:4326, for the year {_POP_YEAR} (GeoTIFF tag `DATETIME`). The
density follows the built-up share of the land cover of the first scene, from about 3,000
people/km² on vegetation to about 40,000 in dense built-up land, none on water.

## {s2a}, {s2b}: Sentinel-2-like scenes

Two dates of the same grid made by `gis.raster.synthetic.generate_pair`: bands B02, B03, B04,
B08, B11, surface reflectance x 10000 (uint16, nodata 0, a swath edge of nodata in a corner),
EPSG:32648 at {_S2_RESOLUTION:g} m, acquisition time in the `DATETIME` tag. Built-up patches appear
between the dates; `{truth}` is 1 where they did (the truth of a change detection).
"""
    return _nfc(text)
