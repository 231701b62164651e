"""The paper's Figures 4 and 5 as library functions, and the figures' PNGs."""

import pytest
import torch
from scipy.stats import norm

from vaebench.errors import VaebenchError
from vaebench.models import build_model
from vaebench.uses import manifold, plots


def _model(nz, likelihood="bernoulli", D=12):
    return build_model(D, nz, 8, likelihood, init_std=0.5, generator=torch.Generator().manual_seed(0))


def test_grid_is_the_inverse_gaussian_cdf_of_an_even_grid():
    z = manifold.grid_latents(4)
    q = norm.ppf([0.125, 0.375, 0.625, 0.875])
    assert torch.allclose(z[0, :, 0], torch.tensor(q, dtype=torch.float32))  # z1 left -> right
    assert torch.allclose(z[:, 0, 1], torch.tensor(q[::-1].copy(), dtype=torch.float32))  # z2 top -> bottom
    assert torch.all(z[:, :, 0] == z[0, :, 0]) and torch.all(z[:, :, 1].T == z[:, 0, 1])


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_manifold_grid_draws_the_decoder_mean(likelihood):
    model = _model(2, likelihood)
    grid = manifold.manifold_grid(model, n=5)
    assert grid.shape == (5, 5, 12)
    z = manifold.grid_latents(5)
    assert torch.allclose(grid[1, 3], model.decoder.mean(z[1, 3]))
    assert manifold.manifold_grid(model, n=5, image_shape=(3, 4)).shape == (5, 5, 3, 4)
    with pytest.raises(VaebenchError, match="N_z = 2"):
        manifold.manifold_grid(_model(3), n=5)
    with pytest.raises(VaebenchError, match="n >= 2"):
        manifold.manifold_grid(model, n=1)


def test_random_samples_are_decoder_means_of_prior_draws():
    model = _model(5)
    a = manifold.random_samples(model, 7, torch.Generator().manual_seed(1))
    z = torch.randn((7, 5), generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 12) and torch.allclose(a, model.decoder.mean(z))
    assert torch.equal(a, manifold.random_samples(model, 7, torch.Generator().manual_seed(1)))
    with pytest.raises(VaebenchError):
        manifold.random_samples(model, 0)


def test_figures_are_written_atomically(tmp_path):
    model = _model(2, D=20)
    grid = manifold.manifold_grid(model, n=6)
    plots.manifold_figure(tmp_path / "fig4.png", grid, (4, 5), title="Figure 4")
    plots.samples_figure(
        tmp_path / "fig5.png",
        {"N_z = 2": manifold.random_samples(model, 13), "N_z = 5": manifold.random_samples(_model(5, D=20), 13)},
        (4, 5),
        per_row=5,
    )
    plots.latent_scatter(tmp_path / "scatter.png", torch.randn(50, 2), torch.randint(0, 10, (50,)))
    plots.restoration_grid(
        tmp_path / "grid.png", {"a": torch.rand(3, 20), "b": torch.rand(3, 20)}, (4, 5), missing=torch.rand(3, 20) < 0.5
    )
    for name in ("fig4", "fig5", "scatter", "grid"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
