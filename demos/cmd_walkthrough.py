"""`chainrule walkthrough`: a small network of the document's kind, one number at a time.

The document draws a three-layer network but gives no numbers; this is a 2-2-1 sigmoid network
on `Value`s with the fixed weights and sample (x, y) of Matt Mazur's "A Step by Step
Backpropagation Example" (its first output only), cost J = 1/2 (y − a(3))², plus with --l2 λ
the regularisation term the document mentions, λ/2 Σ W² over the weights (UFLDL's; not the
biases). It prints the forward values z(l), a(l+1); the document's residuals δ(l+1) (from
`nn.delta.backprop`, plain numpy) next to autograd's ∂J/∂z(l); the gradients ∂J/∂W(l), ∂J/∂b(l)
both ways (with --l2, plus λW(l)); the backward pass told step by step; one step of the
document's update w ← w − α ∂J/∂w with J before and after it; and draws the graph with the
chain from W(1)[0,0] to J highlighted. Exit status 1 if autograd and the δ formulas disagree.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from demos.cli import UserError, output_folder, staged_outputs

DEFAULT_OUT = os.path.join("chainrule-output", "walkthrough")

X = [0.05, 0.10]
Y = 0.01
W1 = [[0.15, 0.25], [0.20, 0.30]]          # W(1): n(1) × n(2), W(1)[i, j] from input i to neuron j
B1 = [0.35, 0.35]
W2 = [[0.40], [0.45]]
B2 = [0.60]
LR = 0.5                                   # Mazur's learning rate


def add_parser(subparsers):
    p = subparsers.add_parser(
        "walkthrough", help="walk through backpropagation on a small three-layer network",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "--output", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the picture (default {DEFAULT_OUT})")
    p.add_argument("--format", default="text", choices=("text", "markdown", "latex"),
                   help="format of the step-by-step explanation (default text)")
    p.add_argument("--lr", type=float, default=LR, metavar="ALPHA",
                   help=f"learning rate α of the update step shown (default {LR}, Mazur's)")
    p.add_argument("--l2", type=float, default=0.0, metavar="LAMBDA",
                   help="add the regularisation term λ/2 Σ W² to J (default 0: none)")
    p.set_defaults(run=run)


def build(l2=0.0):
    """(J, layers, a, z) of the 2-2-1 network on Values, labelled as in the document; J with
    λ/2 Σ W² added when ``l2`` = λ > 0."""
    from autograd import Value
    from nn.losses import document_cost, l2_penalty
    from nn.value_nets import Layer
    layers = [Layer(2, 2, "sigmoid", W1, B1, index=1), Layer(2, 1, "sigmoid", W2, B2, index=2)]
    a = [[Value(xi, label=f"a(1)[{i}]", requires_grad=False) for i, xi in enumerate(X)]]
    z = []
    for layer in layers:
        zl, al = layer.forward(a[-1])
        z.append(zl)
        a.append(al)
    J = document_cost([a[-1]], [[Y]])
    if l2:
        J = J + l2_penalty([w for layer in layers for w in layer.weights()], l2, "ufldl")
    return J.with_label("J"), layers, a, z


def _delta_reference(weights, biases, l2):
    """`nn.delta.backprop` on this network's arrays: J and the gradients by the δ formulas."""
    from nn.delta import backprop
    return backprop(weights, biases, np.array([X]), np.array([[Y]]), "sigmoid",
                    cost="document", l2=l2, l2_convention="ufldl")


def _row(*cells):
    return ("  " + "".join(str(c).ljust(w) for c, w in zip(cells, (16, 18, 18, 12)))).rstrip()


