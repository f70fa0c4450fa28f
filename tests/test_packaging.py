"""What a fresh clone ships: the licence pyproject.toml declares, in the form setuptools 77+
reads without its ten-line deprecation warning (a table ``license = {text = ...}``)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_licence_is_an_spdx_string_with_its_file_and_a_setuptools_that_reads_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # not the deprecated table
    files = project["project"]["license-files"]
    assert [ROOT / f for f in files] == [ROOT / "LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the rtkit authors" in text
    # license = "..." with license-files needs setuptools 77 (older ones reject the string)
    (setuptools,) = [r for r in project["build-system"]["requires"] if "setuptools" in r]
    assert setuptools.replace(" ", "") == "setuptools>=77"
