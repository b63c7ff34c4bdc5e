"""Nudge: real-time marketing automation driven by a small rule language."""

__version__ = "0.1.0"
