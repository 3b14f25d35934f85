"""newsletter: compose, preview, check and send an association's email newsletter."""

__version__ = "0.1.0"
