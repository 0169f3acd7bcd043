"""The package's layout (salt_tf/__init__.py): every module sits in a package by concern, imports run
one way (each package imports only those below it), modules import no circle, and no module takes
another's private names. Read from the source with ``ast``: nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower first. training and seismic stand side by side: neither may import the other.
LEVELS = {"common": 0, "tiles": 1, "model": 2, "run": 3, "inference": 4, "training": 5, "seismic": 5}
LIMITS = {"module_lines": 440, "function_lines": 65}  # "about 400" and "about 60" (issue 37)


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``package`` (a folder named like the package)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]):
    """(line, imported module, names taken from it, the name it is bound to or None) for every import
    of a module of ``known`` in the file, at any depth (imports inside functions count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:  # ``import a.b.c`` binds ``a``; ``import a.b.c as m``, ``m``
                    yield node.lineno, alias.name, (), alias.asname
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # ``from salt_tf.tiles import rle``: the module rle
                    yield node.lineno, sub, (), alias.asname or alias.name
                elif base in known:
                    yield node.lineno, base, (alias.name,), None


def private_attributes(path: Path, bound: dict[str, str]):
    """(line, module, name) for each ``alias._name`` where ``alias`` is bound to another salt_tf module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            yield node.lineno, bound[node.value.id], node.attr


def check_layout(package: Path) -> list[str]:
    """Every breach of the layout's rules under ``package``, one line each naming the file and the import."""
    known = modules(package)
    top = package.name
    problems, edges = [], {}

    def level_of(name: str):
        parts = name.split(".")
        return parts[1] if len(parts) > 1 else None

    for name, path in known.items():
        where = path.relative_to(package.parent)
        own = level_of(name)
        if own is None and name != top or (own is not None and own not in LEVELS):
            problems.append(f"{where}: a module outside the packages {sorted(LEVELS)}")
        bound = {}
        for line, target, names, alias in imports(path, name, known):
            edges.setdefault(name, {}).setdefault(target, line)
            other = level_of(target)
            if own in LEVELS and other in LEVELS and other != own and LEVELS[other] >= LEVELS[own]:
                side = "beside" if LEVELS[other] == LEVELS[own] else "above"
                problems.append(f"{where}:{line}: imports {target}, a package {side} {own}")
            for taken in names:
                if taken.startswith("_") and target != name:
                    problems.append(f"{where}:{line}: takes the private name {taken} from {target}")
            if alias:
                bound[alias] = target
        for line, target, attr in private_attributes(path, bound):
            if target != name:
                problems.append(f"{where}:{line}: uses the private name {attr} of {target}")
    return problems + circles(edges, known, package)


def circles(edges: dict[str, dict[str, int]], known: dict[str, Path], package: Path) -> list[str]:
    """One line per import circle: each module with the line where it imports the next."""
    found, state, stack = [], {}, []

    def visit(name: str) -> None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(edges.get(name, {})):
            if state.get(target) == "open":
                loop = stack[stack.index(target):] + [target]
                steps = [f"{known[a].relative_to(package.parent)}:{edges[a][b]} imports {b}" for a, b in zip(loop, loop[1:])]
                found.append("import circle: " + " -> ".join(steps))
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(known):
        if name not in state:
            visit(name)
    return found


def sizes(package: Path) -> list[str]:
    """Modules and functions over the limits."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(package.parent)
        if len(text.splitlines()) > LIMITS["module_lines"]:
            problems.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LIMITS["function_lines"]:
                    problems.append(f"{where}:{node.lineno}: {node.name} has {length} lines")
    return problems


def test_salt_tf_follows_its_layout():
    assert check_layout(ROOT / "salt_tf") == []


def test_no_module_or_function_outgrows_a_screen_or_two():
    assert sizes(ROOT / "salt_tf") == []


def test_every_package_says_what_it_holds_and_what_it_may_import():
    for name in LEVELS:
        doc = ast.get_docstring(ast.parse((ROOT / "salt_tf" / name / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), name
    assert all(f"``{name}``" in ast.get_docstring(ast.parse((ROOT / "salt_tf" / "__init__.py").read_text()))
               for name in LEVELS)


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "salt_tf"
    for relative, text in {"__init__.py": "", **files}.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name != "__init__.py":
            (path.parent / "__init__.py").touch()
        path.write_text(text)
    return package


def test_a_circle_inside_a_package_is_found_even_through_a_function_level_import(tmp_path):
    # Yesterday's first circle: deliverables imported segment's Input inside TYPE_CHECKING, segment
    # imported deliverables' write_outputs.
    package = _tree(tmp_path, {
        "seismic/segment.py": "from salt_tf.seismic.deliverables import write_outputs\n",
        "seismic/deliverables.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from salt_tf.seismic.segment import Input\n",
    })
    assert check_layout(package) == [
        "import circle: salt_tf/seismic/deliverables.py:3 imports salt_tf.seismic.segment -> "
        "salt_tf/seismic/segment.py:1 imports salt_tf.seismic.deliverables"]


def test_yesterdays_synthetic_circle_is_an_upward_import_a_private_name_and_a_circle(tmp_path):
    package = _tree(tmp_path, {
        "tiles/synthetic.py": "def _trace():\n    pass\n\ndef main():\n    from salt_tf.seismic import synthetic\n",
        "seismic/synthetic.py": "from salt_tf.tiles.synthetic import _trace, generate\n",
    })
    problems = check_layout(package)
    assert "salt_tf/tiles/synthetic.py:5: imports salt_tf.seismic.synthetic, a package above tiles" in problems
    assert "salt_tf/seismic/synthetic.py:1: takes the private name _trace from salt_tf.tiles.synthetic" in problems
    assert any(p.startswith("import circle: ") and "tiles/synthetic.py:5" in p for p in problems)
    assert len(problems) == 3


@pytest.mark.parametrize("files, expected", [
    ({"model/unet.py": "from salt_tf.run.config import decoder_widths\n", "run/config.py": ""},
     "salt_tf/model/unet.py:1: imports salt_tf.run.config, a package above model"),
    ({"training/train.py": "from salt_tf.seismic import sections\n", "seismic/sections.py": ""},
     "salt_tf/training/train.py:1: imports salt_tf.seismic.sections, a package beside training"),
    ({"seismic/distributed.py": "from salt_tf.seismic import segment as seg\nn = seg._windows(1, 2, 3)\n",
      "seismic/segment.py": "def _windows(a, b, c):\n    return 1\n"},
     "salt_tf/seismic/distributed.py:2: uses the private name _windows of salt_tf.seismic.segment"),
    ({"seismic/linestore.py": "from .segment import _windows\n", "seismic/segment.py": ""},
     "salt_tf/seismic/linestore.py:1: takes the private name _windows from salt_tf.seismic.segment"),
    ({"helpers.py": "import os\n"}, "salt_tf/helpers.py: a module outside the packages"),
])
def test_each_rule_names_the_file_and_the_import(tmp_path, files, expected):
    problems = check_layout(_tree(tmp_path, files))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_imports_down_and_within_a_package_pass(tmp_path):
    package = _tree(tmp_path, {
        "common/atomic.py": "",
        "tiles/rle.py": "from salt_tf.common import atomic\n",
        "seismic/segment.py": "from salt_tf.tiles import rle\nfrom salt_tf.seismic import sections\nsections.count_windows\n",
        "seismic/sections.py": "from salt_tf.common.atomic import write_text\n",
    })
    assert check_layout(package) == []


def test_the_readmes_map_names_every_package_and_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("### Layout"):]
    for name, path in modules(ROOT / "salt_tf").items():
        relative = path.relative_to(ROOT / "salt_tf")
        shown = f"`salt_tf/{relative.parent}/`" if path.name == "__init__.py" else f"`{relative}`"
        assert name == "salt_tf" or shown in layout, shown
