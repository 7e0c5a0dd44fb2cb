"""Shared fixtures. Nothing in the tests may reach a model hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import build_sd, build_sdxl

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    return build_sd(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    return build_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))


@pytest.fixture
def run_cli(monkeypatch, tmp_path):
    """Invoke the real Typer app in-process; returns the Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from scumble.cli.app import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke
