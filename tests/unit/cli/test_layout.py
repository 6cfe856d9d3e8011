"""cli/ is one module per command: each holds its options (`add_parser`) and its handler (`handle`),
is imported by main only and imports no other command module; every subcommand has its module.

Read from the source (imports) and from the parser the modules build, so a command that is added
to main.py instead of a module of its own, or a command that borrows from another, fails here.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import consumer.cli
from consumer.cli.main import build_parser
from tests.unit.cli.invoke import ROOT

CLI = "consumer.cli"
#: A command whose module is not its name with - as _, and why.
RENAMED = {"config": "config_command"}  # not to be mistaken for the consumer.config package


def _cli_modules() -> dict[str, ModuleType]:
    return {
        info.name: importlib.import_module(f"{CLI}.{info.name}")
        for info in pkgutil.iter_modules(consumer.cli.__path__)
    }


COMMAND_MODULES = {
    name: module for name, module in _cli_modules().items() if hasattr(module, "add_parser")
}
COMMANDS = sorted(COMMAND_MODULES)


def _registered(module: ModuleType) -> list[str]:
    """The subcommands the module's add_parser adds to an empty parser."""
    sub = argparse.ArgumentParser().add_subparsers()
    module.add_parser(sub)
    return list(sub.choices or {})


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module the file imports; for `from X import a`, both X and X.a (a may be a module)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _sources() -> list[Path]:
    """The package and bench: everything but the tests, which may import any module."""
    return sorted([*(ROOT / "consumer").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def _is_within(imported: str, module: str) -> bool:
    return imported == module or imported.startswith(module + ".")


class TestOneModulePerCommand:
    def test_every_subcommand_has_its_own_module(self) -> None:
        """The top-level parser's commands are exactly those the command modules add, one each."""
        [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
        by_module = {name: _registered(module) for name, module in COMMAND_MODULES.items()}
        assert all(len(added) == 1 for added in by_module.values()), by_module
        assert sorted(sub.choices or {}) == sorted(added for [added] in by_module.values())

    @pytest.mark.parametrize("name", COMMANDS, ids=COMMANDS)
    def test_module_is_named_after_its_command(self, name: str) -> None:
        [command] = _registered(COMMAND_MODULES[name])
        assert name == RENAMED.get(command, command.replace("-", "_"))

    @pytest.mark.parametrize("name", COMMANDS, ids=COMMANDS)
    def test_module_holds_its_handler(self, name: str) -> None:
        assert callable(getattr(COMMAND_MODULES[name], "handle", None))


class TestImports:
    @pytest.mark.parametrize("name", COMMANDS, ids=COMMANDS)
    def test_command_module_imports_no_other_command_module(self, name: str) -> None:
        """What two commands share lives in options.py or exit_codes.py (or outside cli/)."""
        path = ROOT / "consumer" / "cli" / f"{name}.py"
        others = {f"{CLI}.{other}" for other in COMMANDS if other != name}
        borrowed = {i for i in _imports(path) for other in others if _is_within(i, other)}
        assert not borrowed, f"{name}.py imports {sorted(borrowed)}"

    def test_command_modules_are_imported_by_main_only(self) -> None:
        """Not by a shared cli module, nor by anything outside cli/ (tests aside)."""
        main = ROOT / "consumer" / "cli" / "main.py"
        commands = [f"{CLI}.{name}" for name in COMMANDS]
        importers = {
            str(path.relative_to(ROOT)): sorted(
                i for i in _imports(path) for c in commands if _is_within(i, c)
            )
            for path in _sources()
            if path != main
        }
        assert {path: found for path, found in importers.items() if found} == {}

    def test_only_the_entry_point_imports_the_cli_from_outside(self) -> None:
        """`python -m consumer` (consumer/__main__.py) is the one way in besides the
        `import-closure = consumer.cli:main` script; nothing else depends on the command line."""
        cli_dir = ROOT / "consumer" / "cli"
        outside = {
            str(path.relative_to(ROOT))
            for path in _sources()
            if cli_dir not in path.parents and any(_is_within(i, CLI) for i in _imports(path))
        }
        assert outside == {"consumer/__main__.py"}
