"""The compute layer: pure numpy, no web framework (see docs/design/architecture.md)."""
