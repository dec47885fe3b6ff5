"""chainrule's automatic-differentiation engine: the chain rule, runnable and visible."""
from .core import Node, Op, detect_anomaly, enable_grad, gradients, no_grad, topo_order
from .functional import grad, hessian, jacobian, jvp, value_and_grad, vjp
from .gradcheck import gradcheck, gradgradcheck, numerical_grad, relative_error
from .tensor import Tensor, concatenate, stack, where
from .trace import TraceError, Traced, trace
from .value import Value, weighted_sum
from .draw import GraphTooLarge, draw, draw_to_file, picture  # noqa: E402  (needs Value, Tensor)
from .explain import explain  # noqa: E402

__all__ = ["GraphTooLarge", "Node", "Op", "Tensor", "TraceError", "Traced", "Value", "draw",
           "draw_to_file", "explain", "picture", "concatenate", "detect_anomaly", "enable_grad",
           "grad", "gradcheck", "gradgradcheck", "gradients", "hessian", "jacobian", "jvp",
           "no_grad", "numerical_grad", "relative_error", "stack", "topo_order", "trace",
           "value_and_grad", "vjp", "weighted_sum", "where"]
