"""Train one model, or sweep with -m: ``python train.py loss=pf dataset=cifar10 ir=100``.

Configuration lives in ``conf/`` (Hydra); every option has a default. See README.md.
"""

import os
from pathlib import Path

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()  # before torch is imported: re-executes once with glibc malloc tuned
os.environ.setdefault("IMBLOSS_ROOT", str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from imbloss.multirun.sweeps import register_resolvers  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from imbloss.pipeline import run_job

    run_job(cfg)


if __name__ == "__main__":
    register_resolvers()
    main()
