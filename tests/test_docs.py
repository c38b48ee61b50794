"""The docs site: every page is in the nav, links resolve, and getting-started code runs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
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
    """Each docs/*.md appears once in mkdocs.yml's nav, and the nav names no other file."""
    pages = nav_pages(mkdocs_config()["nav"])
    on_disk = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(pages) == on_disk
    assert len(pages) == len(set(pages))


def test_site_is_built_in_strict_mode() -> None:
    """mkdocs.yml turns warnings (broken links, pages missing from the nav) into errors."""
    config = mkdocs_config()
    assert config["strict"] is True
    assert config["validation"]["nav"]["omitted_files"] == "warn"
    assert config["validation"]["links"]["not_found"] == "warn"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_and_images_resolve(page: str) -> None:
    """Every relative link or image in a page points at a file in docs/ (and a real heading)."""
    text = (DOCS / page).read_text("utf-8")
    missing = []
    for target in LINK.findall(text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        if not resolves(path, anchor):
            missing.append(target)
    assert missing == []


def resolves(path: str, anchor: str) -> bool:
    """A file under docs/ (mkdocs serves nothing else) with the anchor, if one is given."""
    if ".." in Path(path).parts or not (DOCS / path).is_file():
        return False
    return not anchor or anchor in anchors((DOCS / path).read_text("utf-8"))


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
    for page in sorted(DOCS.glob("*.md")):
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


def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds (mkdocs-material comes with the test extra)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    build(config)
    assert (tmp_path / "site" / "getting-started" / "index.html").is_file()
