"""Every public function and class of the public modules has a docstring, and every public
function and method is annotated, so the reference pages and type checkers have something to read.

Public means: the names in a module's ``__all__`` (or, without one, the functions and classes it
defines whose names do not start with ``_``), and the methods and properties of those classes,
including what they inherit from fastnet's own base classes.
"""

import importlib
import inspect

import pytest

PUBLIC_MODULES = [
    "fastnet",
    "fastnet.annotations",
    "fastnet.nets",
    "fastnet.layers",
    "fastnet.optim",
    "fastnet.schedules",
    "fastnet.datasets",
    "fastnet.training",
    "fastnet.distributed",
    "fastnet.interop",
]


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


def callables_of(module_name):
    """``(qualified name, function, is_method)`` for the public functions, methods and property
    getters of ``module_name``, and ``(qualified name, class, False)`` for its public classes."""
    module = importlib.import_module(module_name)
    for name in public_names(module):
        obj = getattr(module, name)
        where = f"{module_name}.{name}"
        if inspect.isfunction(obj):
            yield where, obj, False
        elif inspect.isclass(obj):
            yield where, obj, False
            yield from members_of(where, obj)


def members_of(where, cls):
    seen = set()
    for owner in cls.__mro__:
        if not owner.__module__.startswith("fastnet"):
            continue
        for attr, value in vars(owner).items():
            if attr in seen or (attr.startswith("_") and attr != "__init__"):
                continue
            seen.add(attr)
            if isinstance(value, property):
                function = value.fget
            elif isinstance(value, (staticmethod, classmethod)):
                function = value.__func__
            else:
                function = value
            if not inspect.isfunction(function):
                continue
            if attr == "__init__" and function.__qualname__.split(".")[0] != owner.__name__:
                continue  # made by dataclasses from the annotated fields
            is_method = not isinstance(value, staticmethod)
            yield f"{where}.{attr}", function, is_method


def missing_annotations(function, is_method):
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1 if is_method else 0 :]
    missing = [p.name for p in parameters if p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty and function.__name__ != "__init__":
        missing.append("return")
    return missing


def problems_of(module_name):
    problems = []
    for where, obj, is_method in callables_of(module_name):
        if inspect.isclass(obj):
            # A dataclass without a docstring gets its signature as one: that is not one.
            if not (obj.__doc__ or "").strip() or obj.__doc__.startswith(f"{obj.__name__}("):
                problems.append(f"{where}: class without a docstring")
            continue
        if obj.__name__ != "__init__" and not (inspect.getdoc(obj) or "").strip():
            problems.append(f"{where}: no docstring")
        missing = missing_annotations(obj, is_method)
        if missing:
            problems.append(f"{where}: not annotated: {', '.join(missing)}")
    return problems


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_api_is_documented_and_annotated(module_name):
    problems = problems_of(module_name)
    assert not problems, "\n".join(problems)


def test_the_check_sees_what_is_missing():
    def bare(x, y=1):
        return x

    def annotated(x: int, y: int = 1) -> int:
        """Documented."""
        return x

    assert missing_annotations(bare, is_method=False) == ["x", "y", "return"]
    assert missing_annotations(annotated, is_method=False) == []
    members = {where: f for where, f, _ in members_of("C", type("C", (), {"__module__": "fastnet.x", "f": bare}))}
    assert members == {"C.f": bare}
