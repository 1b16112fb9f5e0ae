"""Painterly's engine: neural style transfer (Gatys, Ecker & Bethge 2016) in PyTorch.

No Qt here (tests/engine/test_no_qt.py proves it): the window and the command
line are two thin front ends over ``engine.stylize.stylize``.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
