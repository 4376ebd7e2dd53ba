"""The compute layer: pure numpy, no web framework (see ARCHITECTURE.md)."""
