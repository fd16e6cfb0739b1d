"""The command line's config file (TOML) and the record of the settings a run used.

A config file holds option values under their long names, with ``_`` or ``-``::

    size = "20x30"
    epochs = 10
    scheduler-file = "/shared/scheduler.json"
    tls_ca_file = "/etc/dask/ca.pem"

They become the subcommand's defaults, so flags given on the command line override them.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path
from typing import Any

# Options that make no sense inside a config file.
NOT_IN_CONFIG = {"help", "config", "version"}


class UsageError(Exception):
    """Bad flags or config: the command exits with status 2."""


def config_options(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, bool]]:
    """Every key a config file may hold for ``parser``: ``{name: (action, negated)}``.

    ``negated`` marks the ``no_...`` spelling of a ``--flag/--no-flag`` pair.
    """
    table = {}
    for action in parser._actions:
        if action.dest in NOT_IN_CONFIG:
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                negated = isinstance(action, argparse.BooleanOptionalAction) and option.startswith(
                    "--no-"
                )
                table[option[2:].replace("-", "_")] = (action, negated)
    return table


def _convert(action: argparse.Action, negated: bool, value: Any) -> Any:
    """A config value as the option would hold it had it been given on the command line."""
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise UsageError("takes true or false")
        return value != negated
    if isinstance(value, bool | dict):
        raise UsageError(f"takes a value such as {action.metavar or action.dest.upper()}")
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise UsageError(str(exc) or f"invalid value {text!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"must be one of {', '.join(map(str, action.choices))}")
    return converted


def read_config(path: str | os.PathLike, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The option values a TOML config file sets, by ``dest``, checked against ``parser``.

    Raises ``UsageError`` naming the file for an unreadable file, an unknown key, a bad
    value, or two options that exclude each other.
    """
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the config file {os.fspath(path)!r}: {exc}") from None
    options = config_options(parser)
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in options:
            raise UsageError(
                f"the config file {os.fspath(path)!r} has an unknown key {key!r}; "
                f"known keys: {', '.join(sorted(options))}"
            )
        action, negated = options[name]
        try:
            values[action.dest] = _convert(action, negated, value)
        except UsageError as exc:
            raise UsageError(f"the config file {os.fspath(path)!r}: {key}: {exc}") from None
    _check_exclusive(path, parser, values)
    return values


def _check_exclusive(
    path: str | os.PathLike, parser: argparse.ArgumentParser, values: dict[str, Any]
) -> None:
    for group in parser._mutually_exclusive_groups:
        given = [a.dest for a in group._group_actions if a.dest in values]
        if len(given) > 1:
            raise UsageError(
                f"the config file {os.fspath(path)!r} sets {' and '.join(given)}, "
                "which exclude each other"
            )


def effective_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options a run used, as JSON-ready values (for ``summary.json``)."""
    settings = {}
    for name, value in sorted(vars(args).items()):
        if callable(value):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        settings[name] = value
    return settings


def output_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a local path; a URL (``s3://...``), which dasksom cannot write, is a usage
    error."""
    from dasksom.io.atomic import local_path

    try:
        return local_path(path, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
