"""The walls between varec's modules (docs/architecture.md, "Walls"), read from the source itself, so
that a change that breaks one fails here rather than in a review: `varec --help` stays instant, the
model code stays on Keras 3 and backend-portable, TensorFlow stays in the modules named for it."""

from __future__ import annotations

import ast
from pathlib import Path

import varec_cli

PACKAGE = Path(varec_cli.__file__).parent
HEAVY = {"tensorflow", "keras", "cv2", "av", "matplotlib"}
# Where TensorFlow may be touched: modules named tf_*.py, the SavedModel adapter, and runtime.py (the
# quiet import itself).
TENSORFLOW_MODULES = {"models/savedmodel.py", "runtime.py"}
# Keras layer classes, which need Keras to be defined at all: imported only from inside functions of
# other modules (model building and loading, a stream's head), never by anything the CLI imports.
TOP_LEVEL_KERAS_ALLOWED = {"models/layers.py", "models/stream_head.py"}


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Imports run when the module is imported: at module level, also inside if/try blocks there."""
    names: list[str] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if isinstance(node, ast.ClassDef):
                pending.extend(node.body)  # a class body runs at import too
            continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        names += _imported(node)
        pending.extend(ast.iter_child_nodes(node))
    return names


def test_the_package_was_found():
    modules = _modules()
    assert {"cli.py", "video/reader.py", "models/streaming.py", "models/tf_calls.py"} <= set(modules)


def test_no_heavy_library_is_imported_when_a_module_is_imported():
    """Directly, or through the modules allowed a top-level Keras import (which only functions may
    import)."""
    indirect = {"varec_cli." + name[: -len(".py")].replace("/", ".") for name in TOP_LEVEL_KERAS_ALLOWED}
    offenders = {
        name: sorted({imp for imp in _top_level_imports(tree) if imp.split(".")[0] in HEAVY or imp in indirect})
        for name, tree in _modules().items()
        if name not in TOP_LEVEL_KERAS_ALLOWED
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_tensorflow_is_touched_only_in_the_modules_named_for_it():
    offenders = {}
    for name, tree in _modules().items():
        if Path(name).name.startswith("tf_") or name in TENSORFLOW_MODULES:
            continue
        found = set()
        for node in ast.walk(tree):
            found |= {imp for imp in _imported(node) if imp.split(".")[0] == "tensorflow"}
            if isinstance(node, ast.Name) and node.id == "import_tensorflow":
                found.add("import_tensorflow()")
        if found:
            offenders[name] = sorted(found)
    assert offenders == {}


def test_model_code_uses_keras_3_not_tf_keras():
    offenders = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "keras" and isinstance(node.value, ast.Name):
                if node.value.id in ("tf", "tensorflow"):
                    offenders.append(f"{name}:{node.lineno}")
            if any(imp.startswith("tensorflow.keras") or imp.startswith("tf_keras") for imp in _imported(node)):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_video_reading_knows_nothing_of_models_or_training():
    offenders = []
    for name, tree in _modules().items():
        if not name.startswith("video/"):
            continue
        for node in ast.walk(tree):
            for imp in _imported(node):
                if imp.startswith(("varec_cli.models", "varec_cli.training", "keras", "tensorflow")):
                    offenders.append(f"{name}:{node.lineno} {imp}")
    assert offenders == []


def test_only_the_cli_ends_the_process():
    """Library code raises VarecError; only the entry points (launch.py, cli.py) and commands/ turn
    that into an exit status."""
    offenders = []
    for name, tree in _modules().items():
        if name in ("cli.py", "launch.py", "__main__.py") or name.startswith("commands/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in (("sys", "exit"), ("os", "_exit"), ("typer", "Exit"), ("click", "exceptions")):
                    offenders.append(f"{name}:{node.lineno} {node.value.id}.{node.attr}")
            if isinstance(node, ast.Name) and node.id in ("SystemExit", "Exit") and isinstance(node.ctx, ast.Load):
                offenders.append(f"{name}:{node.lineno} {node.id}")
            if any(imp in ("sys.exit", "os._exit", "typer.Exit", "click.exceptions.Exit") for imp in _imported(node)):
                offenders.append(f"{name}:{node.lineno} import")
    assert offenders == []


def test_no_message_sends_the_user_to_the_repository_docs():
    """A user who installed the wheel (pipx) has no docs/ folder: messages and help texts must stand on
    their own. Docstrings and comments, read by developers, may cite docs/."""
    offenders = []
    for name, tree in _modules().items():
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    docstrings.add(id(first.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if "docs/" in node.value:
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
