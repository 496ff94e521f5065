"""The layout's rules that `lint-imports` cannot state: no import circle anywhere in the project.

`lint-imports` (run by `make test`, contracts in `.importlinter`) checks the layers and the
forbidden and protected imports; this test checks the graph itself has no cycle, counting imports
made inside functions and under `TYPE_CHECKING` too (a circle held apart by a lazy import is still
a circle a reader must untangle).
"""

from __future__ import annotations

import grimp

PACKAGES = ("contracts", "bus", "services", "oh", "panel_app", "oh_dagster")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph; only components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph.modules or not child.startswith(PACKAGES):
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(graph.modules):
        if module.startswith(PACKAGES) and module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    """No module reaches itself through imports, type-only and function-level imports included."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    assert strongly_connected(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: a three-module circle is reported (so an empty answer above means something)."""
    graph = grimp.ImportGraph()
    for name in ("oh.a", "oh.b", "oh.c", "oh.d"):
        graph.add_module(name)
    graph.add_import(importer="oh.a", imported="oh.b")
    graph.add_import(importer="oh.b", imported="oh.c")
    graph.add_import(importer="oh.c", imported="oh.a")
    graph.add_import(importer="oh.c", imported="oh.d")
    assert strongly_connected(graph) == [["oh.a", "oh.b", "oh.c"]]
