"""nn: the multilayer-network library of chainrule, built on the public autograd API.

The δ reference (`nn.delta`) and the data sets (`nn.data`) are plain numpy and never import autograd.
"""
