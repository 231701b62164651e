"""Settings shared by the kernels that need no numba import."""

import os

# Below this many elements a kernel runs single-threaded: the parallel launch
# (OpenMP fork/join, ~5-10 us) costs more than it saves at the paper's
# minibatch sizes (100 x 20, 100 x 784).
PARALLEL_MIN = int(os.environ.get("VAEBENCH_PARALLEL_MIN", 1 << 16))
