"""NanoG1: cancer-genomics foundation models on Q-Compass value routing."""

__version__ = "0.1.0"
