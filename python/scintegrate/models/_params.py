"""Method parameters checked against the model class's own signature, before any data is read.

Names must be parameters of the class's ``__init__``; values must fit the annotation (or, without one, the
type of the default). A ``ValueError`` lists the valid names or says what type was expected.

>>> from scintegrate.models._params import check_params
>>> class M:
...     def __init__(self, *, n_epochs: int = 10, rate: float = 1e-3, seed: int = 0): ...
>>> check_params(M, {"n_epochs": 5, "rate": 1}, method="m")
{'n_epochs': 5, 'rate': 1}
>>> check_params(M, {"n_epochs": "abc"}, method="m")
Traceback (most recent call last):
...
ValueError: parameter n_epochs of method 'm' must be an integer, got 'abc' (str)
"""

from __future__ import annotations

import inspect
import numbers

#: set through their own arguments, never through ``**params``
COMMON = ("seed", "device", "progress")


def _expected(param) -> tuple:
    """``(kinds, optional)`` from the annotation text, or from the default's type."""
    text = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
    text = str(text) if param.annotation is not inspect.Parameter.empty else ""
    optional = param.default is None or "Optional" in text or "None" in text
    kinds = []
    for name in ("bool", "int", "float", "str"):
        if name in text.replace("Sequence[str]", "").replace("List[str]", ""):
            kinds.append(name)
    if "Sequence" in text or "List" in text or "list" in text or "tuple" in text:
        kinds.append("sequence")
    if not kinds and param.default is not inspect.Parameter.empty and param.default is not None:
        d = param.default
        kinds = ["bool"] if isinstance(d, bool) else ["int"] if isinstance(d, int) else ["float"] if isinstance(
            d, float) else ["str"] if isinstance(d, str) else ["sequence"] if isinstance(d, (list, tuple)) else []
    if not text and isinstance(param.default, str):
        return (), optional  # e.g. sigma="auto" or a number: the constructor checks it
    return tuple(kinds), optional


def _fits(value, kinds) -> bool:
    checks = {"bool": lambda v: isinstance(v, bool),
              "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
              "str": lambda v: isinstance(v, str),
              "sequence": lambda v: isinstance(v, (list, tuple))}
    return any(checks[k](value) for k in kinds)


_WORDS = {"bool": "True or False", "int": "an integer", "float": "a number", "str": "a string",
          "sequence": "a list"}


def _signature(cls):
    """``(named parameters, open-ended)`` of ``cls.__init__``; a ``**kwargs`` passed on to a base class's
    ``__init__`` (e.g. scANVI's scVI parameters) adds the base's parameters."""
    named, open_ended = {}, True
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        signature = inspect.signature(klass.__init__).parameters
        for n, p in signature.items():
            if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                named.setdefault(n, p)
        open_ended = any(p.kind == p.VAR_KEYWORD for p in signature.values())
        if not open_ended:
            break
    return named, open_ended


def check_params(cls, params: dict, *, method: str) -> dict:
    """``params`` if every name is a parameter of ``cls.__init__`` and every value fits; else ``ValueError``."""
    named, open_ended = _signature(cls)
    common = sorted(set(params) & set(COMMON))
    if common:
        raise ValueError(f"{common} cannot be given as method parameters: use the seed / device / progress "
                         "arguments of integrate (--seed / --device / --quiet on the command line)")
    unknown = [] if open_ended else sorted(set(params) - set(named))
    if unknown:
        valid = [n for n in named if n not in COMMON]
        raise ValueError(f"unknown parameter(s) {unknown} for method {method!r}; valid: {valid}")
    for name, value in params.items():
        if name not in named:
            continue
        kinds, optional = _expected(named[name])
        if not kinds or (value is None and optional) or _fits(value, kinds):
            continue
        want = " or ".join(_WORDS[k] for k in kinds) + (" (or None)" if optional else "")
        raise ValueError(f"parameter {name} of method {method!r} must be {want}, got {value!r} "
                         f"({type(value).__name__})")
    return params


def check_seed(seed) -> int:
    """A seed every generator takes: a non-negative integer below 2**32."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be a whole number between 0 and 2**32 - 1, got {seed!r}")
    return int(seed)
