"""Synthetic Sentinel-2-like scenes of Ho Chi Minh City, with urban growth between two dates.

Everything here is made up, deterministically from a seed: the demo and the tests get imagery
without downloading any. A scene is a 5-band GeoTIFF (B02 blue, B03 green, B04 red, B08 NIR,
B11 SWIR 1.6 um; surface reflectance x 10000 as uint16, nodata 0) in WGS 84 / UTM 48N
(EPSG:32648), by default 20 km x 20 km at 10 m around 106.70 E, 10.78 N (central HCMC).

The landscape: a dense urban core around the historic centre whose built-up share falls off
with distance, a meandering river (the Saigon river) with a few canals, vegetation and sparse
cropland elsewhere. The second date adds built-up patches (new districts) on former vegetation
in the peri-urban ring, so that the change between the dates is known exactly
(:attr:`SyntheticPair.truth`). B11 is simulated at 20 m (2 x 2 blocks) as in Sentinel-2. Each
date has its own swath edge with nodata (0) in a corner.

Examples
--------
>>> pair = generate_pair("data/rasters", seed=2025, resolution=20.0)  # doctest: +SKIP
>>> pair.before.name, pair.after.name  # doctest: +SKIP
('hcmc-s2-2019-01-15.tif', 'hcmc-s2-2024-01-20.tif')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BANDS", "CLASSES", "SyntheticPair", "generate_pair", "landcover", "reflectance"]

#: Band names of the scenes, in order (Sentinel-2 band numbers).
BANDS = ("B02", "B03", "B04", "B08", "B11")
#: Land-cover classes of :func:`landcover`.
CLASSES = {0: "nodata", 1: "water", 2: "vegetation", 3: "cropland", 4: "built-up"}

# Mean surface reflectance x 10000 per class, bands B02 B03 B04 B08 B11.
_SPECTRA = {
    1: (700, 800, 600, 300, 150),  # turbid river water
    2: (350, 700, 400, 3200, 1700),  # trees, gardens, mangrove
    3: (500, 900, 800, 2600, 2200),  # sparse crops, grass
    4: (1100, 1250, 1400, 2000, 2600),  # roofs, roads, concrete
}
_CRS = "EPSG:32648"
_CENTRE_LONLAT = (106.70, 10.78)
_CORE_LONLAT = (106.700, 10.776)  # Ben Thanh / District 1


@dataclass(frozen=True)
class SyntheticPair:
    """Two dated scenes of the same grid, and the truth of what was built in between."""

    before: Path
    after: Path
    truth: Path  # uint8 GeoTIFF: 1 where built-up appeared, 0 elsewhere
    dates: tuple[str, str]
    crs: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    new_built_up_m2: float  # area that became built-up (inside both scenes' valid data)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise in [0, 1): a coarse random grid, bilinearly interpolated to ``shape``."""
    h, w = shape
    gh, gw = max(2, h // cells + 2), max(2, w // cells + 2)
    grid = rng.random((gh, gw))
    yi = np.linspace(0, gh - 1.001, h)
    xi = np.linspace(0, gw - 1.001, w)
    y0, x0 = yi.astype(int), xi.astype(int)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _grid(resolution: float, size_m: float, centre: tuple[float, float]):
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", _CRS, always_xy=True)
    cx, cy = tr.transform(*centre)
    n = int(round(size_m / resolution))
    x0 = np.floor((cx - size_m / 2) / resolution) * resolution
    y1 = np.floor((cy + size_m / 2) / resolution) * resolution
    return n, x0, y1, tr


def landcover(
    seed: int = 2025,
    *,
    resolution: float = 10.0,
    size_m: float = 20_000.0,
    centre: tuple[float, float] = _CENTRE_LONLAT,
    growth_patches: int = 30,
    core: tuple[float, float] = _CORE_LONLAT,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Land-cover classes of the two dates (see :data:`CLASSES`) and the grid's transform.

    ``core`` (lon, lat) is the centre of the urban core: the built-up share falls off with the
    distance from it, the river runs about 2.5 km east of it and growth appears 4-9 km from it.

    Returns
    -------
    before, after : numpy.ndarray of uint8
        Classes; 0 (nodata) on each date's swath edge.
    transform : tuple
        Affine ``(a, b, c, d, e, f)`` of the grid in EPSG:32648.
    """
    rng = np.random.default_rng(seed)
    n, x0, y1, tr = _grid(resolution, size_m, centre)
    shape = (n, n)
    xs = x0 + (np.arange(n) + 0.5) * resolution
    ys = y1 - (np.arange(n) + 0.5) * resolution
    X, Y = np.meshgrid(xs, ys)
    kx, ky = tr.transform(*core)
    dist = np.hypot(X - kx, Y - ky)

    # urban share: dense core, decaying outwards, broken up by smooth noise
    urban = np.exp(-((dist / 6500.0) ** 2)) + 0.55 * (
        _smooth_noise(rng, shape, max(4, int(900 / resolution))) - 0.5
    )
    before = np.full(shape, 2, dtype=np.uint8)
    crop = _smooth_noise(rng, shape, max(4, int(1500 / resolution))) > 0.62
    before[crop] = 3
    before[urban > 0.5] = 4

    # the river: a meander from north to south-east, ~250 m wide, and a few straight canals
    t = (Y - Y.min()) / (Y.max() - Y.min() + 1e-9)
    river_x = kx + 2500 + 2200 * np.sin(2 * np.pi * (1.3 * t + rng.random())) + 1500 * (t - 0.5)
    water = np.abs(X - river_x) < 125 + 40 * np.sin(7 * t)
    for _ in range(4):
        yc = Y.min() + rng.random() * (Y.max() - Y.min())
        water |= (np.abs(Y - yc) < 20) & (X < river_x)
    before[water] = 1

    # growth: compact patches on vegetation or cropland 4-9 km from the core
    after = before.copy()
    placed = 0
    tries = 0
    while placed < growth_patches and tries < growth_patches * 50:
        tries += 1
        r = 4000 + 5000 * rng.random()
        ang = 2 * np.pi * rng.random()
        px, py = kx + r * np.cos(ang), ky + r * np.sin(ang)
        half_w, half_h = (100 + 250 * rng.random(), 100 + 250 * rng.random())
        i0 = int((y1 - (py + half_h)) / resolution)
        i1 = int((y1 - (py - half_h)) / resolution)
        j0 = int(((px - half_w) - x0) / resolution)
        j1 = int(((px + half_w) - x0) / resolution)
        if i0 < 0 or j0 < 0 or i1 > n or j1 > n or i1 - i0 < 3 or j1 - j0 < 3:
            continue
        block = after[i0:i1, j0:j1]
        if np.mean((block == 2) | (block == 3)) < 0.9:
            continue
        block[(block == 2) | (block == 3)] = 4
        placed += 1

    # swath edges (nodata): a corner triangle, a different one on each date
    ii, jj = np.mgrid[0:n, 0:n]
    before[(ii + jj) < 0.12 * n] = 0
    after[(n - 1 - ii) + (n - 1 - jj) < 0.10 * n] = 0
    return before, after, (resolution, 0.0, float(x0), 0.0, -resolution, float(y1))


def reflectance(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """5-band uint16 reflectance x 10000 of a class image (0 where the class is nodata)."""
    h, w = classes.shape
    out = np.zeros((5, h, w), dtype=np.uint16)
    texture = 1.0 + 0.08 * (_smooth_noise(rng, (h, w), 8) - 0.5)
    for code, spectrum in _SPECTRA.items():
        m = classes == code
        k = int(m.sum())
        if not k:
            continue
        for b, mean in enumerate(spectrum):
            vals = mean * texture[m] * (1.0 + 0.05 * rng.standard_normal(k))
            out[b][m] = np.clip(vals, 1, 10000).astype(np.uint16)
    # B11 is a 20 m band: average 2 x 2 blocks (resampled to 10 m as in L2A products)
    swir = out[4].astype(np.float32)
    h2, w2 = h - h % 2, w - w % 2
    blocks = swir[:h2, :w2].reshape(h2 // 2, 2, w2 // 2, 2).mean(axis=(1, 3))
    swir[:h2, :w2] = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
    out[4] = np.where(classes > 0, np.clip(swir, 1, 10000), 0).astype(np.uint16)
    return out


def _write(
    path: Path,
    data: np.ndarray,
    transform,
    when: str,
    *,
    tiled: bool,
    dtype: str = "uint16",
    descriptions=BANDS,
    nodata=0,
) -> None:
    import rasterio
    from affine import Affine

    profile = dict(
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=data.shape[0],
        dtype=dtype,
        crs=_CRS,
        transform=Affine(*transform),
        nodata=nodata,
        compress="deflate",
    )
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(descriptions)
        dst.update_tags(
            DATETIME=when,
            TIFFTAG_DATETIME=when[:19].replace("-", ":").replace("T", " "),
            SOURCE="synthetic (gis.raster.synthetic)",
        )
    tmp.replace(path)


def generate_pair(
    out_dir: str | Path,
    *,
    seed: int = 2025,
    resolution: float = 10.0,
    size_m: float = 20_000.0,
    centre: tuple[float, float] = _CENTRE_LONLAT,
    dates: tuple[str, str] = ("2019-01-15T03:20:00Z", "2024-01-20T03:20:00Z"),
    growth_patches: int = 30,
    core: tuple[float, float] = _CORE_LONLAT,
) -> SyntheticPair:
    """Write two synthetic Sentinel-2-like scenes and the truth of the change between them.

    Parameters
    ----------
    out_dir : path
        Folder for ``hcmc-s2-<date>.tif`` (x2) and ``hcmc-s2-new-built-up-truth.tif``.
    seed : int, default 2025
        The same seed gives the same files, byte for byte.
    resolution : float, default 10
        Pixel size in metres (10 to 20 m is Sentinel-2-like).
    size_m : float, default 20000
        Side of the square scene in metres.
    centre : (lon, lat), default (106.70, 10.78)
        Centre of the scene.
    dates : (str, str)
        Acquisition times of the two scenes (ISO, UTC), written in their metadata.
    growth_patches : int, default 30
        Number of built-up patches that appear between the dates.
    core : (lon, lat), default (106.700, 10.776)
        Centre of the urban core (Bến Thành): a small scene far from it is peri-urban, with room
        for growth.

    Returns
    -------
    SyntheticPair
        The first scene is a striped GeoTIFF, the second a tiled one (both DEFLATE), so that an
        ingest sees two layouts.
    """
    out = Path(out_dir)
    before, after, transform = landcover(
        seed, resolution=resolution, size_m=size_m, centre=centre, growth_patches=growth_patches,
        core=core,
    )
    rng = np.random.default_rng(seed + 1)
    paths = []
    for k, (classes, when) in enumerate(((before, dates[0]), (after, dates[1]))):
        p = out / f"hcmc-s2-{when[:10]}.tif"
        _write(p, reflectance(classes, rng), transform, when, tiled=bool(k))
        paths.append(p)
    new = ((after == 4) & (before != 4) & (before > 0) & (after > 0)).astype(np.uint8)
    truth = out / "hcmc-s2-new-built-up-truth.tif"
    _write(
        truth,
        new[np.newaxis],
        transform,
        dates[1],
        tiled=True,
        dtype="uint8",
        descriptions=("new_built_up",),
        nodata=None,
    )
    return SyntheticPair(
        before=paths[0],
        after=paths[1],
        truth=truth,
        dates=dates,
        crs=_CRS,
        transform=transform,
        shape=before.shape,
        new_built_up_m2=float(new.sum()) * resolution * resolution,
    )
