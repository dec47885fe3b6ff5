"""`chainrule gallery`: pictures of typical computation graphs, as SVG and DOT source.

    neuron          one neuron: tanh(w1·x1 + w2·x2 + b), the chain from w1 highlighted
    reused          a·a + a: a node used three times, its gradient the sum 2a + 1
    diamond         sin(x)·exp(x): two paths from x that meet again
    tensor_mlp      a 4-3-2 tanh MLP on Tensors, a batch of 2, layers boxed
    value_mlp       a 2-16-16-1 MLP on Values with each neuron's Σ wᵢaᵢ + b collapsed
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from demos.cli import output_folder, staged_outputs

DEFAULT_OUT = os.path.join("chainrule-output", "gallery")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "gallery", help="draw a gallery of computation graphs (SVG and DOT files)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "--output", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output folder (default {DEFAULT_OUT})")
    p.set_defaults(run=run)


def neuron():
    from autograd import Value
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = (x1 * w1 + x2 * w2 + b).with_label("n")
    o = n.tanh().with_label("o")
    o.backward()
    return o, {"highlight": w1, "title": "one neuron: o = tanh(x1·w1 + x2·w2 + b)"}


def reused():
    from autograd import Value
    a = Value(3.0, label="a")
    y = (a * a + a).with_label("y")
    y.backward()
    return y, {"highlight": a, "title": "a node used three times: ∂y/∂a = 2a + 1 = 7"}


def diamond():
    from autograd import Value
    x = Value(0.5, label="x")
    y = (x.sin().with_label("s") * x.exp().with_label("e")).with_label("y")
    y.backward()
    return y, {"highlight": x, "title": "a diamond: two paths from x meet at y"}


def tensor_mlp():
    from autograd import Tensor
    from nn.losses import document_cost
    from nn.tensor_nets import MLP
    model = MLP(4, [3, 2], activation="tanh", seed=0)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 4)), label="a(1)")
    J = document_cost(model(x), np.array([[1.0, 0.0], [0.0, 1.0]])).with_label("J")
    J.backward()
    return J, {"cluster": "layer", "rankdir": "TB",
               "title": "a 4-3-2 tanh MLP on Tensors, batch of 2"}


def value_mlp():
    from nn.losses import document_cost
    from nn.value_nets import MLP
    model = MLP(2, [16, 16, 1], activation="relu", seed=0)
    J = document_cost([model([0.5, -0.3])], [[1.0]]).with_label("J")
    J.backward()
    return J, {"collapse": True,
               "title": "a 2-16-16-1 MLP on Values, each neuron's Σ wᵢaᵢ + b collapsed"}


GALLERY = (("neuron", neuron), ("reused", reused), ("diamond", diamond),
           ("tensor_mlp", tensor_mlp), ("value_mlp", value_mlp))


def run(args):
    from autograd.draw import draw
    from demos.cmd_explain import render_picture
    output_folder(args.out)
    titles = []
    with staged_outputs(args.out) as staging:         # all new pictures, or none
        for name, make in GALLERY:
            root, options = make()
            dot = draw(root, **options)
            with open(os.path.join(staging, f"{name}.dot"), "w", encoding="utf-8") as f:
                f.write(dot.source)
            render_picture(dot, os.path.join(staging, f"{name}.svg"),
                           shown=os.path.join(args.out, f"{name}.svg"))
            titles.append(f"  {name}.svg  {options['title']}")
    print("\n".join(titles))
    print(f"gallery written to {os.path.abspath(args.out)}")
    return 0
