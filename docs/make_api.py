"""Build docs/api.md, the API reference, from the docstrings: ``python docs/make_api.py``.

Every public object gets its signature and its docstring.  The numpydoc sections
(Parameters, Returns ...) become bold headings with a list of parameters, and reST markup
(``code``, :func:`name`) becomes Markdown code, so that the page reads well on GitHub.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from types import ModuleType

import dasksom
from dasksom import climate, cytometry, io, plotting
from dasksom.core import analysis
from dasksom.plotting import fields
from dasksom.simpsom import plots

OUT = Path(__file__).resolve().parent / "api.md"
SECTIONS = {"Parameters", "Returns", "Yields", "Raises", "Attributes", "See Also", "Notes"}
LISTED_SECTIONS = {"Parameters", "Returns", "Yields", "Raises", "Attributes"}


def markdown_text(text: str) -> str:
    """reST inline markup as Markdown: ``x`` and :role:`~a.b` become `x` and `b`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return text.replace("``", "`")


def docstring_markdown(obj: object) -> str:
    """An object's docstring with its numpydoc sections turned into Markdown lists."""
    lines = inspect.cleandoc(inspect.getdoc(obj) or "").splitlines()
    out: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        underlined = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if line.strip() in SECTIONS and underlined:
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if section in LISTED_SECTIONS and line and not line.startswith(" "):
            name, _, kind = line.partition(" : ")
            out.append(f"- `{name.strip()}`" + (f" : {markdown_text(kind)}" if kind else ""))
        elif section in LISTED_SECTIONS and line.startswith(" "):
            out.append("  " + markdown_text(line.strip()))
        else:
            out.append(markdown_text(line))
        i += 1
    # A section heading after a blank line of the docstring leaves two: keep one.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def signature(name: str, obj: Callable) -> str:
    """``name(param: annotation = default, ...)`` with one parameter a line when long."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    params = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            annotation = p.annotation if isinstance(p.annotation, str) else repr(p.annotation)
            text += f": {annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    kinds = [p.kind for p in sig.parameters.values() if p.name != "self"]
    if inspect.Parameter.KEYWORD_ONLY in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds:
        params.insert(kinds.index(inspect.Parameter.KEYWORD_ONLY), "*")
    returns = sig.return_annotation
    tail = "" if returns is sig.empty else f" -> {returns}"
    one_line = f"{name}({', '.join(params)}){tail}"
    if len(one_line) <= 90:
        return one_line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){tail}"


def entry(name: str, obj: object, level: int = 3) -> str:
    """A heading (the name without its module), the signature and the docstring."""
    head = "#" * level + " `" + (name.rsplit(".", 1)[-1] if level == 3 else name) + "`"
    if isinstance(obj, property | cached_property):
        return f"{head} (property)\n\n{docstring_markdown(obj)}\n"
    code = signature(name, obj) if callable(obj) else name
    return f"{head}\n\n```python\n{code}\n```\n\n{docstring_markdown(obj)}\n"


def public_members(cls: type) -> Iterator[tuple[str, object]]:
    """The public methods and properties a class defines itself, in source order."""
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if callable(member) or isinstance(member, property | cached_property):
            yield name, member


def class_entry(qualname: str, cls: type) -> str:
    parts = [entry(qualname, cls, level=3)]
    for name, member in public_members(cls):
        parts.append(entry(f"{cls.__name__}.{name}", member, level=4))
    return "\n".join(parts)


def module_functions(module: ModuleType) -> list[str]:
    """Names in ``__all__``, else the public functions and classes defined in the module."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    ]


def module_section(title: str, module: ModuleType) -> str:
    summary = markdown_text((inspect.getdoc(module) or "").split("\n\n")[0])
    parts = [f"## `{title}`\n\n{summary}\n"]
    for name in module_functions(module):
        obj = getattr(module, name)
        home = getattr(obj, "__module__", module.__name__)
        # A package documents what its own modules define; names from elsewhere point there.
        if home != module.__name__ and not home.startswith(f"{module.__name__}."):
            parts.append(f"### `{name}`\n\nRe-exported from `{home}`: see `{home}.{name}`.\n")
        elif inspect.isclass(obj):
            parts.append(class_entry(f"{title}.{name}", obj))
        elif callable(obj):
            parts.append(entry(f"{title}.{name}", obj))
    return "\n".join(parts)


def build() -> str:
    parts = [
        "# API reference\n",
        "Built from the docstrings by `docs/make_api.py`; do not edit by hand.\n",
        "## `dasksom`\n",
        class_entry("dasksom.SOM", dasksom.SOM),
        class_entry("dasksom.SOMNet", dasksom.SOMNet),
        entry("dasksom.load", dasksom.load),
        class_entry("dasksom.Lattice", dasksom.Lattice),
        module_section("dasksom.io", io),
        module_section("dasksom.core.analysis", analysis),
        module_section("dasksom.plotting", plotting),
        module_section("dasksom.simpsom.plots", plots),
        module_section("dasksom.climate", climate),
        module_section("dasksom.plotting.fields", fields),
        module_section("dasksom.cytometry", cytometry),
    ]
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(build())
    print(f"wrote {OUT}")
