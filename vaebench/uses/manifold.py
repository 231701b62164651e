"""The paper's Figures 4 and 5: what the learned generative model draws.

Figure 4, the learned data manifold of a model with a two-dimensional latent space: evenly
spaced points u_j = (j + 1/2) / n, j = 0..n-1, on each side of the unit square are mapped
through the inverse CDF of the standard Gaussian, z = (Phi^-1(u_col), Phi^-1(u_row)), and each
grid cell shows the decoder's mean E[x|z] (the Bernoulli means for MNIST, the Gaussian mean for
Frey Face). Rows run from large z2 at the top to small at the bottom, columns from small z1 at
the left to large at the right (a plot's orientation).

Figure 5, random samples: z ~ N(0, I), each shown as the decoder's mean E[x|z].
"""

from __future__ import annotations

import torch

from vaebench.errors import VaebenchError


def _decoder_mean(model, z: torch.Tensor) -> torch.Tensor:
    dec = model.decoder
    with torch.no_grad():
        out = dec(z)
        return torch.sigmoid(out) if dec.likelihood == "bernoulli" else out[0]


def grid_latents(n: int = 20, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (n, n, 2) latent grid of Figure 4 (see the module docstring)."""
    if not (isinstance(n, int) and n >= 2):
        raise VaebenchError(f"the manifold grid needs n >= 2 points per side, got {n!r}")
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    q = torch.special.ndtri(u)
    z1 = q.view(1, n).expand(n, n)  # columns: small -> large
    z2 = q.flip(0).view(n, 1).expand(n, n)  # rows: large (top) -> small
    return torch.stack([z1, z2], -1).to(dtype=dtype, device=device)


def manifold_grid(model, n: int = 20, image_shape=None) -> torch.Tensor:
    """Figure 4: the decoder's mean on the n x n grid of z, (n, n, D), or (n, n, H, W) with
    ``image_shape``. The model must have a two-dimensional latent space."""
    if model.nz != 2:
        raise VaebenchError(
            f"the learned manifold (Figure 4) needs a model with N_z = 2, this one has N_z = {model.nz}"
        )
    param = next(model.decoder.parameters())
    z = grid_latents(n, dtype=param.dtype, device=param.device)
    x = _decoder_mean(model, z.reshape(-1, 2)).reshape(n, n, -1)
    return x.reshape(n, n, *image_shape) if image_shape is not None else x


def random_samples(model, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Figure 5: n random samples, the decoder's mean at z ~ N(0, I): (n, D)."""
    if not (isinstance(n, int) and n >= 1):
        raise VaebenchError(f"the number of samples must be a whole number >= 1, got {n!r}")
    param = next(model.decoder.parameters())
    z = torch.randn((n, model.nz), generator=generator, dtype=param.dtype, device=param.device)
    return _decoder_mean(model, z)
