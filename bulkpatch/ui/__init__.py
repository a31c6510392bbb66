"""`bulkpatch ui`: a local web page over the same command-layer functions and run folders as
the command line (see `app` for the pages, `guard` for what keeps it private)."""

from bulkpatch.ui.server import serve

__all__ = ["serve"]
