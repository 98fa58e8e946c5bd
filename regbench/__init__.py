"""regbench: run and compare regularization studies on MNIST with Keras."""

__version__ = "0.1.0"
