"""What a trained VAE is for: posterior inference of z, restoration of corrupted images (marginal
inference of x), and the paper's Figures 4 and 5. One job per module:

  trained      a run folder's model with its final parameters, its data and labels
  pixels       the decoder's per-pixel distribution p(x|z) as tensors
  corruption   the corruption models (inpaint, denoise, superres): p(y|c), p(y|z), p(c|y, z)
  samplers     Metropolis-within-Gibbs, pseudo-Gibbs, HMC on p(z|y), and the baselines
  restore      ``vaebench restore``: corrupt, restore, score, write the table and the grid
  posterior    the ELBO, the best diagonal Gaussian per datapoint, HMC moments, the gaps
  infer        ``vaebench infer``: the gap decomposition and posterior summaries of a run
  reference    the linear-Gaussian VAE, whose posteriors are known in closed form
  manifold     Figure 4 (the learned manifold) and Figure 5 (random samples)
  plots        the figures as PNGs, written atomically
  tables       summaries over many runs: CSVs and markdown
"""
