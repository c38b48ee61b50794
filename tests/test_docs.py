"""The docs site: every page is in the nav, links resolve, and getting-started code runs.

The API reference (``docs/api/``) is generated from the docstrings: it covers every name of
every public module's ``__all__``, and no page names a private module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import seawall
from _paths import ROOT

DOCS = ROOT / "docs"
#: Every page of the site, relative to docs/ (docs/_griffe holds build helpers, not pages).
PAGES = sorted(
    p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_griffe" not in p.parts
)
GETTING_STARTED = DOCS / "getting-started.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")

#: Sections every primitive's page has (STYLE.md: the docs page skeleton), as heading prefixes.
SKELETON = (
    "What ",
    "Usage",
    "Defaults",
    "State",
    "Events and metrics",
    "Testing",
    "Anti-patterns",
)
PRIMITIVES = (
    "circuit-breaker.md",
    "rate-limiter.md",
    "bulkhead.md",
    "retry-timeout.md",
    "watchdog.md",
    "heartbeat.md",
    "graceful-shutdown.md",
    "stores.md",
    "asgi.md",
    "httpx.md",
)


def mkdocs_config() -> dict[str, Any]:
    """mkdocs.yml, read with PyYAML; ``!!python/name:`` tags become their dotted name."""
    import yaml as _yaml

    yaml: Any = _yaml
    loader: Any = type("Loader", (yaml.SafeLoader,), {})

    def python_name(loader: Any, suffix: str, node: Any) -> str:
        return suffix

    loader.add_multi_constructor("tag:yaml.org,2002:python/name:", python_name)
    loaded: dict[str, Any] = yaml.load((ROOT / "mkdocs.yml").read_text("utf-8"), Loader=loader)
    return loaded


def nav_pages(node: Any) -> list[str]:
    """Every page path in a (nested) mkdocs nav, in order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    return [page for item in node for page in nav_pages(item)]


def test_every_page_is_in_the_nav_exactly_once() -> None:
    """Each page under docs/ appears once in mkdocs.yml's nav, and the nav names no other file."""
    pages = nav_pages(mkdocs_config()["nav"])
    assert sorted(pages) == PAGES
    assert len(pages) == len(set(pages))


def test_site_is_built_in_strict_mode() -> None:
    """mkdocs.yml turns warnings (broken links, pages missing from the nav) into errors."""
    config = mkdocs_config()
    assert config["strict"] is True
    assert config["validation"]["nav"]["omitted_files"] == "warn"
    assert config["validation"]["links"]["not_found"] == "warn"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_and_images_resolve(page: str) -> None:
    """Every relative link or image in a page points at a file in docs/ (and a real heading)."""
    text = (DOCS / page).read_text("utf-8")
    missing = []
    for target in LINK.findall(text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        if not resolves((DOCS / page).parent / path, anchor):
            missing.append(target)
    assert missing == []


def resolves(target: Path, anchor: str) -> bool:
    """A file under docs/ (mkdocs serves nothing else) with the anchor, if one is given."""
    path = target.resolve()
    if not path.is_relative_to(DOCS) or not path.is_file():
        return False
    return not anchor or anchor in anchors(path.read_text("utf-8"))


def anchors(text: str) -> set[str]:
    """The ids mkdocs gives the headings of a page (lower case, punctuation dropped)."""
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


@pytest.mark.parametrize("page", PRIMITIVES)
def test_primitive_pages_follow_the_skeleton(page: str) -> None:
    """Each primitive's page has the skeleton's sections, in the skeleton's order."""
    headings = re.findall(r"^## (.+)$", (DOCS / page).read_text("utf-8"), re.MULTILINE)
    found = [next((i for i, h in enumerate(headings) if h.startswith(s)), -1) for s in SKELETON]
    assert -1 not in found, dict(zip(SKELETON, found, strict=True))
    assert found == sorted(found)


def getting_started_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(GETTING_STARTED.read_text("utf-8"))


def test_getting_started_has_sync_async_and_test_examples() -> None:
    """Getting started shows four complete programs: breaker, limiter, async, FakeClock."""
    blocks = getting_started_blocks()
    assert len(blocks) == 4
    assert "anyio.run(main)" in blocks[2]
    assert "FakeClock" in blocks[3]


@pytest.mark.parametrize("index", range(4))
def test_getting_started_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Each Python block on the getting-started page compiles and runs to completion."""
    source = getting_started_blocks()[index]
    code = compile(source, f"getting-started.md block {index}", "exec")
    exec(code, {"__name__": "__main__"})  # the blocks assert their own outcomes
    capsys.readouterr()


#: Complete programs on other pages: (page, the heading of the section holding them).
RUNNABLE_SECTIONS = (
    ("stores.md", "## Testing with FakeClock"),
    ("migration.md", "## Step 4: make the tests fast"),
    ("testing.md", "## An application's tests"),
    ("httpx.md", "## Per-request overrides"),
)


@pytest.mark.parametrize(("page", "heading"), RUNNABLE_SECTIONS)
def test_complete_examples_on_other_pages_run(
    page: str, heading: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The self-contained test examples on the stores and migration pages run as written."""
    section = (DOCS / page).read_text("utf-8").split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    blocks = PYTHON_BLOCK.findall(section)
    assert len(blocks) == 1
    exec(compile(blocks[0], f"{page} {heading}", "exec"), {"__name__": "__main__"})
    capsys.readouterr()


def test_other_python_blocks_compile() -> None:
    """Python blocks on every page are valid syntax, read as the body of an async function."""
    bad = []
    for page in sorted(DOCS.rglob("*.md")):
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text("utf-8"))):
            try:
                # Snippets may await, return or use names defined elsewhere: only syntax counts.
                compile(
                    "async def _snippet():\n" + textwrap.indent(block, "    ") + "    pass\n",
                    page.name,
                    "exec",
                )
            except SyntaxError as exc:
                bad.append(f"{page.name} block {number}: {exc.msg} (line {exc.lineno})")
    assert bad == []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with `mkdocs build --strict` (any warning fails the build)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    site_dir = tmp_path_factory.mktemp("site")
    build(load_config(str(ROOT / "mkdocs.yml"), site_dir=str(site_dir), strict=True))
    return site_dir


