"""The Triton mode of the session, set once before any test module here is imported (and so
before any kernel is built: ``triton.jit`` reads TRITON_INTERPRET when it decorates, on a
kernel's first use).

- The CPU suite (``nox -s tests``, plain ``pytest``): TRITON_INTERPRET=1 unless it is set,
  so the Triton kernels run on CPU tensors in the interpreter.
- The GPU session (``nox -s tests_gpu`` sets VAEBENCH_GPU_SESSION=1 and TRITON_INTERPRET=0):
  TRITON_INTERPRET=0 whatever it was, so the kernels are compiled; each GPU test also asserts
  it (``_ops_cases.assert_ran_compiled``), so a GPU run with the interpreter on fails.
"""

from __future__ import annotations

import os


def gpu_session() -> bool:
    return os.environ.get("VAEBENCH_GPU_SESSION", "0") not in ("", "0")


def pytest_configure(config):
    if gpu_session():
        os.environ["TRITON_INTERPRET"] = "0"
    else:
        os.environ.setdefault("TRITON_INTERPRET", "1")
