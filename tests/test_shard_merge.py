"""`check --shard I/N` and `merge-reports` for JSON and SARIF reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from ptlint import merge, shard

BAD = "import torch\n\n\ndef load(model, path):\n    torch.save(model, path)\n    return model.cuda()\n"
CLEAN = "import os\n\nprint(os.sep)\n"


def invoke(cwd: Path, *args: str):
    return run_cli(list(args), cwd)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    for i in range(12):
        folder = tmp_path / "proj" / f"pkg{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(BAD if i % 2 == 0 else CLEAN)
    return tmp_path


def test_parse_accepts_i_of_n():
    assert shard.parse("2/4") == (2, 4)
    assert shard.parse(" 1 / 1 ") == (1, 1)


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3", "-1/2", "²/3"])
def test_parse_rejects_bad_specs(spec):
    with pytest.raises(shard.ShardError):
        shard.parse(spec)


def test_shards_partition_the_files_deterministically():
    paths = [f"src/pkg{i}/mod{j}.py" for i in range(10) for j in range(10)]
    parts = [shard.select(paths, (i, 4)) for i in range(1, 5)]
    assert sorted(p for part in parts for p in part) == sorted(paths)
    assert all(part for part in parts)
    # Fixed by the path alone (sha256): the same on every machine.
    assert shard.shard_of("src/pkg0/mod0.py", 4) == shard.shard_of("src/pkg0/mod0.py", 4)
    assert [shard.shard_of(p, 3) for p in ("a.py", "b.py", "c.py", "d.py")] == [
        shard.shard_of(p, 3) for p in ("a.py", "b.py", "c.py", "d.py")
    ]
    assert shard.shard_of("a\\b.py", 7) == shard.shard_of("a\\b.py", 7)


def test_shard_of_is_stable_across_releases():
    # Changing the hash would reshuffle every user's CI shards; keep these values.
    paths = ("train.py", "models/net.py", "utils/io.py", "a.py", "b.py")
    assert [shard.shard_of(p, 4) for p in paths] == [2, 2, 3, 4, 4]


def test_check_shard_rejects_a_bad_spec(project):
    result = invoke(project, "check", "--shard", "5/4", "proj")
    assert result.exit_code == 2
    assert "invalid shard '5/4': I must be between 1 and N" in result.output


def test_check_shard_and_stdin_do_not_mix(project):
    result = invoke(project, "check", "--shard", "1/2", "-")
    assert result.exit_code == 2
    assert "cannot be combined with other paths or --shard" in result.output


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_merged_shards_equal_the_unsharded_report(project, fmt):
    whole = invoke(project, "check", "--no-cache", "--jobs", "1", "--output-format", fmt, "-o", f"all.{fmt}", "proj")
    assert whole.exit_code == 1
    names = []
    counts = []
    for i in (3, 1, 2):
        part = invoke(project, "check", "--no-cache", "--jobs", "1", "--shard", f"{i}/3", "--exit-zero",
                      "--output-format", fmt, "-o", f"s{i}.{fmt}", "proj")
        assert part.exit_code == 0
        names.append(f"s{i}.{fmt}")
        counts.append(merge.count_findings(fmt, json.loads((project / names[-1]).read_text())))
    assert sum(counts) == 12  # 6 bad files, 2 findings each, split over the shards
    merged = invoke(project, "merge-reports", *names, "-o", f"merged.{fmt}")
    assert merged.exit_code == 1
    assert (project / f"merged.{fmt}").read_text() == (project / f"all.{fmt}").read_text()
    again = invoke(project, "merge-reports", "--exit-zero", *reversed(names))
    assert again.exit_code == 0
    assert again.output == (project / f"all.{fmt}").read_text()


def test_merge_json_dedupes_and_sorts():
    a = {"code": "PTL005", "filename": "/p/b.py", "location": {"row": 3, "column": 1}}
    b = {"code": "PTL006", "filename": "/p/a.py", "location": {"row": 9, "column": 5}}
    assert merge.merge_json([[a, b], [a]]) == [b, a]


def _sarif(driver: dict, results: list, artifacts: list | None = None) -> dict:
    run = {"tool": {"driver": driver}, "results": results}
    if artifacts is not None:
        run["artifacts"] = artifacts
    return {"version": "2.1.0", "runs": [run]}


def test_merge_sarif_renumbers_rules_and_artifacts():
    one = _sarif(
        {"name": "ptlint", "version": "1", "rules": [{"id": "PTL005"}, {"id": "PTL006"}]},
        [{"ruleId": "PTL006", "ruleIndex": 1, "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "a.py", "index": 0}, "region": {"startLine": 2}}}]}],
        [{"location": {"uri": "a.py"}}],
    )
    two = _sarif(
        {"name": "ptlint", "version": "1", "rules": [{"id": "PTL009"}, {"id": "PTL006"}]},
        [{"ruleId": "PTL009", "ruleIndex": 0, "rule": {"id": "PTL009", "index": 0}, "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "b.py", "index": 0}, "region": {"startLine": 1}}}]}],
        [{"location": {"uri": "b.py"}}],
    )
    other = _sarif({"name": "othertool", "rules": []}, [])
    out = merge.merge_sarif([one, two, other])
    assert out["version"] == "2.1.0"
    assert [run["tool"]["driver"]["name"] for run in out["runs"]] == ["ptlint", "othertool"]
    run = out["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["PTL005", "PTL006", "PTL009"]
    assert [a["location"]["uri"] for a in run["artifacts"]] == ["a.py", "b.py"]
    first, second = run["results"]
    assert (first["ruleId"], first["ruleIndex"]) == ("PTL006", 1)
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 0
    assert (second["ruleId"], second["ruleIndex"], second["rule"]["index"]) == ("PTL009", 2, 2)
    assert second["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 1


def test_merge_reports_errors(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    (tmp_path / "b.sarif").write_text(json.dumps(_sarif({"name": "ptlint"}, [])))
    (tmp_path / "c.txt").write_text("not json")
    (tmp_path / "d.sarif").write_text(json.dumps({"version": "2.0.0", "runs": []}))
    mixed = invoke(tmp_path, "merge-reports", "a.json", "b.sarif")
    assert (mixed.exit_code, mixed.output) == (2, "ptlint: error: cannot merge JSON reports with SARIF logs\n")
    bad = invoke(tmp_path, "merge-reports", "c.txt")
    assert bad.exit_code == 2 and "c.txt: not valid JSON" in bad.output
    old = invoke(tmp_path, "merge-reports", "d.sarif")
    assert old.exit_code == 2 and "unsupported SARIF version '2.0.0'" in old.output
    missing = invoke(tmp_path, "merge-reports", "nope.json")
    assert missing.exit_code == 2 and "nope.json: cannot read" in missing.output
    empty = invoke(tmp_path, "merge-reports", "a.json")
    assert (empty.exit_code, empty.output) == (0, "[]\n")
