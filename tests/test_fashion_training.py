"""A short Fashion-MNIST training of the standard 784-100-10 network (Debian's data set)."""
import os

import numpy as np
import pytest

from nn.data import DEBIAN_FASHION_MNIST, load_fashion_mnist

HAVE_DATA = os.path.isdir(DEBIAN_FASHION_MNIST) and any(
    name.startswith("train-images") for name in os.listdir(DEBIAN_FASHION_MNIST))


@pytest.mark.skipif(not HAVE_DATA, reason="CI installs dataset-fashion-mnist")
def test_short_fashion_mnist_training_reaches_80_percent():
    import nn
    from nn.train import fit

    data = load_fashion_mnist(root=DEBIAN_FASHION_MNIST, dtype=np.float32)
    X, y = data.X_train[:20000], data.y_train[:20000]
    model = nn.MLP(784, [100, 10], activation="relu", dtype=np.float32, seed=0)
    history = fit(model, X, y, cost="cross_entropy", l2=1e-4, l2_convention="sklearn",
                  batch_size=200, epochs=2, seed=0, progress=False)
    assert history.loss[1] < history.loss[0]
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    # measured: ≈ 0.83 (2 epochs on a third of the training set); 0.80 leaves margin
    assert nn.accuracy(model, data.X_test, data.y_test) >= 0.80
