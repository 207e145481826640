"""Safe expressions and ``{{ ... }}`` templates for workflow blueprints.

Users write edge conditions (``steps.review.output.score >= 0.8``) and prompt templates
(``"Summarise {{ input.topic }}"``), so this text is untrusted. It never reaches ``eval``,
``exec`` or ``compile``: it is parsed with ``ast.parse(..., mode="eval")``, every node is
checked against a whitelist, and this package walks the tree itself. ``a.b`` is a key lookup on
a mapping (never ``getattr``), calls reach only the whitelisted functions and methods, and size
limits stop an expression from exhausting CPU or memory. Every failure, at compile time or
while evaluating, is a :class:`agentfn.errors.ExpressionError`.

docs/expressions.md is the reference: the grammar, the names in scope, the functions, the
limits. The private modules, in the order a source passes through them:

- ``_limits``: the size limits, declared once;
- ``_parse``: source text to a checked syntax tree (the whitelist);
- ``_functions``: the table of callable functions and methods;
- ``_eval``: evaluation of a checked tree;
- ``_expression``: the compiled :class:`Expression` and the compile cache;
- ``_templates``: ``{{ }}`` templates;
- ``_errors``: internal failure types and the wording of messages.
"""

from __future__ import annotations

from agentfn.expressions._expression import Expression, compile_expression, evaluate
from agentfn.expressions._templates import Template, compile_template, render

__all__ = [
    "Expression",
    "Template",
    "compile_expression",
    "compile_template",
    "evaluate",
    "render",
]
