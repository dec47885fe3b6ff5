"""`chainrule check`: autograd vs the document's δ formulas vs central differences.

Builds a network (by default a 4-5-3 sigmoid network: three layers, as in the document's
figure, which gives no widths) with the document's cost J = 1/(2n) Σ ‖y − h(x)‖², draws a small
random batch, and prints one row per W(l), b(l): max|autograd−δ|, rel(autograd,δ),
rel(autograd,numeric), rel(δ,numeric). Exit status 0 for PASS, 1 for FAIL or INCONCLUSIVE, 2
for bad arguments.
"""
from __future__ import annotations

import argparse

import numpy as np

from demos.cli import UserError, seed

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
COSTS = ("document", "mse", "cross_entropy")
L2_CONVENTIONS = ("ufldl", "nielsen", "sklearn")

DESCRIPTION = """\
Compute the gradients ∂J/∂W(l) and ∂J/∂b(l) of one network three ways and compare them:

  autograd  the chain rule run automatically on the model's computation graph
            (Tensor engine: whole batch; Value engine: one number at a time);
  δ         the document's hand-derived residuals, in plain numpy (nn.delta):
            δ(L+1) = −(y − a(L+1)) ⊙ f′(z(L)),  δ(l) = (δ(l+1) · W(l)ᵀ) ⊙ f′(z(l−1)),
            ∂J/∂W(l) = a(l)ᵀ · δ(l+1),  ∂J/∂b(l) = Σ_i δ(l+1)_i  (divided by n);
  numeric   central differences (J(p + ε) − J(p − ε)) / 2ε in float64, J evaluated by the
            δ reference's forward pass.

Differences are UFLDL's relative measure ‖a − d‖ / ‖a + d‖. autograd and δ must agree to
1e-12 (they are the same formulas, up to rounding); both must agree with central differences
to 1e-6. Near a ReLU kink (|z| ≤ 10ε) central differences mean nothing: a warning says so,
and if only they disagree the verdict is INCONCLUSIVE, not FAIL. Gradients that are exactly 0 by
every method (dead units) are named: agreeing on 0 shows nothing.
Exit status: 0 PASS, 1 FAIL or INCONCLUSIVE, 2 bad arguments."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check", help="compare autograd with the document's δ formulas and central differences",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="4,5,3", metavar="N_IN,N2,...",
                   help="input width then layer widths, comma-separated (default 4,5,3: three "
                        "layers, as the document's network has)")
    p.add_argument("--activation", default="sigmoid", choices=ACTIVATIONS,
                   help="f of the hidden layers (default sigmoid)")
    p.add_argument("--output-activation", default=None, choices=ACTIVATIONS,
                   help="f of the output layer (default: the same as --activation when that is "
                        "sigmoid or tanh, as in the document; identity for relu and identity, "
                        "and always for cross_entropy, which takes logits)")
    p.add_argument("--cost", default="document", choices=COSTS,
                   help="document: J = 1/(2n) Σ‖y − h(x)‖²; mse: 1/(n·k) Σ(y − h)²; "
                        "cross_entropy: softmax cross-entropy on z(L) (default document)")
    p.add_argument("--l2", type=float, default=0.0, metavar="LAMBDA",
                   help="L2 weight decay λ on the weights W(l), never the biases (default 0)")
    p.add_argument("--l2-convention", default="ufldl", choices=L2_CONVENTIONS,
                   help="ufldl: λ/2·ΣW²; nielsen: λ/(2·n_train)·ΣW²; sklearn: λ/(2·n)·ΣW² "
                        "(default ufldl)")
    p.add_argument("--n-train", type=int, default=None, metavar="N",
                   help="training-set size for the nielsen convention (default: the batch size)")
    p.add_argument("--batch", type=int, default=8, metavar="N",
                   help="rows in the random batch (default 8)")
    p.add_argument("--seed", type=seed, default=0, help="seed for weights and data (default 0)")
    p.add_argument("--engine", default="tensor", choices=("tensor", "value"),
                   help="autograd engine: tensor (numpy arrays) or value (scalars) "
                        "(default tensor)")
    p.add_argument("--max-entries", type=int, default=500, metavar="N",
                   help="central differences on at most N entries of each W(l), b(l), sampled "
                        "with --seed (default 500; small networks are checked in full)")
    p.add_argument("--no-numeric", action="store_true",
                   help="skip central differences (compare autograd with δ only)")
    p.set_defaults(run=run)
    return p


def parse_sizes(text):
    """'2,16,16,1' → [2, 16, 16, 1]: the input width, then at least one layer width."""
    parts = [s.strip() for s in str(text).split(",")]
    try:
        sizes = [int(s) for s in parts]
    except ValueError:
        raise UserError(f"--sizes must be comma-separated whole numbers like 4,5,3, got {text!r}") \
            from None
    if len(sizes) < 2:
        raise UserError(f"--sizes needs the input width and at least one layer width, got {text!r}")
    if any(s < 1 for s in sizes):
        raise UserError(f"--sizes must all be positive, got {text!r}")
    return sizes


def build(args):
    """(model, X, y, compare_gradients keyword arguments) from the parsed arguments."""
    import nn
    sizes = parse_sizes(args.sizes)
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    if args.l2 < 0 or not np.isfinite(args.l2):
        raise UserError(f"--l2 must be a finite number ≥ 0, got {args.l2}")
    output = args.output_activation
    if output is None:
        # cross_entropy takes logits; sigmoid and tanh outputs fit targets in [0, 1) (UFLDL's
        # network, which the document follows, is sigmoid throughout); a relu output would
        # often be dead.
        squashing = args.activation in ("sigmoid", "tanh") and args.cost != "cross_entropy"
        output = args.activation if squashing else "identity"
    if args.cost == "cross_entropy" and output != "identity":
        raise UserError("--cost cross_entropy takes logits: --output-activation must be identity, "
                        f"got {output}")
    if args.cost == "cross_entropy" and sizes[-1] < 2:
        raise UserError(f"--cost cross_entropy needs at least 2 outputs, --sizes ends with "
                        f"{sizes[-1]} (softmax over one logit is always 1: J and every gradient "
                        f"would be 0)")
    n_train = args.n_train if args.n_train is not None else args.batch
    if n_train < 1:
        raise UserError(f"--n-train must be at least 1, got {n_train}")
    if args.max_entries < 1:
        raise UserError(f"--max-entries must be at least 1, got {args.max_entries}")
    n_in, widths = sizes[0], sizes[1:]
    if args.engine == "tensor":
        model = nn.MLP(n_in, widths, args.activation, output, seed=args.seed)
    else:
        model = nn.ValueMLP(n_in, widths, args.activation, output, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.batch, n_in))
    k = widths[-1]
    if args.cost == "cross_entropy":
        y = rng.integers(0, k, args.batch)
    else:
        y = rng.uniform(0.0, 1.0, (args.batch, k))
    kwargs = dict(cost=args.cost, l2=args.l2, l2_convention=args.l2_convention, n_train=n_train,
                  numeric=not args.no_numeric, max_entries=args.max_entries, seed=args.seed)
    return model, X, y, kwargs


def run(args):
    from nn.compare import compare_gradients
    model, X, y, kwargs = build(args)
    comparison = compare_gradients(model, X, y, **kwargs)
    print(comparison.table())
    return 0 if comparison.status() == "PASS" else 1
