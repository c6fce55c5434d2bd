"""The `upnext` command line: every command is listed, and running one imports only its own module."""
import argparse
import subprocess
import sys

import pytest

from backend.cli import COMMANDS, build_parser, main
from backend.settings import REPO_ROOT


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


def test_each_command_module_registers_its_own_command():
    for command in COMMANDS:
        sub = next(a for a in build_parser(command)._actions if isinstance(a, argparse._SubParsersAction))
        assert list(sub.choices) == [command]


def test_an_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_command_imports_only_its_own_module():
    code = ("import sys; from backend.cli import main; main(['settings']); "
            "print(sorted(m for m in sys.modules if m.startswith('backend.commands.')), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['backend.commands.show_settings'] False"
