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
