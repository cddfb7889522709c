"""The public names: each resolves, to what its package documents, and stays itself.

A package named like a public function would replace the function on the `nordgroup` module as
soon as it was imported (`nordgroup.audit` became the module); the packages are named by stage
so that this cannot happen.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import nordgroup

PACKAGES = ("engine", "episodes", "explore", "money", "review", "tables")


def test_every_public_name_resolves_and_is_listed_by_dir():
    for package in (nordgroup, *(importlib.import_module(f"nordgroup.{name}") for name in PACKAGES)):
        for name in package.__all__:
            assert getattr(package, name) is not None
        assert set(package.__all__) <= set(dir(package))


def test_public_functions_stay_functions_after_every_module_is_imported():
    code = (
        "import importlib, pkgutil, nordgroup\n"
        "for info in pkgutil.walk_packages(nordgroup.__path__, 'nordgroup.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "import nordgroup.review as review\n"
        "print(all(callable(getattr(nordgroup, name)) for name in ('audit', 'simulate', 'compare', 'sensitivity'))\n"
        "      and all(callable(getattr(review, name)) for name in ('indicators', 'sensitivity', 'audit_report')))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "True"


def test_an_unknown_name_is_an_attribute_error():
    for package in (nordgroup, importlib.import_module("nordgroup.review")):
        try:
            package.no_such_name  # noqa: B018
        except AttributeError as error:
            assert "no_such_name" in str(error)
        else:
            raise AssertionError("no AttributeError")


def test_every_module_has_a_docstring():
    missing = []
    for info in pkgutil.walk_packages(nordgroup.__path__, "nordgroup."):
        if info.name.endswith("__main__"):
            continue
        if not (importlib.import_module(info.name).__doc__ or "").strip():
            missing.append(info.name)
    assert missing == []
