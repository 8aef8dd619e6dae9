"""Importing ftx, its CLI or a plugin's entry-point module must not import heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")
LIGHT_MODULES = (
    "ftx",
    "ftx.cli",
    "ftx.plugins",
    "ftx.hookspecs",
    "ftx.config",
    "ftx.data",
    "ftx_fft",
    "ftx_sft",
    "ftx_qlora",
)


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_light_modules_import_no_heavy_library():
    mods = loaded_after("\n".join(f"import {m}" for m in LIGHT_MODULES))
    assert not [h for h in HEAVY if h in mods]


def test_plugins_listing_imports_no_heavy_library():
    code = "from ftx.plugins import discover\nassert all(p.ok for p in discover())"
    mods = loaded_after(code)
    assert not [h for h in HEAVY if h in mods]


def test_ftx_help_and_plugins_import_no_web_stack():
    """``ftx ui``'s Starlette/uvicorn/Jinja2 and ``ftx.ui`` load only when ``ftx ui`` runs."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom ftx.cli import cli\n"
        "CliRunner().invoke(cli, ['--help'])\nCliRunner().invoke(cli, ['plugins'])\n"
        "import json\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = json.loads(out.stdout.strip().splitlines()[-1])
    web = ("starlette", "uvicorn", "jinja2", "multipart", "ftx.ui")
    assert not [m for m in mods if m.startswith(web)]