def run(args):
    from autograd.draw import draw
    from autograd.explain import explain
    from demos.cmd_explain import render_picture

    output_folder(args.out)           # before any work, as every command checks its outputs
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {args.lr}")
    if not (math.isfinite(args.l2) and args.l2 >= 0):
        raise UserError(f"--l2 must be a finite number ≥ 0, got {args.l2}")
    J, layers, a, z = build(args.l2)
    J.backward()
    ref = _delta_reference([np.array(W1), np.array(W2)], [np.array(B1), np.array(B2)], args.l2)

    print("A three-layer network as the document draws (2-2-1, sigmoid) with the numbers of "
          "Mazur's step-by-step example (the document gives none): one sample x = (0.05, 0.10), "
          "y = 0.01")
    penalty = f" + λ/2 Σ W²  (λ = {args.l2:g})" if args.l2 else ""
    print(f"z(l) = a(l)·W(l) + b(l),  a(l+1) = σ(z(l)),  J = 1/2 (y − a(3))²{penalty}\n")
    print("Forward pass")
    for l, (zl, al) in enumerate(zip(z, a[1:]), start=1):
        for j, (zj, aj) in enumerate(zip(zl, al)):
            print(f"  z({l})[{j}] = {zj.data:.6f}   a({l + 1})[{j}] = σ(z({l})[{j}]) = "
                  f"{aj.data:.6f}")
    print(f"  J = {J.data:.8f}\n")

    print("Residuals: the document's δ(l+1) (nn.delta, plain numpy) vs autograd's ∂J/∂z(l)")
    print(_row("node", "δ (document)", "∂J/∂z (autograd)", "agree"))
    ok = True
    for l, zl in enumerate(z, start=1):
        for j, zj in enumerate(zl):
            d = float(ref.delta_at(l + 1)[0, j])
            same = math.isclose(d, zj.grad, rel_tol=1e-9, abs_tol=1e-15)
            ok &= same
            print(_row(f"δ({l + 1})[{j}]", f"{d:.10f}", f"{zj.grad:.10f}", "✓" if same else "✗"))
    decay = " + λW(l)" if args.l2 else ""
    print(f"\nGradients: ∂J/∂W(l) = a(l)ᵀ·δ(l+1){decay}, ∂J/∂b(l) = δ(l+1)")
    print(_row("parameter", "δ formula", "autograd .grad", "agree"))
    for l, layer in enumerate(layers, start=1):
        gW, gb = ref.grad_W_at(l), ref.grad_b_at(l)
        for j, neuron in enumerate(layer.neurons):
            for i, w in enumerate(neuron.w):
                same = math.isclose(gW[i, j], w.grad, rel_tol=1e-9, abs_tol=1e-15)
                ok &= same
                print(_row(w.label, f"{gW[i, j]:.10f}", f"{w.grad:.10f}", "✓" if same else "✗"))
            same = math.isclose(gb[j], neuron.b.grad, rel_tol=1e-9, abs_tol=1e-15)
            ok &= same
            print(_row(neuron.b.label, f"{gb[j]:.10f}", f"{neuron.b.grad:.10f}",
                       "✓" if same else "✗"))
    print("\nThe backward pass, step by step (autograd's engine):\n")
    print(explain(J, format=args.format, max_steps=400))
    _print_update(J, layers, args.lr, args.l2)

    weight = layers[0].neurons[0].w[0]
    dot = draw(J, highlight=weight, cluster="neuron",
               title="a 2-2-1 network: the chain from W(1)[0,0] to J")
    path = os.path.join(args.out, "walkthrough.svg")
    with staged_outputs(args.out) as staging:         # the .dot and .svg together
        with open(os.path.join(staging, "walkthrough.dot"), "w", encoding="utf-8") as f:
            f.write(dot.source)
        render_picture(dot, os.path.join(staging, "walkthrough.svg"), shown=path)
    print(f"picture (chain from {weight.label} to J highlighted): {os.path.abspath(path)}")
    if not ok:          # a failed check (1, as `chainrule check`), not bad input (2)
        print("chainrule walkthrough: autograd and the δ formulas disagree (see the tables "
              "above)", file=sys.stderr)
        return 1
    return 0


def _print_update(J, layers, lr, l2):
    """The document's update w ← w − α ∂J/∂w on every parameter, with autograd's gradients, and
    J re-evaluated at the new parameters (by the δ module's forward pass, plain numpy)."""
    print(f"\nOne step of gradient descent, the document's update w ← w − α·∂J/∂w (α = {lr:g}):")
    print(_row("parameter", "w", "∂J/∂w", "w − α·∂J/∂w"))
    new_W, new_b = [], []
    for layer in layers:
        W, b = layer.W_array(), layer.b_array()         # W[i, j]: input i → neuron j
        for j, neuron in enumerate(layer.neurons):
            for i, w in enumerate(neuron.w):
                W[i, j] = w.data - lr * w.grad
                print(_row(w.label, f"{w.data:.8f}", f"{w.grad:.8f}", f"{W[i, j]:.8f}"))
            b[j] = neuron.b.data - lr * neuron.b.grad
            print(_row(neuron.b.label, f"{neuron.b.data:.8f}", f"{neuron.b.grad:.8f}",
                       f"{b[j]:.8f}"))
        new_W.append(W)
        new_b.append(b)
    after = _delta_reference(new_W, new_b, l2).cost
    change = ("lower" if after < J.data else
              "not lower: α is too large for this point" if after > J.data else "unchanged")
    print(f"J before the step {J.data:.10f}, after it {after:.10f} ({change})")
