"""No module outside strategies/ compares a strategy's name, checked on the source with ``ast``.

What callers need to know about a strategy (its phases, how its batch is drawn, the score beyond its batch,
its cold start, multi-label, its cluster form) it declares in the registry (assay.strategies.registry); a
caller that compares names re-derives one of those, and goes wrong when a strategy is added or configured.
The marks a queue row carries for a cold start or the queue beyond the batch are data users see: the
registry builds them (``cold_start_label``, ``beyond_label``), and nothing parses them back.
"""
from __future__ import annotations

import ast
import pathlib

from assay import strategies

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"  # every module of assay outside assay.strategies (strategies/ is its own folder)
NAMES = frozenset(strategies.available())
MARKS = (strategies.cold_start_label(""), strategies.beyond_label(""))  # " (cold start)", " (beyond the batch)"
PARSING = {"startswith", "endswith", "partition", "rpartition", "split", "rsplit", "removeprefix", "removesuffix"}

# (file, the line's text, why a literal equal to a strategy's name is not one there).
ALLOWED = {
    ("server/learning/zeroshot.py", 'if names == "random":'):
        "the label_names setting's value 'random' (random strings of letters), not the strategy",
}


def _is_name_literal(node) -> bool:
    """A string that is a strategy's name or a mark ("... (cold start)")."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and (
        node.value in NAMES or node.value.endswith(MARKS))


def _is_strategy_name(node) -> bool:
    """``<a strategy>.name``: an attribute ``name`` of an expression that says it is a strategy."""
    return isinstance(node, ast.Attribute) and node.attr == "name" and "strateg" in ast.unparse(node.value).lower()


def _names_a_strategy(node) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_strategy(e) for e in node.elts)
    return _is_name_literal(node) or _is_strategy_name(node)


def violations(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, what) of every place ``source`` compares or parses a strategy's name or a mark, or builds a mark."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            if any(_names_a_strategy(side) for side in (node.left, *node.comparators)):
                found.append((node.lineno, "compares a strategy's name"))
        elif isinstance(node, ast.MatchValue) and _is_name_literal(node.value):
            found.append((node.lineno, "matches a strategy's name"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PARSING:
            subject = node.func.value
            if _is_strategy_name(subject) or "strateg" in ast.unparse(subject).lower() or \
                    any(_is_name_literal(arg) for arg in node.args):
                found.append((node.lineno, f"parses a strategy's name or mark ({node.func.attr})"))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if any(mark.strip() in text for mark in MARKS):
                found.append((node.lineno, "builds a mark (use strategies.cold_start_label / beyond_label)"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(MARKS) \
                and node.value not in MARKS:
            found.append((node.lineno, "writes a mark out (use strategies.cold_start_label / beyond_label)"))
    return found


def _server_files() -> list[pathlib.Path]:
    return sorted(SERVER.rglob("*.py"))


def test_no_module_outside_strategies_compares_a_strategy_name():
    bad = []
    for path in _server_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, what in violations(path.read_text(encoding="utf-8"), rel):
            if (rel, lines[line - 1].strip()) not in ALLOWED:
                bad.append(f"{rel}:{line}: {what}: {lines[line - 1].strip()}")
    assert not bad, "read the strategy's declaration instead (assay.strategies.registry.Strategy):\n" + \
        "\n".join(bad)


def test_the_scan_sees_the_server_and_the_names():
    """Not vacuous: it reads the whole package and knows the registry's names."""
    assert len(_server_files()) > 80
    assert {"random", "default", "margin", "dpp", "typiclust"} <= NAMES
    assert MARKS == (" (cold start)", " (beyond the batch)")


def test_each_allowance_is_still_needed():
    for rel, text in ALLOWED:
        source = (ROOT / rel).read_text(encoding="utf-8")
        lines = source.splitlines()
        assert any(lines[line - 1].strip() == text for line, _ in violations(source, rel)), (rel, text)


PLANTED = '''
def pick(strategy, project, result, row, s, plan, strategy_name):
    if strategy.name == "default":                                   # 3
        pass
    if strategy_name == "random":                                    # 5
        pass
    if project["strategy"] in ("dpp", "influence"):                  # 7
        pass
    if strategies.get(name).name != other:                           # 9
        pass
    if result.more_strategy.startswith("random"):                    # 11
        pass
    mode, _, base = strategy.name.partition("_")                     # 13
    label = f"{name} (beyond the batch)"                             # 14
    if row["strategy"] == "margin (beyond the batch)":               # 15
        pass
    if s == "typiclust (cold start)":                                # 17
        pass
    match strategy_name:
        case "badge":                                                # 20
            pass
    if plan["score"] == "dpp":                                       # 22
        pass
    ok = ep.name == name                                             # 24: an entry point's name, not a strategy's
    ok = kind in ("int", "number")                                   # 25: not a strategy's name
'''


def test_it_catches_each_kind_of_planted_comparison():
    found = {line for line, _ in violations(PLANTED)}
    assert found == {3, 5, 7, 9, 11, 13, 14, 15, 17, 20, 22}, sorted(found)
