"""The reparameterizable families of the paper's section 2.4, in ONE registry.

Each entry writes z ~ q(z | params) as z = g(eps, params), eps from a fixed distribution, by one
of the paper's three constructions: tractable inverse CDF (``inverse_cdf``), location-scale
(``location_scale``) or composition (``composition``). Logistic has an entry for each of its two
constructions (``logistic``, ``logistic-ls``) and gamma one for the sum of exponentials (integer
shape, ``gamma``) and one for torch's implicit reparameterization (real shape,
``gamma-implicit``); the elliptical family has ``mvn`` and ``mvt``.

    >>> from vaebench import families
    >>> fam = families.get("gumbel")
    >>> z = fam.sample(fam.example, (1000,))          # = fam.rsample(params, fam.sample_eps(...))
    >>> fam.log_prob(fam.example, z), fam.kl(fam.example)  # KL to fam.prior
"""

from __future__ import annotations

from vaebench.families import composition, inverse_cdf, location_scale
from vaebench.families.base import CONSTRAINTS, Family, FamilyError, Param, standard_gamma

CLASSES = ("inverse-cdf", "location-scale", "composition")

REGISTRY: dict[str, Family] = {
    f.name: f() for module in (inverse_cdf, location_scale, composition) for f in module.FAMILIES
}


def names() -> list[str]:
    """Registry keys, in the paper's order (inverse CDF, location-scale, composition)."""
    return list(REGISTRY)


def get(name: str) -> Family:
    """The registry entry ``name`` (FamilyError naming the known ones otherwise)."""
    try:
        return REGISTRY[str(name).strip().lower()]
    except KeyError:
        raise FamilyError(f"unknown family {name!r} (known: {', '.join(REGISTRY)})") from None


__all__ = ["CLASSES", "CONSTRAINTS", "REGISTRY", "Family", "FamilyError", "Param", "get", "names", "standard_gamma"]
