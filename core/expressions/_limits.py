"""The resource limits of expressions, declared once.

Expression text is untrusted, so every way it could make the evaluator burn CPU or memory is
capped here; the parser, the evaluator and the templates read these values from this module
(``_limits.NAME`` at call time, so a test can lift one in one place). docs/expressions.md lists
them, and a unit test keeps that list equal to this module.
"""

from __future__ import annotations

from typing import Final

# Compile time.
MAX_SOURCE_LENGTH: Final = 2000
MAX_NODES: Final = 300
MAX_DEPTH: Final = 50
MAX_STRING_LITERAL: Final = 10_000

# Evaluation.
MAX_EXPONENT: Final = 100
MAX_INT_BITS: Final = 4096
MAX_REPEAT: Final = 100_000
# How much join() separators or str.replace() may add to a string; the inputs themselves may be
# larger (step outputs), only growth made by the expression is bounded.
MAX_GROWTH: Final = 1_000_000
MAX_ROUND_DIGITS: Final = 100
