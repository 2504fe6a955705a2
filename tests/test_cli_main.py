"""The console script builds only the command it is asked for, and every command otherwise."""

from __future__ import annotations

import sys

import pytest

from markit import cli
from tests.conftest import run_markit

COMMANDS = ["create", "inspect", "verify", "unpack", "sign", "diff"]


def test_a_named_command_is_built_alone_and_the_app_is_left_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "app", _Spy(cli.app, seen))
    monkeypatch.setattr(sys, "argv", ["markit", "inspect", "--help"])
    cli.main()
    assert seen == [["inspect"]]
    assert _names_of(cli.app) == COMMANDS


def test_anything_else_gets_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "app", _Spy(cli.app, seen))
    for argv in (["markit"], ["markit", "--help"], ["markit", "inspcet"], ["markit", "--version"]):
        monkeypatch.setattr(sys, "argv", argv)
        cli.main()
    assert seen == [COMMANDS] * 4


def test_help_and_misspelt_commands_still_see_all_commands() -> None:
    shown = run_markit("--help", env={"COLUMNS": "200"}).stdout.decode()
    assert all(f" {name} " in shown for name in COMMANDS)
    wrong = run_markit("inspcet", "x.mar", env={"COLUMNS": "200"})
    assert wrong.returncode == 2
    assert b"Did you mean 'inspect'" in wrong.stderr


class _Spy:
    """Records which commands the app holds when it is called; does not run them."""

    def __init__(self, app: object, seen: list[list[str]]) -> None:
        self._app = app
        self._seen = seen

    def __getattr__(self, name: str) -> object:
        return getattr(self._app, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._app, name, value)

    def __call__(self) -> None:
        self._seen.append(_names_of(self._app))


def _names_of(app: object) -> list[str]:
    return [cli._command_name(c) for c in app.registered_commands]  # type: ignore[attr-defined]
