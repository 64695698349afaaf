"""End-to-end workflows that chain the library's stages, such as the quickstart comparison."""

from .quickstart import QuickstartOptions, run_quickstart

__all__ = ["QuickstartOptions", "run_quickstart"]
