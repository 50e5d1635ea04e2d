"""No module of the program imports itself back, directly or through others.

grimp reads every import statement of ``ecms_desktop``, those at module level and those inside
functions alike, so a cycle hidden behind an import inside a function fails here too. Imports made
only for type checking (``if TYPE_CHECKING:``) never run; the ORM classes use them to name each other
in their relationships (``Certificate.customer`` and ``Customer.certificates``), so they are allowed
to form cycles inside ``ecms_desktop.models`` and nowhere else.
"""

from __future__ import annotations

import itertools

import grimp
import pytest

PACKAGE = "ecms_desktop"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
    return found


def _describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    """One cycle through the component, each step with the line that imports."""
    first = component[0]
    back = next(m for m in sorted(graph.find_modules_that_directly_import(first)) if m in component)
    chain = [*(graph.find_shortest_chain(importer=first, imported=back) or (first, back)), first]
    steps = []
    for importer, imported in itertools.pairwise(chain):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = ", ".join(f"line {d['line_number']}: {d['line_contents'].strip()}" for d in details)
        steps.append(f"  {importer} -> {imported}  ({where})")
    return f"{' -> '.join(chain)}\n" + "\n".join(steps)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph)
    assert not cycles, "Import cycles (move what both sides need to the lower one):\n" + "\n".join(
        _describe(graph, c) for c in cycles)


def test_type_only_cycles_stay_inside_the_models() -> None:
    typed = grimp.build_graph(PACKAGE, cache_dir=None)
    outside = [c for c in _cycles(typed) if any(not m.startswith(f"{PACKAGE}.models.") for m in c)]
    assert not outside, "Cycles through type-checking imports outside the ORM models:\n" + "\n".join(
        _describe(typed, c) for c in outside)


def test_the_cycle_finder_names_a_cycle() -> None:
    """The check itself: a graph with a cycle hidden among other imports is reported."""
    g = grimp.ImportGraph()
    for name in ("p.a", "p.b", "p.c", "p.d"):
        g.add_module(name)
    g.add_import(importer="p.a", imported="p.b", line_number=3, line_contents="from p import b")
    g.add_import(importer="p.b", imported="p.c", line_number=9, line_contents="    from p import c")
    g.add_import(importer="p.c", imported="p.a", line_number=4, line_contents="from p import a")
    g.add_import(importer="p.d", imported="p.a", line_number=1, line_contents="from p import a")
    (cycle,) = _cycles(g)
    assert cycle == ["p.a", "p.b", "p.c"]
    assert _describe(g, cycle).splitlines()[0] == "p.a -> p.b -> p.c -> p.a"
