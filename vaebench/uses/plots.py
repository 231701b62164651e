"""Figures of what a trained VAE is for, each written as a PNG atomically (vaebench.fileio):
the latent scatter of a data set, restoration grids, the learned manifold (the paper's
Figure 4) and random samples (Figure 5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vaebench.fileio import atomic_path

MISSING_RGB = (0.85, 0.25, 0.25)  # how a missing pixel is drawn in a corrupted image


def _figure(nrows: int, ncols: int, figsize):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)


def save_png(fig, path, dpi: int = 130) -> Path:
    """``fig`` as a PNG, written atomically, then closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def tile(images, image_shape, *, pad: int = 1, pad_value: float = 1.0, rgb: bool = False) -> np.ndarray:
    """Images (rows, cols, D) or (rows, cols, H, W) (with ``rgb``: a last axis of 3) as one array,
    ``pad`` pixels between."""
    images = _np(images)
    rows, cols = images.shape[:2]
    H, W = image_shape
    images = images.reshape(rows, cols, H, W, *((3,) if rgb else ()))
    out = np.full((rows * (H + pad) - pad, cols * (W + pad) - pad, *((3,) if rgb else ())), pad_value, dtype=float)
    for r in range(rows):
        for c in range(cols):
            out[r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = images[r, c]
    return out


def as_rgb(images, missing=None) -> np.ndarray:
    """Grey images (..., D) in [0, 1] as RGB (..., D, 3); ``missing`` pixels in MISSING_RGB."""
    images = np.clip(np.nan_to_num(_np(images).astype(float)), 0, 1)
    rgb = np.repeat(images[..., None], 3, -1)
    if missing is not None:
        rgb[_np(missing).astype(bool)] = MISSING_RGB
    return rgb


def latent_scatter(path, z, labels=None, *, title: str = "", axis_labels=("z1", "z2")) -> Path:
    """A 2-D scatter of latent codes (n, 2), coloured by digit label when given."""
    z = _np(z)
    fig, axes = _figure(1, 1, (5.6, 5))
    ax = axes[0, 0]
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=3, alpha=0.6, color="#333333", linewidths=0)
    else:
        import matplotlib.pyplot as plt

        labels = _np(labels)
        cmap = plt.get_cmap("tab10")
        for d in range(10):
            sel = labels == d
            ax.scatter(z[sel, 0], z[sel, 1], s=3, alpha=0.6, color=cmap(d), linewidths=0, label=str(d))
        ax.legend(
            markerscale=4,
            fontsize=7,
            title="digit",
            title_fontsize=7,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def restoration_grid(path, columns: dict, image_shape, *, missing=None, title: str = "") -> Path:
    """One row per image, one column per entry of ``columns`` ({header: (n, D) images}); the
    first column's ``missing`` pixels (n, D) are drawn in colour."""
    names = list(columns)
    n = _np(columns[names[0]]).shape[0]
    H, W = image_shape
    cells = np.stack([as_rgb(columns[c], missing if i == 0 else None) for i, c in enumerate(names)], 1)  # (n, C, D, 3)
    img = tile(cells, image_shape, rgb=True)
    px = 3.0 / 130  # inches per image pixel: 3 output pixels at 130 dpi
    fig, axes = _figure(1, 1, (max(3.0, len(names) * (W + 1) * px), max(2.0, n * (H + 1) * px + 0.4)))
    ax = axes[0, 0]
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([(W + 1) * i + W / 2 for i in range(len(names))])
    ax.set_xticklabels([c.replace(" ", "\n", 1) for c in names], fontsize=6, rotation=0)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8, pad=18)
    return save_png(fig, path)


def manifold_figure(path, grid, image_shape, *, title: str = "") -> Path:
    """The learned manifold (paper Figure 4): a grid (n, n, D) of decoder means, tiled."""
    grid = _np(grid)
    img = tile(grid, image_shape, pad=0)
    H, W = image_shape
    n = grid.shape[0]
    fig, axes = _figure(1, 1, (max(3.0, n * W * 0.02), max(3.0, n * H * 0.02) + 0.3))
    ax = axes[0, 0]
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def samples_figure(path, panels: dict, image_shape, *, per_row: int = 10, title: str = "") -> Path:
    """Random samples (paper Figure 5): one panel per entry of ``panels`` ({label: (m, D)
    images}), each tiled ``per_row`` images wide."""
    labels = list(panels)
    fig, axes = _figure(1, len(labels), (2.6 * len(labels), 2.9))
    for ax, label in zip(axes[0], labels):
        imgs = _np(panels[label])
        rows = math.ceil(imgs.shape[0] / per_row)
        full = np.ones((rows * per_row, imgs.shape[1]))
        full[: imgs.shape[0]] = imgs
        ax.imshow(
            tile(full.reshape(rows, per_row, -1), image_shape), cmap="gray", vmin=0, vmax=1, interpolation="nearest"
        )
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path)
