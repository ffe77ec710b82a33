"""Which code a project may load: the operator decides, web users choose among what the operator registered.

A model or featurizer setting may name Python code (``package.module:factory``).
Importing it runs it, so naming one is the operator's decision, never a web
user's. At the command line (``assay create-project``), run by whoever owns the
machine, any import path goes. Over HTTP a project may name only:

* the built-ins;
* entry points in the groups ``assay.models`` / ``assay.featurizers`` (installed by the operator);
* import paths the operator listed in ``ASSAY_MODELS`` / ``ASSAY_FEATURIZERS``
  (comma-separated), or with ``assay serve --allow-model / --allow-featurizer``.

:func:`check` reads names only: nothing is imported before it passes.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from .errors import BadRequest


def parse_list(value) -> frozenset[str]:
    """A setting given as "a:b, c:d" (environment) or a list (config.py) as a set of paths."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(str(v).strip() for v in value if str(v).strip())


@dataclass(frozen=True)
class LoadPolicy:
    """The import paths a request may name; None means any (the operator at the command line)."""

    models: frozenset[str] | None = None
    featurizers: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config) -> "LoadPolicy":
        return cls(parse_list(config.get("MODELS")), parse_list(config.get("FEATURIZERS")))


OPERATOR = LoadPolicy()

_HOW = {
    "model": ("ASSAY_MODELS", "--allow-model", "assay.models", "--model"),
    "featurizer": ("ASSAY_FEATURIZERS", "--allow-featurizer", "assay.featurizers", "--featurizer"),
}


def is_import_path(spec) -> bool:
    return isinstance(spec, str) and ":" in spec


def check(kind: str, spec, policy: LoadPolicy) -> None:
    """Refuse an import path ``policy`` does not allow, saying how the operator can register it."""
    allowed = policy.models if kind == "model" else policy.featurizers
    if allowed is None or not is_import_path(spec) or spec.strip() in allowed:
        return
    setting, flag, group, cli_option = _HOW[kind]
    raise BadRequest(
        f"{kind} {spec.strip()!r} is an import path the operator has not registered, so it was not loaded. "
        f"Over HTTP a project may name the built-in {kind}s, entry points in the group {group!r}, or import "
        f"paths the operator lists in {setting} (comma-separated) or with `assay serve {flag} {spec.strip()}`. "
        f"The operator can also set it from the command line: `assay create-project NAME {cli_option} {spec.strip()}`."
    )


def check_fields(fields: dict, policy: LoadPolicy, project: dict | None = None) -> None:
    """Check a create or change request's model and featurizer before anything is imported.

    Changing ``model_params`` calls the model's factory with them, so it needs
    the project's model to be allowed too, even when the request leaves the
    model itself alone (a command-line project keeps its parameters there).
    """
    if "model" in fields or "model_params" in fields:
        spec = fields.get("model", (project or {}).get("model"))
        check("model", spec, policy)
    if "featurizer" in fields:
        check("featurizer", fields["featurizer"], policy)


def unfindable(spec: str) -> str | None:
    """Why this process could not import the module of ``spec`` (``pkg.mod:factory``), or None if it could.

    Asked by the operator's CLI of a running server (``assay create-project --model``), so it must
    run no code of the module: it asks the import system's finders where each part of the dotted
    name would come from, as ``import`` does before it executes anything, and executes nothing,
    parent packages included. (A package that rewrites its own ``__path__`` when imported may hold
    submodules this cannot see; a miss is then a warning, never a refusal.)
    """
    module_name = spec.partition(":")[0].strip()
    if not module_name or any(not part.isidentifier() for part in module_name.split(".")):
        return f"{module_name!r} is not a module name"
    if module_name in sys.modules:  # imported already (os.path is no package's submodule, yet it imports)
        return None
    parts = module_name.split(".")
    path = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        module = sys.modules.get(name)
        found = getattr(module, "__spec__", None) if module is not None else None
        if found is None:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                found = find(name, path) if find is not None else None
                if found is not None:
                    break
        if found is None:
            return f"No module named {name!r}"
        path = found.submodule_search_locations
        if path is None and i < len(parts) - 1:
            return f"No module named {'.'.join(parts[: i + 2])!r}; {name!r} is not a package"
    return None
