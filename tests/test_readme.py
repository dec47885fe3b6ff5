"""The README's code runs as written, and the numbers its comments promise are the results:
every ```python block runs in a fresh namespace; then each line that is a bare expression
followed by ``# <number>`` is evaluated and compared with that number."""
import ast
import pathlib
import re

import matplotlib
import pytest

matplotlib.use("Agg")

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
CLAIM = re.compile(r"^(?P<code>\S.*?)\s+#\s+(?P<number>-?\d+(?:\.\d+)?)\b")


def _claims(block):
    """[(expression, number)] for the block's lines `expression  # number ...`."""
    claims = []
    for line in block.splitlines():
        match = CLAIM.match(line)
        if not match:
            continue
        try:
            tree = ast.parse(match["code"], mode="eval")
        except SyntaxError:                     # a statement (a = …), not a checkable value
            continue
        claims.append((compile(tree, "README claim", "eval"), match["code"],
                       float(match["number"])))
    return claims


def test_readme_has_python_examples_with_claims():
    assert len(BLOCKS) >= 3
    assert sum(len(_claims(b)) for b in BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_and_keeps_its_promises(index, capsys):
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
    for code, text, number in _claims(BLOCKS[index]):
        assert float(eval(code, namespace)) == pytest.approx(number), text
    capsys.readouterr()
