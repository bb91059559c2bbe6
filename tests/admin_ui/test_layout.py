"""The admin panel's shape, checked like its behaviour: no import cycle, the NiceGUI modules
reach the domain only through ``admin_ui.domain_api`` and ``admin_ui.queries``, every admin
page behind the one sign-in guard, and modules of a readable size.

(``lint-imports`` keeps NiceGUI out of ``admin_ui.queries``; these are the rules it cannot
state.)
"""

from __future__ import annotations

import re

import grimp
import pytest

from core.settings import REPO_ROOT

ADMIN_UI = REPO_ROOT / "admin_ui"
MAX_LINES = 500
# Pages anyone may open: they have checks of their own (a paired device, none at all).
PUBLIC_PAGES = {"terminal.py", "enroll.py"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("admin_ui", "domain", "nicegui", cache_dir=None)


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle or several."""
    modules = sorted(m for m in graph.modules if m.startswith(package))
    edges = {
        m: sorted(x for x in graph.find_modules_directly_imported_by(m) if x.startswith(package))
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for m in modules:
        if m not in index:
            visit(m)
    return found


def test_the_admin_panel_has_no_import_cycle(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph, "admin_ui") == []


def test_nicegui_modules_reach_the_domain_through_domain_api_and_queries(
    graph: grimp.ImportGraph,
) -> None:
    direct: dict[str, list[str]] = {}
    for module in sorted(m for m in graph.modules if m.startswith("admin_ui")):
        imported = graph.find_modules_directly_imported_by(module)
        if not any(m == "nicegui" or m.startswith("nicegui.") for m in imported):
            continue
        domain = sorted(m for m in imported if m == "domain" or m.startswith("domain."))
        if domain:
            direct[module] = domain
    assert direct == {}


def test_every_admin_page_is_behind_the_sign_in_guard() -> None:
    unguarded = []
    for path in sorted((ADMIN_UI / "pages").glob("*.py")):
        if path.name in PUBLIC_PAGES:
            continue
        source = path.read_text(encoding="utf-8")
        unguarded += [f"{path.name}: {m}" for m in re.findall(r"@ui\.page\([^)]*\)", source)]
        if "current_principal" in source:
            unguarded.append(f"{path.name}: checks the sign-in by hand")
    assert unguarded == []


def test_no_module_of_the_panel_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(REPO_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(ADMIN_UI.rglob("*.py"))
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
