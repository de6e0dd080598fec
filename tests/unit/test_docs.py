"""The documentation: the README stays short and keeps the test command, every link between the pages lands on a
heading, and the configuration reference lists every key the daemon accepts."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from captioner.config import Config, load

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
CONFIG_REFERENCE = ROOT / "docs" / "configuration.md"


def _without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _without_code_blocks(page.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def _links(page: Path) -> Iterator[str]:
    for m in re.finditer(r"\]\(([^)\s]+)\)", _without_code_blocks(page.read_text(encoding="utf-8"))):
        if not re.match(r"[a-z]+:", m.group(1)):  # http:, https:, mailto: leave the repository
            yield m.group(1)


def test_there_are_pages_to_check() -> None:
    assert len(PAGES) >= 5
    assert all(page.stat().st_size > 0 for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_internal_link_lands_on_a_file_and_heading(page: Path) -> None:
    broken = []
    for link in _links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no such heading in {target.name}")
    assert not broken, broken


def test_readme_is_short_and_keeps_the_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 350
    assert "sudo bash tests/run.sh" in text
    assert "captioner demo" in text
    assert "](docs/development.md)" in text


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec bash tests/run\.sh$", ci, flags=re.M)


def _models(ann: object) -> list[type[BaseModel]]:
    """The models a list item may be: one, or each member of a union of them."""
    members = typing.get_args(ann) if isinstance(ann, types.UnionType) else (ann,)
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every leaf key of the config, list items as `name[].`."""
    for name, field in model.model_fields.items():
        ann, path = field.annotation, prefix + name
        args = typing.get_args(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _config_keys(ann, path + ".")
        elif typing.get_origin(ann) is tuple and _models(args[0]):
            yield path
            for item in _models(args[0]):  # outputs: each kind of entry has its own keys
                yield from _config_keys(item, path + "[].")
        else:
            yield path


def _documented_rows() -> dict[str, str]:
    """Key -> its table row. A cell may name several keys; `.name` continues the previous key's parent."""
    rows: dict[str, str] = {}
    for line in CONFIG_REFERENCE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        parent = ""
        for key in re.findall(r"`([^`]+)`", line.split("|")[1]):
            key = parent + key if key.startswith(".") else key
            parent = key.rsplit(".", 1)[0]
            rows[key] = line
    return rows


def test_configuration_reference_lists_every_key() -> None:
    rows = _documented_rows()
    missing = []
    for key in _config_keys(Config):
        if key in rows:
            continue
        # A key of a list item or an override may be named inside its parent's row instead of a row of its own:
        # outputs[].layout takes any layout key; vocabulary.replacements lists its entries' fields.
        parent, _, leaf = key.rpartition(".")
        parents = [parent, parent.removesuffix("[]")]
        if parent.startswith("outputs[].layout"):
            continue
        if not any(p in rows and f"`{leaf}`" in rows[p] for p in parents):
            missing.append(key)
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_readme_example_config_is_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert blocks, "the README shows an example config"
    config = tmp_path / "config.yaml"
    config.write_text(blocks[0], encoding="utf-8")
    cfg = load(config, {"DASHSCOPE_API_KEY": "k", "OBS_WEBSOCKET_PASSWORD": "p"})
    assert cfg.languages() == ("ja", "es", "source")
