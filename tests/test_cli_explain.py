"""`chainrule explain`, `walkthrough` and `gallery`: files written, user errors in one line."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import demos.cli as cli
from autograd import render as rd



@pytest.fixture
def chainrule(monkeypatch, capsys):
    """Run `chainrule ARGS...` in-process; return (status, stdout, stderr)."""
    # Only this file's subcommands: the others may not exist yet in a partial checkout.
    monkeypatch.setattr(cli, "SUBCOMMANDS", ("explain", "walkthrough", "gallery"))

    def run(*argv):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:               # argparse usage errors
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


def svg_ok(path):
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def test_explain_writes_svg(chainrule, tmp_path):
    out = tmp_path / "tmp" / "graph.svg"
    status, text, err = chainrule("explain", "tanh(w*x + b)", "x=0.5", "w=-1", "b=2",
                                  "-o", str(out), "--highlight", "w")
    assert status == 0, err
    assert "1 − tanh²(u) = 0.180707" in text
    assert "equal the engine's for all 3 leaves" in text
    assert f"wrote {out}" in text
    svg_ok(out)


def test_explain_picture_shows_the_gradients(chainrule, tmp_path):
    # the picture is drawn after the backward pass: every box carries its gradient
    out = tmp_path / "graph.dot.svg"
    status, _, err = chainrule("explain", "w*x + b", "x=0.5", "w=-1", "b=2", "-o", str(out))
    assert status == 0, err
    text = out.read_text()
    assert "not computed" not in text
    assert "grad 0.5" in text and "grad &#45;1" in text and text.count("grad 1<") == 3


def test_explain_formats_without_picture(chainrule):
    status, text, _ = chainrule("explain", "x*x + x", "x=3", "--format", "markdown")
    assert status == 0 and text.startswith("## Backward pass") and "| `x` | `3` | `7` |" in text


@pytest.mark.parametrize("argv, message", [
    (("__import__('os').system('echo hi')", "x=1"), "attribute access"),
    (("eval('1')",), "unknown function"),
    (("x.real", "x=1"), "attribute access"),
    (("tanh(w*x + b)", "x=0.5", "w=-1"), "missing value for b"),
    (("x + 1", "x=1", "q=2"), "unknown input q"),
    (("x +", "x=1"), "syntax error"),
    (("x * 2", "x=abc"), "not a number"),
    (("x * 2", "x=1", "--highlight", "y"), "not an input"),
    (("x * 2", "x=1", "-o", "graph.gif"), "-o graph.gif: the picture's format comes from"),
    (("x * 2", "x=1", "-o", ""), "the picture's format comes from"),    # not ignored
    (("3",), "has no inputs"),
    (("2*3",), "has no inputs"),
])
def test_user_errors_are_one_line_status_2(chainrule, argv, message):
    status, out, err = chainrule("explain", *argv)
    assert status == 2
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("chainrule explain: error:") and message in err
    assert "hi" not in out


def test_nan_gradients_agree_with_the_engine(chainrule):
    # √x is nan at x = −1, so both gradients are nan in the narration and in the engine: that
    # is agreement, not a failed check
    status, text, _ = chainrule("explain", "sqrt(x)*y", "x=-1", "y=2")
    assert "nan" in text
    assert status == 0
    assert "equal the engine's for all 2 leaves" in text and "DO NOT" not in text


def test_render_failure_names_what_to_install(chainrule, monkeypatch, tmp_path):
    monkeypatch.setattr(rd, "find_dot", lambda: None)
    status, _, err = chainrule("explain", "x*2", "x=1", "-o", str(tmp_path / "g.png"))
    assert status == 2 and "apt-get install graphviz" in err and err.count("\n") == 1
    assert not (tmp_path / "g.png").exists()


def test_walkthrough_writes_picture(chainrule, tmp_path):
    status, text, err = chainrule("walkthrough", "--out", str(tmp_path))
    assert status == 0, err
    assert "δ(2)[0]" in text and "δ(3)[0]" in text and "✗" not in text
    assert str(tmp_path / "walkthrough.svg") in text
    svg_ok(tmp_path / "walkthrough.svg")
    assert "W(1)[0,0]" in (tmp_path / "walkthrough.dot").read_text()


def test_gallery_writes_all_pictures(chainrule, tmp_path):
    status, text, err = chainrule("gallery", "--out", str(tmp_path))
    assert status == 0, err
    names = ("neuron", "reused", "diamond", "tensor_mlp", "value_mlp")
    for name in names:
        svg_ok(tmp_path / f"{name}.svg")
        assert (tmp_path / f"{name}.dot").read_text().startswith("digraph")
    assert str(tmp_path) in text
    assert "Σ wᵢaᵢ + b" in (tmp_path / "value_mlp.dot").read_text()


def test_a_failed_write_is_one_line_and_leaves_nothing(chainrule, monkeypatch, tmp_path):
    import errno
    import os

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)
    monkeypatch.setattr(os, "replace", full)
    status, _, err = chainrule("walkthrough", "--out", str(tmp_path / "w"))
    assert status == 2 and "No space left on device" in err
    assert str(tmp_path / "w" / "walkthrough.svg") in err and ".tmp" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / "w").exists()                # nothing left: not even the folder


def test_a_long_formula_still_titles_the_story(chainrule):
    status, text, _ = chainrule("explain", "x*x/y + log(x) - y**3", "x=2", "y=0.5")
    assert status == 0
    assert text.splitlines()[0].startswith("Backward pass of f = x*x/y + log(x) - y**3 = 8.568")
    assert "∂f/∂f = 1" in text


def test_picture_paths_are_checked_before_anything_is_printed(chainrule, tmp_path):
    (tmp_path / "afile").write_text("x")
    for path, message in ((tmp_path / "afile" / "g.svg", "cannot create the folder"),
                          (tmp_path / "g.jpg", "format comes from its suffix")):
        status, out, err = chainrule("explain", "x*2", "x=1", "-o", str(path))
        assert status == 2 and message in err and err.count("\n") == 1
        assert out == "" and "Errno" not in err          # nothing printed first
    status, out, err = chainrule("walkthrough", "--out", str(tmp_path / "afile"))
    assert status == 2 and out == "" and "cannot create the folder" in err


def test_a_failed_gallery_leaves_nothing_behind(chainrule, monkeypatch, tmp_path):
    monkeypatch.setenv("CHAINRULE_RENDERER", "bogus")
    status, out, err = chainrule("gallery", "--out", str(tmp_path / "g"))
    assert status == 2 and err.count("\n") == 1
    assert not (tmp_path / "g").exists()                 # not even the first .dot file


def test_the_step_cap_names_the_option(chainrule):
    status, text, _ = chainrule("explain", "x*x*x*x*x", "x=2", "--max-steps", "1")
    assert status == 0 and "raise --max-steps" in text and "raise max_steps" not in text


def test_a_format_no_renderer_can_make_is_refused_before_printing(chainrule, monkeypatch,
                                                                  tmp_path):
    monkeypatch.setattr(rd, "find_dot", lambda: None)
    status, out, err = chainrule("explain", "x*2", "x=1", "-o", str(tmp_path / "g.png"))
    assert status == 2 and out == "" and "apt-get install graphviz" in err


def test_explain_timeout_reaches_the_renderer_and_its_error_names_the_option(chainrule,
                                                                            tmp_path,
                                                                            monkeypatch):
    seen = []

    def slow(dot, path, format=None, renderer=None, timeout=None):
        seen.append(timeout)
        raise rd.RenderError(f"dot did not finish the SVG within {timeout:g} s")
    monkeypatch.setattr(rd, "render", slow)
    out = tmp_path / "g.svg"
    status, text, err = chainrule("explain", "x*y", "x=1", "y=2", "-o", str(out),
                                  "--timeout", "0.25")
    assert status == 2 and seen == [0.25]
    assert err.strip().endswith("within 0.25 s (--timeout SECONDS; 0 for no limit)")
    assert not out.exists()

    monkeypatch.setattr(rd, "render", lambda dot, path, format=None, renderer=None,
                        timeout=None: seen.append(timeout) or str(path))
    status, _, err = chainrule("explain", "x*y", "x=1", "y=2", "-o", str(out), "--timeout", "0")
    assert status == 0, err
    assert seen[-1] is None                 # 0: no limit


@pytest.mark.parametrize("bad", ["-1", "abc", "inf", "nan"])
def test_explain_refuses_a_bad_timeout(chainrule, bad):
    status, _, err = chainrule("explain", "x*y", "x=1", "y=2", "--timeout", bad)
    assert status == 2 and "--timeout" in err


def _walkthrough_by_hand():
    """The walkthrough's 2-2-1 sigmoid network (Mazur's numbers), x = (0.05, 0.10), y = 0.01,
    by the document's formulas in numpy float64: {printed label: value}."""
    import numpy as np
    x, y = np.array([0.05, 0.10]), 0.01
    W1, b1 = np.array([[0.15, 0.25], [0.20, 0.30]]), np.array([0.35, 0.35])
    W2, b2 = np.array([[0.40], [0.45]]), np.array([0.60])
    sigma = lambda z: 1 / (1 + np.exp(-z))
    z1 = x @ W1 + b1
    a2 = sigma(z1)
    z2 = a2 @ W2 + b2
    a3 = sigma(z2)
    d3 = -(y - a3) * a3 * (1 - a3)                      # δ(3) = −(y − a(3)) f′(z(2))
    d2 = (d3 @ W2.T) * a2 * (1 - a2)                    # δ(2) = (δ(3) W(2)ᵀ) f′(z(1))
    values = {"J": 0.5 * (y - a3[0]) ** 2}
    values.update({f"z(1)[{j}]": z1[j] for j in range(2)})
    values.update({f"a(2)[{j}]": a2[j] for j in range(2)})
    values.update({"z(2)[0]": z2[0], "a(3)[0]": a3[0], "δ(3)[0]": d3[0], "b(2)[0]": d3[0]})
    for j in range(2):
        values[f"δ(2)[{j}]"] = values[f"b(1)[{j}]"] = d2[j]
        values[f"W(2)[{j},0]"] = a2[j] * d3[0]         # ∂J/∂W(l) = a(l)ᵀ δ(l+1)
        for i in range(2):
            values[f"W(1)[{i},{j}]"] = x[i] * d2[j]
    return values


