"""The hooks a backend's calls may go through instead of being overridden, and the metaclass
of `Backend` and `AsyncBackend` that holds a class to one or the other.

Each of the four calls is served either by the class (it overrides the call) or by the hooks
the interface's own call goes through (``_call`` and ``_answer``, or ``_call`` and
``_stream``). A call served by neither is abstract, as `abc.abstractmethod` would make it:
the class cannot be instantiated, and the TypeError names the call.
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any

__all__ = ["HOOKS", "Interface"]

#: The calls a backend may serve through hooks, and the hooks each goes through.
HOOKS = {
    "generate": ("_call", "_answer"),
    "generate_stream": ("_call", "_stream"),
    "chat": ("_call", "_answer"),
    "chat_stream": ("_call", "_stream"),
}


class Interface(ABCMeta):
    """`ABCMeta`, plus: a call (of `HOOKS`) is abstract in a class that neither overrides it
    nor implements its hooks (see the module docstring)."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], /, **kwargs: Any
    ) -> Interface:
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        # The interface (`Backend` or `AsyncBackend`) is the first class built by this
        # metaclass; what a class shares with it, it has not implemented.
        interface = next(k for k in reversed(cls.__mro__) if isinstance(k, Interface))

        def implemented(attr: str) -> bool:
            return getattr(cls, attr) is not getattr(interface, attr)

        missing = {
            call
            for call, hooks in HOOKS.items()
            if not implemented(call) and not all(implemented(hook) for hook in hooks)
        }
        cls.__abstractmethods__ = cls.__abstractmethods__ | missing
        return cls
