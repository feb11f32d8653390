"""The hooks a backend's calls may go through instead of being overridden, and the check that
holds a class to one or the other.

Each of the four calls is served either by the class (it overrides the call) or by the hooks
the interface's own call goes through (``_call`` and ``_answer``, or ``_call`` and
``_stream``). `settle` makes a call served by neither abstract, as `abc.abstractmethod` would:
the class cannot be instantiated, and the TypeError names the call. It runs from the
interface's ``__init_subclass__`` rather than from a metaclass of its own, so a backend can
still mix in a class with another `ABCMeta` subclass as its metaclass (a pydantic model).
"""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["HOOKS", "settle"]

#: The calls a backend may serve through hooks, and the hooks each goes through.
HOOKS = {
    "generate": ("_call", "_answer"),
    "generate_stream": ("_call", "_stream"),
    "chat": ("_call", "_answer"),
    "chat_stream": ("_call", "_stream"),
}


class _Unserved:
    @abc.abstractmethod
    def call(self, *args: Any, **kwargs: Any) -> Any:
        """A call this backend neither overrides nor serves through its hooks."""
        raise NotImplementedError


_unserved = _Unserved.call  # the plain function, marked abstract


def settle(cls: type, interface: type) -> None:
    """Make each call of `HOOKS` that `cls` neither overrides nor serves through its hooks
    abstract in `cls`, and give a call the hooks now serve back to the interface's body (a
    base may have left it abstract). Called on every subclass of `interface` as it is built."""

    def implemented(attr: str) -> bool:
        value = getattr(cls, attr)
        return value is not getattr(interface, attr) and value is not _unserved

    for call, hooks in HOOKS.items():
        if implemented(call):
            continue
        served = all(implemented(hook) for hook in hooks)
        setattr(cls, call, getattr(interface, call) if served else _unserved)
    # ABCMeta reads the class's own attributes after this hook has run; refreshing here
    # as well keeps the answer right wherever the class is built from.
    abc.update_abstractmethods(cls)