def test_walkthrough_numbers_are_the_hand_formulas(chainrule, tmp_path):
    import re
    status, text, _ = chainrule("walkthrough", "--out", str(tmp_path))
    assert status == 0
    expected = _walkthrough_by_hand()
    forward, tables = text.split("Residuals", 1)
    tables = tables.split("The backward pass", 1)[0]
    lines = re.findall(r"(z\(\d\)\[\d\]) = (\S+)   (a\(\d\)\[\d\]) = σ\(\S+\) = (\S+)", forward)
    assert len(lines) == 3
    for z_name, z, a_name, a in lines:
        assert abs(float(z) - expected[z_name]) <= 5e-7, z_name
        assert abs(float(a) - expected[a_name]) <= 5e-7, a_name
    assert abs(float(re.search(r"^  J = (\S+)$", forward, re.M)[1]) - expected["J"]) <= 5e-9
    rows = re.findall(r"^  ([δWb]\(\d\)\[[\d,]+\])\s+(\S+)\s+(\S+)\s+✓$", tables, re.M)
    assert len(rows) == 3 + 9
    for name, by_delta, by_autograd in rows:
        for shown in (by_delta, by_autograd):
            assert abs(float(shown) - expected[name]) <= 5e-11, name


def test_walkthrough_disagreement_is_a_failed_check_not_a_usage_error(chainrule, monkeypatch,
                                                                    tmp_path):
    """Exit status 2 is for bad input; autograd and δ disagreeing is a failed check (1, as
    `chainrule check` FAIL)."""
    import nn.delta
    real = nn.delta.backprop

    def wrong(*args, **kwargs):
        r = real(*args, **kwargs)
        r.delta[-1] = 2 * r.delta[-1]
        return r
    monkeypatch.setattr(nn.delta, "backprop", wrong)
    status, text, err = chainrule("walkthrough", "--out", str(tmp_path))
    assert status == 1 and "✗" in text
    assert err.count("\n") == 1 and "disagree" in err


