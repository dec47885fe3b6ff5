"""chainrule's automatic-differentiation engine: the chain rule, runnable and visible."""
from .core import Node, Op, detect_anomaly, enable_grad, gradients, no_grad, topo_order
from .value import Value

__all__ = ["Node", "Op", "Value", "detect_anomaly", "enable_grad", "gradients", "no_grad",
           "topo_order"]
