"""A finished run's model back in one call: ``imbloss.load_run(run_dir)``.

The run's ``.hydra/config.yaml`` says which network, loss and optimiser it trained; its
``metrics.json`` gives the input shape, the class count and the training class counts (the loss's
weights); ``checkpoints/best.ckpt`` (or ``last.ckpt``) holds the weights. The classifier comes back
in eval mode on the CPU, ready to predict: ``model(images).softmax(1)``. The images must be
normalised as the run's data module normalises them (``datamodule.transform_batch``).
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from imbloss.errors import ConfigError, RunFileError
from imbloss.module import ImbalancedClassifier
from imbloss.multirun.sweeps import register_resolvers
from imbloss.runs.layout import RunFolder
from imbloss.runs.readers import read_json_file

WEIGHT_SETS = ("best", "last")


def load_run(run_dir: Path | str, weights: str = "best") -> ImbalancedClassifier:
    """The classifier of the finished run in ``run_dir`` with its selected (``best``) or last
    (``last``) weights, in eval mode. A RunFileError names a missing file (a run with
    ``checkpoints=none``, or whose ``last.ckpt`` was removed when it finished)."""
    if weights not in WEIGHT_SETS:
        raise ConfigError(f"weights={weights!r}; accepted: {', '.join(WEIGHT_SETS)}")
    folder = RunFolder(Path(run_dir))
    checkpoint = folder.best_checkpoint if weights == "best" else folder.last_checkpoint
    for path in (folder.config, folder.metrics, checkpoint):
        if not path.is_file():
            raise RunFileError(
                f"{path} does not exist: {run_dir} is not a finished run with its {weights} "
                "checkpoint (checkpoints=best keeps best.ckpt, checkpoints=all also last.ckpt)"
            )
    register_resolvers()  # a loss's settings may use the schedule resolver
    config = OmegaConf.load(folder.config)
    metrics = read_json_file(folder.metrics)
    if "input_shape" not in metrics:
        raise RunFileError(
            f"{folder.metrics} has no input_shape (written by runs since it was added); "
            "rebuild the network from the run's configuration by hand"
        )
    net = instantiate(config.model)(
        input_shape=tuple(metrics["input_shape"]), num_classes=int(metrics["num_classes"])
    )
    loss_fn = instantiate(config.loss, class_counts=metrics["train_class_counts"])
    model = ImbalancedClassifier.load_from_checkpoint(
        checkpoint,
        map_location="cpu",
        weights_only=True,
        net=net,
        loss_fn=loss_fn,
        optimizer=instantiate(config.optimizer),
        minority_classes=metrics.get("minority_classes", []),
    )
    return model.eval()
