"""gradient-service: loss, gradients and their chain-rule breakdown over HTTP."""

__version__ = "0.1.0"
