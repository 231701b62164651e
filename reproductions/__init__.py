"""The reproduction configs (one TOML per paper figure or study) and the paper's values
(``paper/``). Data, not code: this file only makes the folder ship inside the wheel as
``vaebench.reproductions``; read it through ``vaebench.resources``."""
