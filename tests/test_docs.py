"""The docs cannot drift from the code: every hookspec is documented in CONTRIBUTING.md with its
exact signature (the reference is generated from the docstrings) and has a named test; every
config key is in the README's configuration reference (generated from config.py)."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pluggy

from ftx import hookspecs

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
]


def load_doc_reference():
    name = "ftx_doc_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "doc_reference.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def spec_functions():
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {
        name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)
    }


def test_all_hooks_are_specs():
    names = set(spec_functions())
    assert {"load_model", "select_trainable", "build_trainer", "export"} <= names
    assert isinstance(hookspecs.hookspec, pluggy.HookspecMarker)


def test_contributing_documents_every_hook_signature():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for name, fn in spec_functions().items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"### `{name}`" in text, f"no section for hook {name}"
        assert f"def {name}({params})" in text, f"signature of {name} differs from the hookspec"


def test_every_hook_has_a_test():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for name in spec_functions():
        assert re.search(rf"hook:\s*{name}\b", tests), f"no test marked 'hook: {name}'"


def test_every_hook_has_a_named_test():
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
        }
    for hook in spec_functions():
        assert any(f"hook_{hook}" in n for n in names), (
            f"no test function named test_hook_{hook}_… in tests/ (add one to tests/test_hooks.py)"
        )


def test_hook_reference_is_generated_from_the_docstrings():
    ref = load_doc_reference().REFERENCES["hooks"]
    assert ref.current() == ref.render(), (
        "CONTRIBUTING.md's hook reference differs from core/ftx/hookspecs.py: "
        "run `python scripts/doc_reference.py --write`"
    )


def test_config_reference_is_generated_from_config_py():
    ref = load_doc_reference().REFERENCES["config"]
    assert ref.current() == ref.render(), (
        "README.md's configuration reference differs from core/ftx/config.py: "
        "run `python scripts/doc_reference.py --write`"
    )


def test_every_config_key_is_documented():
    tables = load_doc_reference().config_tables()
    assert {"model", "data"} <= set(tables)
    text = (ROOT / "README.md").read_text()
    for section, table in tables.items():
        for key, (_, _, help_) in table.items():
            assert f"`{section}.{key}`" in text, f"{section}.{key} is not in README.md"
            assert help_.strip(), f"{section}.{key} has no help string in config.py"


def test_hookspecs_docstring_counts_and_orders_the_hooks():
    doc = hookspecs.__doc__
    specs = spec_functions()
    assert f"{NUMBERS[len(specs)]} hooks" in doc.splitlines()[0]
    block = doc.split("Per-run hooks", 1)[1].split("::", 1)[1].split("\n\n")[1]
    order = [n.strip() for n in block.split("->") if "trainer.train()" not in n]
    per_run = [n for n, fn in specs.items() if "run" in inspect.signature(fn).parameters]
    assert set(order) == set(per_run)  # every per-run hook in the call sequence, no other
    data_hooks = re.findall(r"``(\w+)``", doc.split("Data hooks", 1)[1].split("\n\n")[0])
    declared = re.findall(r"^\* ``(\w+)``:", doc.split("Declarative hooks", 1)[1], re.M)
    assert set(declared) | set(data_hooks) | set(order) == set(specs)
    assert not set(declared) & set(order) and not set(data_hooks) & set(order)
    spec_options = load_doc_reference().spec_options
    every = [n for n, fn in specs.items() if not spec_options(fn)["firstresult"]]
    assert every == ["train_defaults", "training_arguments", "trainer_ready"]
    assert f"The other {NUMBERS[len(specs) - len(every)]} are ``firstresult``" in " ".join(
        doc.split()
    )


def test_hookspec_annotations_name_only_type_checking_imports():
    """The typed signatures must resolve for a type checker: every name they use is imported
    under ``TYPE_CHECKING`` (nothing heavy at run time), and every such module exists."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                imported |= {alias.asname or alias.name: imp.module for alias in imp.names}
    known = set(imported) | set(dir(builtins)) | {"Any"}
    for fn in spec_functions().values():
        sig = inspect.signature(fn)
        notes = [p.annotation for p in sig.parameters.values()] + [sig.return_annotation]
        for note in notes:
            for name in re.findall(r"[A-Za-z_]\w*", note):
                assert name in known, f"{fn.__name__}: annotation name {name} is not imported"
    for module in set(imported.values()):
        assert importlib.util.find_spec(module) is not None, f"no module {module}"


def test_run_context_documents_every_field():
    from ftx.context import RunContext

    for f in dataclasses.fields(RunContext):
        assert f"``{f.name}``" in RunContext.__doc__, f"RunContext.{f.name} is not documented"


def test_contributing_examples_compile_and_match_the_specs():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    specs = spec_functions()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    implemented = set()
    for code in blocks:
        if re.fullmatch(r"def \w+\([^)]*\)\s*", code):
            continue  # a signature block of the reference
        tree = ast.parse(code)
        for node in ast.walk(tree):
            decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
            if not any(d.startswith("hookimpl") for d in decorators):
                continue
            assert node.name in specs, f"example implements {node.name}, which is not a hook"
            params = {a.arg for a in node.args.args + node.args.kwonlyargs}
            extra = params - set(inspect.signature(specs[node.name]).parameters)
            assert not extra, f"example {node.name} takes {extra}, which the spec does not offer"
            implemented.add(node.name)
    assert implemented == set(specs), f"hooks without an example: {set(specs) - implemented}"


def test_contributing_examples_of_declarative_hooks_run():
    """The declarative examples run as written (the per-run ones need a model: their
    signatures are checked above)."""
    from transformers import LlamaConfig

    from ftx import hookimpl
    from ftx.context import DeviceInfo
    from ftx.options import Option

    text = (ROOT / "CONTRIBUTING.md").read_text()
    namespace = {"hookimpl": hookimpl, "Option": Option}
    for code in re.findall(r"```python\n(.*?)```", text, re.S):
        if code.lstrip().startswith(("@hookimpl", "from ftx import hookimpl")):
            exec(compile(code, "CONTRIBUTING.md", "exec"), namespace)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, vocab_size=256)
    cpu = DeviceInfo("cpu", False, 0, "CPU")
    assert all(isinstance(o, Option) for o in namespace["method_options"]())
    assert isinstance(namespace["train_defaults"](device=cpu, objective="supervised"), dict)
    estimate = namespace["estimate_memory"](
        model_config=config, seq_len=64, batch_size=2, options={}, device=cpu, dtype="float32"
    )
    assert 0 < estimate.trainable_params < estimate.total_params