def test_mkdocs_build_strict_passes(site: Path) -> None:
    """`mkdocs build --strict` succeeds (mkdocs-material, mkdocstrings: in the test extra)."""
    assert (site / "getting-started" / "index.html").is_file()
    assert (site / "api" / "seawall" / "index.html").is_file()


def public_modules() -> list[ModuleType]:
    """seawall and every module under it whose dotted path has no ``_private`` part."""
    names = ["seawall"] + [
        info.name
        for info in pkgutil.walk_packages(seawall.__path__, "seawall.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [importlib.import_module(name) for name in sorted(names)]


#: ``::: seawall.asgi``: the mkdocstrings directive that renders a module on a page.
DIRECTIVE = re.compile(r"^::: ([\w.]+)$", re.MULTILINE)


def api_pages() -> dict[str, str]:
    """Which page under docs/api/ renders each module, from the pages' ``:::`` directives."""
    found: dict[str, str] = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for module in DIRECTIVE.findall(page.read_text("utf-8")):
            assert module not in found, f"{module} rendered by {found[module]} and {page.name}"
            found[module] = page.name
    return found


def test_every_public_module_has_its_own_api_page() -> None:
    """Each public module has its own page in docs/api/, and no other module has one."""
    pages = api_pages()
    assert sorted(pages) == [module.__name__ for module in public_modules()]
    assert len(set(pages.values())) == len(pages)


def test_every_exported_name_is_in_the_reference(site: Path) -> None:
    """Each name of each public module's __all__ has an entry in the reference, by public path."""
    pages = api_pages()
    missing = []
    for module in public_modules():
        html = (site / "api" / Path(pages[module.__name__]).stem / "index.html").read_text("utf-8")
        for name in getattr(module, "__all__", ()):
            if f'id="{module.__name__}.{name}"' not in html:
                missing.append(f"{module.__name__}.{name}")
    assert missing == []


#: A private module named by its dotted or file path: seawall._retry, seawall.stores._rules,
#: src/seawall/_cli/main.py (dunders such as seawall.__version__ are public).
PRIVATE_PATH = re.compile(r"\bseawall(?:[./][A-Za-z]\w*)*[./]_(?!_)\w+")


def private_module_names() -> set[str]:
    """The last part of every private module's name (_retry, _rules, _demo...)."""
    return {
        info.name.rsplit(".", 1)[-1]
        for info in pkgutil.walk_packages(seawall.__path__, "seawall.", onerror=lambda _: None)
        if info.name.rsplit(".", 1)[-1].startswith("_")
    }


#: Pages for contributors, which describe the private layout on purpose.
CONTRIBUTOR_PAGES = {"architecture.md", "mutation.md"}


@pytest.mark.parametrize("page", [p for p in PAGES if p not in CONTRIBUTOR_PAGES])
def test_no_page_names_a_private_module(page: str) -> None:
    """A page names no private module, by dotted path, file path or bare name (`_monitor`)."""
    text = (DOCS / page).read_text("utf-8")
    names = "|".join(sorted(private_module_names()))
    bare = re.compile(rf"`(?:{names})(?:\.py)?[`.]")
    assert PRIVATE_PATH.findall(text) + bare.findall(text) == []


def test_reference_names_no_private_module(site: Path) -> None:
    """The rendered reference, tooltips and links included, shows public paths only."""
    found = {
        page.parent.name: sorted(set(PRIVATE_PATH.findall(page.read_text("utf-8"))))
        for page in (site / "api").glob("*/index.html")
    }
    assert {name: paths for name, paths in found.items() if paths} == {}