def test_walkthrough_does_not_credit_its_numbers_to_the_document(chainrule, tmp_path):
    """The document draws a three-layer network but gives no weights or sample: the numbers
    are those of Matt Mazur's step-by-step example (its first output), and the text says so."""
    status, text, _ = chainrule("walkthrough", "--out", str(tmp_path))
    assert status == 0
    first = text.splitlines()[0]
    assert "Mazur" in first and "the document gives none" in first
    assert "document's 2-2-1" not in text
    assert "document's 2-2-1" not in (tmp_path / "walkthrough.dot").read_text()


def _hand_weights():
    import numpy as np
    return {"W(1)": np.array([[0.15, 0.25], [0.20, 0.30]]), "b(1)": np.array([0.35, 0.35]),
            "W(2)": np.array([[0.40], [0.45]]), "b(2)": np.array([0.60])}


def _hand_cost(p, lam=0.0):
    """J of the 2-2-1 network at parameters p by the hand formulas, with λ/2 Σ W²."""
    import numpy as np
    sigma = lambda z: 1 / (1 + np.exp(-z))
    a3 = sigma(sigma(np.array([0.05, 0.10]) @ p["W(1)"] + p["b(1)"]) @ p["W(2)"] + p["b(2)"])
    return 0.5 * (0.01 - a3[0]) ** 2 + lam / 2 * sum(np.sum(p[k] ** 2) for k in ("W(1)", "W(2)"))


