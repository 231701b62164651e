"""vaebench: reproduce and benchmark Auto-Encoding Variational Bayes (Kingma & Welling, 2013)."""

__version__ = "0.1.0"
