"""`ptlint merge-reports`: join the JSON or SARIF reports of sharded runs into one report.

JSON reports (lists of findings) are concatenated. SARIF logs keep one run per tool driver: the
results of runs with the same driver are concatenated, their rules (and artifacts) deduplicated and the
indexes that point into them renumbered. Exact duplicates are dropped and the output is sorted, so the
order in which shards are given does not matter.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


class MergeError(ValueError):
    """Reports that cannot be merged (unreadable, not JSON, mixed or unknown formats)."""


def kind_of(report: Any) -> str:
    """"json" for a ptlint/ruff JSON finding list, "sarif" for a SARIF 2.1.0 log."""
    if isinstance(report, list) and all(isinstance(item, dict) for item in report):
        return "json"
    if isinstance(report, dict) and isinstance(report.get("runs"), list):
        if report.get("version") != "2.1.0":
            raise MergeError(f"unsupported SARIF version {report.get('version')!r} (2.1.0 is supported)")
        return "sarif"
    raise MergeError("not a ptlint JSON report (a list of findings) or a SARIF log")


def load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MergeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MergeError(f"{path}: not valid JSON: {exc}") from None


def merge_files(paths: list[Path]) -> tuple[str, Any]:
    """Merge the reports in `paths`; returns the format and the merged report."""
    if not paths:
        raise MergeError("no reports to merge")
    reports = []
    kinds = set()
    for path in paths:
        report = load(path)
        try:
            kinds.add(kind_of(report))
        except MergeError as exc:
            raise MergeError(f"{path}: {exc}") from None
        reports.append(report)
    if len(kinds) > 1:
        raise MergeError("cannot merge JSON reports with SARIF logs")
    kind = kinds.pop()
    return kind, merge_json(reports) if kind == "json" else merge_sarif(reports)


def dumps(report: Any) -> str:
    return json.dumps(report, indent=2) + "\n"


def count_findings(kind: str, report: Any) -> int:
    if kind == "json":
        return len(report)
    return sum(len(run.get("results") or []) for run in report["runs"])


# --- JSON ---


def _json_key(item: dict[str, Any]) -> tuple[Any, ...]:
    loc = item.get("location") or {}
    return (str(item.get("filename", "")), loc.get("row") or 0, loc.get("column") or 0, str(item.get("code", "")))


def merge_json(reports: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for report in reports:
        for item in report:
            ident = json.dumps(item, sort_keys=True)
            if ident not in seen:
                seen.add(ident)
                out.append(item)
    return sorted(out, key=lambda item: (_json_key(item), json.dumps(item, sort_keys=True)))


# --- SARIF ---


def _driver_key(run: dict[str, Any]) -> tuple[str, str, str]:
    driver = (run.get("tool") or {}).get("driver") or {}
    return (str(driver.get("name", "")), str(driver.get("version", "")), str(driver.get("semanticVersion", "")))


def merge_sarif(logs: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for log in logs:
        for run in log["runs"]:
            if not isinstance(run, dict):
                raise MergeError("a SARIF run is not an object")
            groups.setdefault(_driver_key(run), []).append(run)
    schema = next((log["$schema"] for log in logs if "$schema" in log), SARIF_SCHEMA)
    return {"$schema": schema, "version": "2.1.0", "runs": [_merge_runs(runs) for runs in groups.values()]}


def _merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged = copy.deepcopy(runs[0])
    driver = merged.setdefault("tool", {}).setdefault("driver", {})
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    artifacts: list[dict[str, Any]] = []
    artifact_index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    invocations: list[Any] = []
    for run in runs:
        run_rules = ((run.get("tool") or {}).get("driver") or {}).get("rules") or []
        rule_map = {}
        for old, rule in enumerate(run_rules):
            ident = str(rule.get("id", old))
            if ident not in rule_index:
                rule_index[ident] = len(rules)
                rules.append(copy.deepcopy(rule))
            rule_map[old] = rule_index[ident]
        artifact_map = {}
        for old, item in enumerate(run.get("artifacts") or []):
            ident = json.dumps(item.get("location", item), sort_keys=True)
            if ident not in artifact_index:
                artifact_index[ident] = len(artifacts)
                artifacts.append(copy.deepcopy(item))
            artifact_map[old] = artifact_index[ident]
        for result in run.get("results") or []:
            results.append(_renumber(copy.deepcopy(result), rule_map, rule_index, artifact_map))
        invocations.extend(copy.deepcopy(run.get("invocations") or []))
    if rules or "rules" in driver:
        driver["rules"] = rules
    if artifacts:
        merged["artifacts"] = artifacts
    if invocations:
        merged["invocations"] = _merge_invocations(invocations)
    merged["results"] = _unique_sorted(results)
    return merged


def _merge_invocations(invocations: list[Any]) -> list[Any]:
    """The shards' invocations as one: successful if every shard was, with all their notifications."""
    if not all(isinstance(item, dict) for item in invocations):
        return invocations
    merged = copy.deepcopy(invocations[0])
    merged["executionSuccessful"] = all(item.get("executionSuccessful", True) for item in invocations)
    notes: list[Any] = []
    for item in invocations:
        for note in item.get("toolExecutionNotifications") or []:
            if note not in notes:
                notes.append(note)
    if notes or "toolExecutionNotifications" in merged:
        merged["toolExecutionNotifications"] = notes
    return [merged]


def _renumber(
    result: dict[str, Any], rule_map: dict[int, int], rule_index: dict[str, int], artifact_map: dict[int, int]
) -> dict[str, Any]:
    """Point a result's rule and artifact indexes into the merged run's arrays."""
    if isinstance(result.get("ruleIndex"), int):
        rule_id = result.get("ruleId")
        result["ruleIndex"] = rule_index.get(rule_id, rule_map.get(result["ruleIndex"], result["ruleIndex"]))
    ref = result.get("rule")
    if isinstance(ref, dict) and isinstance(ref.get("index"), int):
        ref["index"] = rule_index.get(ref.get("id"), rule_map.get(ref["index"], ref["index"]))
    if artifact_map:
        for location in _artifact_locations(result):
            if isinstance(location.get("index"), int):
                location["index"] = artifact_map.get(location["index"], location["index"])
    return result


def _artifact_locations(result: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for location in result.get("locations") or []:
        physical = location.get("physicalLocation") or {}
        if isinstance(physical.get("artifactLocation"), dict):
            found.append(physical["artifactLocation"])
    for fix in result.get("fixes") or []:
        for change in fix.get("artifactChanges") or []:
            if isinstance(change.get("artifactLocation"), dict):
                found.append(change["artifactLocation"])
    return found


def _result_key(result: dict[str, Any]) -> tuple[Any, ...]:
    locations = result.get("locations") or [{}]
    physical = locations[0].get("physicalLocation") or {}
    region = physical.get("region") or {}
    uri = (physical.get("artifactLocation") or {}).get("uri", "")
    return (str(uri), region.get("startLine") or 0, region.get("startColumn") or 0, str(result.get("ruleId", "")))


def _unique_sorted(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for result in results:
        seen.setdefault(json.dumps(result, sort_keys=True), result)
    return [seen[k] for k in sorted(seen, key=lambda k: (_result_key(seen[k]), k))]
