"""vaebench_kernels: fused Numba (CPU) and Triton (GPU) kernels for the VAE hot path."""
