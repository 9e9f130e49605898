"""W&B runs offline unless an API key is configured, so it never hangs without network."""

from pathlib import Path

import pytest

from imbloss.loggers import wandb_api_key_configured, wandb_offline


@pytest.fixture
def no_netrc(tmp_path: Path) -> dict[str, str]:
    return {"NETRC": str(tmp_path / "missing-netrc")}


def test_no_key_means_offline(no_netrc: dict[str, str]) -> None:
    assert not wandb_api_key_configured(no_netrc)
    assert wandb_offline(None, no_netrc) is True


def test_env_key_means_online(no_netrc: dict[str, str]) -> None:
    env = {**no_netrc, "WANDB_API_KEY": "x" * 40}
    assert wandb_offline(None, env) is False
    assert wandb_offline(None, {**env, "WANDB_MODE": "offline"}) is True


def test_netrc_key_means_online(tmp_path: Path) -> None:
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc_file.chmod(0o600)
    assert wandb_api_key_configured({"NETRC": str(netrc_file)})


def test_explicit_request_wins(no_netrc: dict[str, str]) -> None:
    assert wandb_offline(False, no_netrc) is False
    assert wandb_offline(True, {**no_netrc, "WANDB_API_KEY": "k"}) is True
