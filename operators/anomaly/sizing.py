"""``deep_sizeof``: bytes held by an object graph, for the memory budget of detectors.

Python containers, ``__dict__`` and ``__slots__`` are walked (each object counted
once). Objects the walk cannot see into (extension types such as river's
Rust-backed statistics) are counted as the larger of ``sys.getsizeof`` and the
length of their pickle, a lower bound of what they must hold.

>>> deep_sizeof([1.0, 1.0]) == sys.getsizeof([1.0, 1.0]) + sys.getsizeof(1.0)  # one float object
True
>>> deep_sizeof({"a": (1, 2)}) > deep_sizeof({})
True
>>> shared = [0.5] * 100
>>> deep_sizeof([shared, 1.0], exclude=(shared,)) == sys.getsizeof([shared, 1.0]) + sys.getsizeof(1.0)
True

``exclude`` leaves out objects shared by many detectors (their config), so the
figure is what one more patient-signal costs.
"""

from __future__ import annotations

import pickle
import sys
import types

_ATOMS = (int, float, complex, str, bytes, bool, type(None), range)
_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
         types.MethodType)


def deep_sizeof(obj: object, exclude: tuple[object, ...] = ()) -> int:
    seen: set[int] = {id(x) for x in exclude}
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _SKIP):
            continue
        seen.add(id(o))
        size = sys.getsizeof(o)
        if isinstance(o, _ATOMS):
            total += size
            continue
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        else:
            walked = False
            d = getattr(o, "__dict__", None)
            if isinstance(d, dict):
                stack.append(d)
                walked = True
            for cls in type(o).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if hasattr(o, name) and name not in ("__dict__", "__weakref__"):
                        stack.append(getattr(o, name))
                        walked = True
            if not walked:
                try:
                    size = max(size, len(pickle.dumps(o)))
                except Exception:  # an unpicklable opaque object: its own size is all we know
                    pass
        total += size
    return total
