"""``python -m ai_todo``: the ``ai-todo`` command."""

from __future__ import annotations

from ai_todo.cli import main

main()
