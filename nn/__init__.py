"""nn: the document's multilayer network, built only from autograd's public API.

The δ reference (`nn.delta`) and the data sets (`nn.data`) are plain numpy and never import
autograd: they are the independent witness.
"""
from . import activations, init, losses
from .losses import document_cost, l2_penalty, mse, softmax_cross_entropy
from .module import ModelFileError, Module
from .tensor_nets import MLP, Activation, Linear, Sequential
from .value_nets import MLP as ValueMLP
from .value_nets import Layer, Neuron

__all__ = ["MLP", "Activation", "Layer", "Linear", "ModelFileError", "Module", "Neuron",
           "Sequential", "ValueMLP", "activations", "document_cost", "init", "l2_penalty",
           "losses", "mse", "softmax_cross_entropy"]

from . import optim, train  # noqa: E402  (optimisers and the training loop)
from .optim import SGD, Adam, ArrayParameter  # noqa: E402
from .train import History, accuracy, fit, predict  # noqa: E402

__all__ += ["Adam", "ArrayParameter", "History", "SGD", "accuracy", "fit", "optim", "predict",
            "train"]

from . import compare  # noqa: E402  (autograd vs the δ reference vs central differences)
from .compare import compare_gradients  # noqa: E402

__all__ += ["MLPClassifier", "MLPRegressor", "compare", "compare_gradients"]

_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators", "estimators": None}


def __getattr__(name):
    # The estimators need scikit-learn (a second of imports): loaded on first use only.
    if name not in _LAZY:
        raise AttributeError(f"module 'nn' has no attribute {name!r}")
    import importlib
    module = importlib.import_module(".estimators", __name__)
    return module if _LAZY[name] is None else getattr(module, name)
