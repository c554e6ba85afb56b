"""The layout's rules, checked from the source: data flows down, no cycles, small modules.

Layers, top to bottom: scripts/ and evaluation/ (what people run) -> handler.py -> multichannel.py ->
config.py, diarization_utils.py -> the speech_endpoint package. A module never imports
one above it, and the package's modules form no import cycle.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = {"handler", "config", "diarization_utils", "multichannel"}
ABOVE_PACKAGE = TOP_LEVEL | {"scripts", "evaluation", "tests", "support"}
MAX_PRODUCTION_LINES = 300


def production_files() -> list[Path]:
    return [REPO / f"{name}.py" for name in sorted(TOP_LEVEL)] + sorted((REPO / "speech_endpoint").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("path", sorted((REPO / "speech_endpoint").rglob("*.py")), ids=lambda p: module_name(p))
def test_the_package_never_imports_a_module_above_it(path):
    upward = {name for name in imported_modules(path) if name.split(".")[0] in ABOVE_PACKAGE}
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


def test_top_level_modules_import_only_down():
    allowed = {"handler": {"config", "diarization_utils", "multichannel"}, "config": set(), "diarization_utils": set(),
               "multichannel": {"diarization_utils"}}
    for name, may in allowed.items():
        upward = {m for m in imported_modules(REPO / f"{name}.py")
                  if m.split(".")[0] in ABOVE_PACKAGE and m.split(".")[0] not in may}
        assert not upward, f"{name} imports {sorted(upward)}"


def test_no_import_cycles_in_the_package():
    modules = {module_name(p): p for p in (REPO / "speech_endpoint").rglob("*.py")}
    graph = {name: {m for m in imported_modules(path) if m in modules and m != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("path", production_files(), ids=lambda p: module_name(p))
def test_production_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines < MAX_PRODUCTION_LINES, f"{module_name(path)} has {lines} lines"


def test_no_file_edits_sys_path_except_the_platform_loader():
    offenders = []
    for path in REPO.rglob("*.py"):
        if any(part.startswith(".venv") for part in path.parts) or path.name == "test_architecture.py":
            continue
        text = path.read_text()
        if "sys.path.insert" in text or "sys.path.append" in text or "sys.path[:0]" in text:
            offenders.append(str(path.relative_to(REPO)))
    # The platform puts the handler's folder on sys.path; the local server does the same.
    assert set(offenders) <= {"speech_endpoint/serving/loading.py"}, offenders
