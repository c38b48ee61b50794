"""A Griffe extension for the API reference: seawall's reST docstrings, read as Markdown.

seawall's docstrings are written for ``help()`` and for readers of the source, in the reST
dialect Python itself uses (``:class:`Retry```, ``text::`` before an example). mkdocstrings
renders docstrings as Markdown, where a role would show up as literal ``:class:`` noise. This
extension rewrites, in the copy Griffe loads (never in the source):

* a role ``:class:`~seawall.Retry``` or ``:func:`emit``` into a code span of the name the
  reader would see (the last dotted part when the target starts with ``~``);
* a paragraph ending in ``::`` into one ending in ``:``; the indented block after it is
  already a Markdown code block.

It also hides, for instance attributes, the expression ``__init__`` assigns them (a
validation call, not a value), and drops special members (``__enter__``, ``__repr__``,
``__slots__``) from classes, except ``__init__`` (merged into the class's signature) and
``__call__`` (how middleware and key functions are used): the class docstrings say which
protocols (``with``, ``async with``) a class supports, and the reference lists what a class
offers by name. Finally it drops, from the bases a class shows, the private ones
(``LimiterBase``): inherited members are listed on the class itself, and a base the reader
cannot import is noise.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# :class:`~a.b.C`  :meth:`x`  :data:`label <target>`  (Sphinx's cross-reference roles)
ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`<]+?)(?:\s*<[^`>]+>)?`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)
KEPT_SPECIAL = frozenset({"__init__", "__call__"})


def as_markdown(text: str) -> str:
    """The docstring ``text`` with roles as code spans and ``::`` paragraphs ending in ``:``."""

    def span(match: re.Match[str]) -> str:
        tilde, target = match.group(1), match.group(2).strip()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        return f"`{shown}`"

    return LITERAL_BLOCK.sub(":", ROLE.sub(span, text))


class PublicReference(griffe.Extension):
    """Rewrites every loaded docstring with :func:`as_markdown`; drops special members."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = as_markdown(obj.docstring.value)

    def on_class(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        """Remove the special members of ``cls`` the reference does not list; hide how
        ``__init__`` computes instance attributes (``attempts = check_int(...)``)."""
        for name, member in list(cls.members.items()):
            if name.startswith("__") and name.endswith("__") and name not in KEPT_SPECIAL:
                del cls.members[name]
            elif isinstance(member, griffe.Attribute) and "instance-attribute" in member.labels:
                member.value = None

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Keep, as bases of each class, only outside classes and seawall's public ones."""
        public = public_targets(pkg)
        for cls in classes(pkg):
            cls.bases = [
                base
                for base in cls.bases
                if not str(getattr(base, "canonical_path", "")).startswith(pkg.name + ".")
                or str(getattr(base, "canonical_path", "")) in public
            ]


def public_modules(module: griffe.Module) -> list[griffe.Module]:
    """``module`` and its submodules whose names do not start with an underscore."""
    found = [module]
    for sub in module.modules.values():
        if not sub.is_alias and not sub.name.startswith("_"):
            found.extend(public_modules(sub))
    return found


def public_targets(pkg: griffe.Module) -> set[str]:
    """Where every name of every public module's ``__all__`` is defined (its canonical path)."""
    targets = set()
    for module in public_modules(pkg):
        for name in module.exports or ():
            member = module.members.get(str(name))
            if member is not None:
                targets.add(member.target_path if isinstance(member, griffe.Alias) else member.path)
    return targets


def classes(module: griffe.Module) -> list[griffe.Class]:
    """Every class defined in ``module`` or its submodules, nested classes included."""
    found: list[griffe.Class] = []
    todo: list[griffe.Object] = [module]
    while todo:
        obj = todo.pop()
        for member in obj.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Class):
                found.append(member)
            if isinstance(member, griffe.Module | griffe.Class):
                todo.append(member)
    return found
