"""The layout's rules, checked from the source: data flows down, no cycles, small modules.

Layers, top to bottom: scripts/ and evaluation/ (what people run) -> handler.py -> multichannel.py ->
request.py -> config.py, diarization_utils.py -> the speech_endpoint package. A module never imports
one above it, and the package's modules form no import cycle.

Inside the package, one folder per stage (`STAGE_IMPORTS` says which stage may import which):
base modules at its root (schema, errors, text, compat) import only each other; speech/
imports base; whisper/ imports speech/ and base; attribution/ imports base only (whisper/ and
attribution/ are siblings); render/ imports attribution/ and base; serving/ imports whisper/
(language names) and base.

Import arrows: distinct (importer, imported) pairs among the package's modules outside
serving/ and apart from __init__.py files, from every import statement of the importer (also
inside functions); `from speech_endpoint.x import y` is an arrow to x, or to x.y where that is
a module. When issue 27 was filed (2a02b9d, 27 flat modules) this count was 51, and 60 at
e6b3485 (31 modules, just before the stage folders); the package must stay below 51.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = {"handler", "config", "diarization_utils", "multichannel", "request"}
ABOVE_PACKAGE = TOP_LEVEL | {"scripts", "evaluation", "tests", "support"}
MAX_PRODUCTION_LINES = 300
BASELINE_ARROWS = 51  # at 2a02b9d, when issue 27 was filed, counted by `package_arrows` (see the module docstring)
STAGE_IMPORTS = {  # stage -> the stages its modules may import (its own included)
    "base": {"base"},
    "speech": {"base", "speech"},
    "whisper": {"base", "speech", "whisper"},
    "attribution": {"base", "attribution"},
    "render": {"base", "attribution", "render"},
    "serving": {"base", "whisper", "serving"},
}


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


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO / "speech_endpoint").rglob("*.py"))}


def package_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports (`from speech_endpoint.x import y` names x,
    or x.y where that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
    return {name for name in found if name in modules}


def stage(module: str) -> str:
    """The stage folder a package module belongs to; "base" for the package's root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "base"


def package_arrows() -> set[tuple[str, str]]:
    modules = {name: path for name, path in package_modules().items()
               if stage(name) != "serving" and path.name != "__init__.py"}
    return {(name, target) for name, path in modules.items()
            for target in package_imports(path, modules) if target != name}


def test_every_package_module_has_a_stage():
    assert {stage(name) for name in package_modules()} <= set(STAGE_IMPORTS)


@pytest.mark.parametrize("path", sorted((REPO / "speech_endpoint").rglob("*.py")), ids=lambda p: module_name(p))
def test_stages_import_only_their_own_or_lower_stages(path):
    name, modules = module_name(path), package_modules()
    allowed = STAGE_IMPORTS[stage(name)]
    wrong = sorted(m for m in package_imports(path, modules) if stage(m) not in allowed and m != "speech_endpoint")
    assert not wrong, f"{name} ({stage(name)}) imports {wrong}"


def test_fewer_import_arrows_than_before_the_stage_folders():
    arrows = package_arrows()
    assert len(arrows) < BASELINE_ARROWS, f"{len(arrows)} import arrows: " + ", ".join(sorted(f"{a}->{b}" for a, b in arrows))


def test_arrow_count_counts_what_it_says():
    """The counting itself: one statement importing two modules is two arrows; no arrow
    from a module to itself; serving/ is left out."""
    arrows = package_arrows()
    assert ("speech_endpoint.whisper.asr", "speech_endpoint.whisper.precision") in arrows  # `from ...whisper import precision, scores`
    assert ("speech_endpoint.whisper.asr", "speech_endpoint.whisper.scores") in arrows
    assert ("speech_endpoint.speech.activity", "speech_endpoint.schema") in arrows
    assert not any(a == b for a, b in arrows)
    assert not any(stage(a) == "serving" or stage(b) == "serving" for a, b in arrows)


@pytest.mark.parametrize("path", sorted((REPO / "speech_endpoint").rglob("*.py")), ids=lambda p: module_name(p))
def test_the_package_never_imports_a_module_above_it(path):
    upward = {name for name in imported_modules(path) if name.split(".")[0] in ABOVE_PACKAGE}
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


def test_top_level_modules_import_only_down():
    allowed = {"handler": {"config", "diarization_utils", "multichannel", "request"}, "config": set(),
               "diarization_utils": set(), "multichannel": {"diarization_utils", "request"}, "request": {"config"}}
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


def test_only_whisper_and_compat_import_transformers():
    """transformers' internals are reached from whisper/ only; compat adapts its public API."""
    reaching = {module_name(p) for p in (REPO / "speech_endpoint").rglob("*.py")
                if any(m.split(".")[0] == "transformers" for m in imported_modules(p))}
    assert {m for m in reaching if stage(m) != "whisper"} <= {"speech_endpoint.compat"}, sorted(reaching)
