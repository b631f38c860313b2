"""Every Python block of docs/drop-in.md runs as it stands (issue 24): the examples are programs, not sketches."""
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "drop-in.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
TITLES = ["protect", "protector", "fused_op", "authors_code"]


def test_the_doc_has_its_four_examples():
    assert len(BLOCKS) == len(TITLES)


@pytest.mark.parametrize("code", BLOCKS, ids=TITLES[:len(BLOCKS)])
def test_example_runs(code, capsys):
    exec(compile(code, f"{DOC.name} example", "exec"), {"__name__": "__drop_in_example__"})
    assert capsys.readouterr().out or "print(" not in code  # an example that prints did print