def _update_rows(text):
    import re
    section = text.split("One step of gradient descent", 1)[1]
    rows = re.findall(r"^  ([Wb]\(\d\)\[([\d,]+)\])\s+(\S+)\s+(\S+)\s+(\S+)$", section, re.M)
    before, after = re.search(r"J before the step (\S+), after it (\S+) \(", section).groups()
    return rows, float(before), float(after), section


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_walkthrough_shows_one_step_of_the_documents_update(chainrule, tmp_path, lam):
    """w ← w − α ∂J/∂w with ∂J/∂W = a(l)ᵀδ(l+1) + λW by hand, and J re-evaluated after it."""
    lr = 0.5
    status, text, err = chainrule("walkthrough", "--out", str(tmp_path), "--lr", str(lr),
                                  "--l2", str(lam))
    assert status == 0, err
    grads, p = _walkthrough_by_hand(), _hand_weights()
    new = {k: v.copy() for k, v in p.items()}
    rows, before, after, section = _update_rows(text)
    assert len(rows) == 9
    for name, index, w, g, updated in rows:
        array = name.split("[")[0]
        at = tuple(int(i) for i in index.split(","))
        expected_g = grads[name] + (lam * p[array][at] if array.startswith("W") else 0.0)
        assert abs(float(w) - p[array][at]) <= 5e-9, name
        assert abs(float(g) - expected_g) <= 5e-9, name
        new[array][at] = p[array][at] - lr * expected_g
        assert abs(float(updated) - new[array][at]) <= 5e-9, name
    assert abs(before - _hand_cost(p, lam)) <= 5e-11
    assert abs(after - _hand_cost(new, lam)) <= 5e-11
    assert after < before and "(lower)" in section
    if lam:
        assert "J = 1/2 (y − a(3))² + λ/2 Σ W²  (λ = 0.1)" in text


def test_walkthrough_says_when_the_step_does_not_lower_J(capsys):
    from types import SimpleNamespace

    from demos import cmd_walkthrough
    J, layers, _, _ = cmd_walkthrough.build()
    J.backward()
    cmd_walkthrough._print_update(SimpleNamespace(data=0.0), layers, 0.5, 0.0)
    assert "not lower: α is too large for this point" in capsys.readouterr().out


@pytest.mark.parametrize("option, bad", [("--lr", "0"), ("--lr", "nan"), ("--lr", "-1"),
                                         ("--l2", "-0.1"), ("--l2", "inf")])
def test_walkthrough_refuses_a_bad_learning_rate_or_l2(chainrule, tmp_path, option, bad):
    status, text, err = chainrule("walkthrough", "--out", str(tmp_path / "w"), option, bad)
    assert status == 2 and err.count("\n") == 1 and option in err and not text
    assert not (tmp_path / "w").exists()


def test_explain_hint_names_the_command_line_option(chainrule):
    # "… N more steps (raise max_steps …)" names the function's argument; the CLI says --max-steps
    status, text, _ = chainrule("explain", "max_steps * x + x", "max_steps=2", "x=3",
                                "--max-steps", "1")
    assert status == 0
    assert "(raise --max-steps to see them)" in text and "(raise max_steps" not in text
    assert "max_steps * x" in text                  # the formula's own name, as written


@pytest.mark.parametrize("option, bad", [("--lr", "inf"), ("--l2", "inf")])
def test_walkthrough_says_why_an_infinite_learning_rate_or_l2_is_refused(chainrule, tmp_path,
                                                                         option, bad):
    # inf is a number > 0: the message must say what it is not
    status, _, err = chainrule("walkthrough", "--out", str(tmp_path / "w"), option, bad)
    assert status == 2 and "finite" in err
