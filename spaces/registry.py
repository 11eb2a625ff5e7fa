"""Finding a case by name: the built-in registry, or a user's own case named as ``file.py:NAME`` / ``module:NAME``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from spaces.case import Case

__all__ = ["CASES", "CaseError", "get_case", "register"]


class CaseError(ValueError):
    """An unknown case, or a user's case that cannot be loaded."""


CASES: dict[str, Case] = {}
"""Built-in cases by name (filled when :mod:`spaces` imports :mod:`spaces.cases`)."""


def register(case_class: type[Case]) -> type[Case]:
    """Class decorator: checks the case and adds an instance to :data:`CASES`."""
    case = case_class()
    case.check()
    CASES[case.name] = case
    return case_class


def get_case(ref: str) -> Case:
    """A built-in case by name, or a user's case from ``path/to/file.py:NAME`` or ``package.module:NAME``."""
    if ref in CASES:
        return CASES[ref]
    if ":" not in ref:
        if ref.endswith(".py") and Path(ref).expanduser().is_file():  # a case file, but which of its cases?
            found = _cases_in(_load_module(ref, ref))
            raise CaseError(f"a case in a file is named {ref}:NAME; cases found there: {found}")
        raise CaseError(
            f"unknown case {ref!r}; choose from {sorted(CASES)} or name your own as file.py:NAME or module:NAME"
        )
    return _load_user_case(ref)


def _load_user_case(ref: str) -> Case:
    where, _, attr = ref.rpartition(":")
    if not where or not attr:
        raise CaseError(f"a case of your own is named file.py:NAME or module:NAME, got {ref!r}")
    module = _load_module(where, ref)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise CaseError(f"{where!r} defines no {attr!r}; cases found there: {_cases_in(module)}") from None
    if isinstance(obj, type) and issubclass(obj, Case):
        obj = obj()
    if not isinstance(obj, Case):
        got = f"class {obj.__name__}" if isinstance(obj, type) else type(obj).__name__
        raise CaseError(f"{ref!r} must be a spaces.Case subclass or instance, got {got}")
    try:
        obj.check()
    except Exception as exc:
        raise CaseError(f"case {ref!r} is not valid: {exc}") from exc
    return obj


def _load_module(where: str, ref: str):
    try:
        return _import_file(where) if where.endswith(".py") else importlib.import_module(where)
    except CaseError:
        raise
    except Exception as exc:  # the user's module failed while importing: say which and why, in one line
        raise CaseError(f"cannot import {where!r} for case {ref!r}: {type(exc).__name__}: {exc}") from exc


def _cases_in(module) -> list[str]:
    return sorted(n for n, v in vars(module).items() if _is_case(v) and not n.startswith("_"))


def _is_case(value: object) -> bool:
    return isinstance(value, Case) or (isinstance(value, type) and issubclass(value, Case) and value is not Case)


def _import_file(path_text: str):
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise CaseError(f"case file {path_text!r} does not exist")
    module_name = f"overfit_user_case_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling (Ray) look the module up by name
    spec.loader.exec_module(module)
    return module
