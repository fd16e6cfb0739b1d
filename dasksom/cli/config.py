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
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Options that make no sense inside a config file.
NOT_IN_CONFIG = {"help", "config", "version"}


class UsageError(Exception):
    """Bad flags or config: the command exits with status 2."""


class RunError(RuntimeError):
    """An expected failure at run time (unreachable scheduler, timeout, an output that cannot
    be written): exit status 1."""


def whole_number(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``.

    Parameters
    ----------
    minimum : int
        The smallest value allowed.
    what : str
        The option's name for the message ("epochs").

    Returns
    -------
    callable
        Text to int; raises ``argparse.ArgumentTypeError`` (a usage error, exit status 2) for
        anything else.
    """

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{what} must be a whole number of at least {minimum}, got {text!r}"
            )
        return value

    return convert


def config_options(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, bool]]:
    """Every key a config file may hold for ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand's parser.

    Returns
    -------
    dict
        ``{name: (action, negated)}``, by long option name with ``_`` for ``-``; ``negated``
        marks the ``no_...`` spelling of a ``--flag/--no-flag`` pair.
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
    """The option values a TOML config file sets, checked against ``parser``.

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file.
    parser : argparse.ArgumentParser
        The subcommand's parser, whose options (and their types and choices) the keys name.

    Returns
    -------
    dict
        The values by ``dest``, converted as the command line would convert them.

    Raises
    ------
    UsageError
        Naming the file, for an unreadable file, an unknown key, a bad value, or two options
        that exclude each other.
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
    """The options a run used, as JSON-ready values (for ``summary.json``).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    dict
        Every option by ``dest``, sorted; paths as text and tuples as lists.
    """
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
    """``path`` as a local path.

    Parameters
    ----------
    path : str or os.PathLike
        An output named on the command line.
    what : str
        What it is, for the message ("output", "checkpoint" ...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    UsageError
        For a URL (``s3://...``), which dasksom cannot write.
    """
    from dasksom.io.atomic import local_path

    try:
        return local_path(path, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cannot_create_in(folder: Path) -> str | None:
    """Why no file can be created in the existing ``folder``, or None when one can.

    Tries it (a temporary file, removed at once): permission bits say nothing to root, nor
    about read-only or special file systems.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".dasksom-write-check-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def check_writable(path: Path, what: str, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work is done, an output that cannot be written; creates nothing.

    Parameters
    ----------
    path : pathlib.Path
        The output: a folder, or a file.
    what : str
        What it is, for the message ("output folder", "checkpoint" ...).
    option : str
        The option that names it, for the message ("--output").
    folder : bool, default=False
        ``path`` is a folder (created when missing) rather than a file.

    Raises
    ------
    RunError
        In one line naming the path and what to do: a part of the path is a file, the path
        is a folder where a file is wanted (or a file where a folder is), or no file can be
        created where the output goes.
    """
    target = Path(os.path.abspath(path))
    problem = None
    if folder and target.exists() and not target.is_dir():
        problem = "it is a file, not a folder"
    elif not folder and target.is_dir():
        problem = "it is a folder, not a file"
    elif not folder and target.is_file() and not os.access(target, os.W_OK):
        problem = "the file is read-only"
    else:
        existing = target if folder else target.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            problem = f"{str(existing)!r} is a file, not a folder"
        elif (reason := _cannot_create_in(existing)) is not None:
            problem = f"no file can be created in {str(existing)!r} ({reason})"
    if problem is not None:
        raise RunError(
            f"cannot write the {what} {os.fspath(path)!r}: {problem}; give {option} a path in "
            "a folder you can write to (or fix that folder's permissions)"
        )
