"""The canonical shape and its checksums."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alembic_pgflow import Flow, options_checksum, shape_of, structure_checksum

ROOT = Path(__file__).resolve().parent.parent

EXAMPLE = (
    Flow("analyze_website", max_attempts=3, base_delay=5, timeout=10)
    .step("website")
    .step("sentiment", depends_on=["website"], max_attempts=5, timeout=30)
    .step("summary", depends_on=["website"], required_input_pattern={"lang": "en"})
    .step("save_to_db", depends_on=["sentiment", "summary"])
    .map("scores", array="summary", base_delay=2)
)


def test_canonical_structure_is_documented_form() -> None:
    canonical = shape_of(EXAMPLE).structure.canonical()
    assert canonical["shape_version"] == 1
    assert canonical["steps"][3] == {
        "slug": "save_to_db",
        "step_type": "single",
        "dependencies": ["sentiment", "summary"],
        "when_unmet": "skip",
        "when_exhausted": "fail",
        "required_input_pattern": None,
        "forbidden_input_pattern": None,
    }
    assert canonical["steps"][2]["required_input_pattern"] == '{"lang":"en"}'
    assert [step["step_type"] for step in canonical["steps"]] == ["single"] * 4 + ["map"]


def test_canonical_options_use_create_flow_defaults() -> None:
    canonical = shape_of(Flow("f").step("a", start_delay=9)).options.canonical()
    assert canonical == {
        "shape_version": 1,
        "max_attempts": 3,
        "base_delay": 5,
        "timeout": 60,
        "steps": [
            {
                "slug": "a",
                "max_attempts": None,
                "base_delay": None,
                "timeout": None,
                "start_delay": 9,
            }
        ],
    }


def test_checksum_is_sha256_of_the_documented_canonical_json() -> None:
    canonical = (
        '{"shape_version":1,"steps":[{"dependencies":[],"forbidden_input_pattern":null,'
        '"required_input_pattern":null,"slug":"a","step_type":"single","when_exhausted":"fail",'
        '"when_unmet":"skip"}]}'
    )
    expected = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    assert structure_checksum(Flow("f").step("a")) == expected


def test_checksums_are_pinned() -> None:
    # A change here changes every comparison with stored flows: bump SHAPE_VERSION with it.
    assert structure_checksum(EXAMPLE) == (
        "3325083c56e4484d5662e5c5fa59eaffda049c7b42ed856b59b402ea056a5d65"
    )
    assert options_checksum(EXAMPLE) == (
        "0bd60f6094c34545b6893d1d95b5fa25770db35c1cce6d2982627caea989b2c0"
    )


def test_options_are_not_structure() -> None:
    tuned = (
        Flow("analyze_website", max_attempts=9, base_delay=1, timeout=99)
        .step("website", start_delay=60)
        .step("sentiment", depends_on=["website"], max_attempts=1)
        .step("summary", depends_on=["website"], required_input_pattern={"lang": "en"})
        .step("save_to_db", depends_on=["summary", "sentiment"], timeout=3)
        .map("scores", array="summary")
    )
    assert structure_checksum(tuned) == structure_checksum(EXAMPLE)
    assert options_checksum(tuned) != options_checksum(EXAMPLE)


def test_explicit_defaults_equal_omitted_ones() -> None:
    explicit = Flow("f", max_attempts=3, base_delay=5, timeout=60).step(
        "a", when_unmet="skip", when_exhausted="fail"
    )
    omitted = Flow("f").step("a")
    assert structure_checksum(explicit) == structure_checksum(omitted)
    assert options_checksum(explicit) == options_checksum(omitted)


def test_slug_is_identity_not_structure() -> None:
    v2 = Flow("other_slug").step("a")
    assert structure_checksum(v2) == structure_checksum(Flow("f").step("a"))


@pytest.mark.parametrize(
    "changed",
    [
        Flow("f").step("b").step("a"),
        Flow("f").step("a").step("b", depends_on=["a"]),
        Flow("f").step("a").map("b"),
        Flow("f").step("a").step("b", when_unmet="fail"),
        Flow("f").step("a").step("b", when_exhausted="skip"),
        Flow("f").step("a").step("b", required_input_pattern={}),
        Flow("f").step("a").step("b", forbidden_input_pattern={"x": 1}),
        Flow("f").step("a").step("B"),
        Flow("f").step("a"),
    ],
)
def test_each_structural_change_changes_the_checksum(changed: Flow) -> None:
    assert structure_checksum(changed) != structure_checksum(Flow("f").step("a").step("b"))


def test_pattern_key_order_and_number_spelling_are_not_structure() -> None:
    one = Flow("f").step("a", required_input_pattern={"x": 1, "y": [1.0, 2.5], "z": 1e2})
    other = Flow("f").step("a", required_input_pattern={"z": 100, "y": [1, 2.50], "x": 1.0})
    assert structure_checksum(one) == structure_checksum(other)


def test_checksums_are_stable_across_processes_and_hash_seeds() -> None:
    script = (
        "import json; from tests.test_shape import EXAMPLE;"
        "from alembic_pgflow import structure_checksum, options_checksum;"
        "print(json.dumps([structure_checksum(EXAMPLE), options_checksum(EXAMPLE)]))"
    )
    results = set()
    for seed in ["0", "1", "4242", "random"]:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        output = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results.add(tuple(json.loads(output)))
    assert results == {(structure_checksum(EXAMPLE), options_checksum(EXAMPLE))}
