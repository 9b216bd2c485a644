"""The README's Python quick start runs as printed."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    text = README.read_text()
    section = text[text.index("## Use it from Python"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_quick_start_runs(tmp_path, capsys):
    blocks = python_blocks()
    assert blocks, "the README has no Python example under 'Use it from Python'"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # it writes embeddings.db in the current directory
    try:
        for code in blocks:
            exec(compile(code, str(README), "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert "2" in printed.splitlines()[0].split()[-1]  # embedded_keys: the two distinct texts
    assert printed.splitlines()[-1] == "doc-0 0"
