"""The project model: summaries with `ast`, and facts across files."""

from __future__ import annotations

from pathlib import Path

from ptlint.project import ProjectIndex, find_root, still_valid

PROJECT = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "eval_helper"


def test_root_is_the_nearest_folder_with_a_marker():
    assert find_root([PROJECT / "pkg" / "models.py"]) == PROJECT


def test_class_modes_follow_layers_and_classes_across_files():
    index = ProjectIndex.build(PROJECT)
    assert index.class_mode("pkg.models.Generator") == "free"  # InstanceNorm2d without running stats
    assert index.class_mode("pkg.models.Classifier") == "dependent"  # Dropout
    assert index.class_mode("pkg.models.Missing") == "unknown"


def test_call_sites_across_files_know_the_mode_of_their_arguments():
    index = ProjectIndex.build(PROJECT)
    sites = index.call_sites("pkg.evaluation", "zero_shot_eval")
    assert [(s.path, s.item.line, s.item.args, s.item.eval_names) for s in sites] == [
        ("train.py", 11, ["model", "loader"], ["model"])
    ]


def test_star_imports_bind_what_the_module_defines_or_imports():
    index = ProjectIndex.build(PROJECT)
    names = index.star_names("utils", "train.py")
    assert names["torch"] == "torch" and names["nn"] == "torch.nn" and names["ROOT"] == "utils.ROOT"


def test_save_and_load_pairs():
    index = ProjectIndex.build(PROJECT)
    [save] = index.saves_to("model.pt")
    [load] = index.loads_from("model.pt")
    assert (save.path, save.item.saved) == ("train.py", "module")
    assert (load.path, load.item.use) == ("load.py", "module")


def test_recorded_questions_stay_valid_until_an_answer_changes(tmp_path):
    import shutil

    root = tmp_path / "p"
    shutil.copytree(PROJECT, root)
    view = ProjectIndex.build(root).view(root / "train.py")
    assert view.class_mode("pkg.models.Generator") == "free"
    asked = list(view.asked)
    assert still_valid(ProjectIndex.build(root), "train.py", asked)
    (root / "load.py").write_text("x = 1\n")  # a file the answer does not depend on
    assert still_valid(ProjectIndex.build(root), "train.py", asked)
    models = root / "pkg" / "models.py"
    models.write_text(models.read_text().replace("nn.InstanceNorm2d(8)", "nn.BatchNorm2d(8)"))
    assert not still_valid(ProjectIndex.build(root), "train.py", asked)


def test_a_broken_file_contributes_nothing_and_stops_nothing(tmp_path):
    import shutil

    root = tmp_path / "p"
    shutil.copytree(PROJECT, root)
    (root / "broken.py").write_text("def (:\n")
    index = ProjectIndex.build(root)
    assert index.files["broken.py"].error and index.class_mode("pkg.models.Generator") == "free"


def test_summaries_are_cached_by_content(tmp_path):
    cache = tmp_path / "cache"
    first = ProjectIndex.build(PROJECT, cache)
    again = ProjectIndex.build(PROJECT, cache)
    assert first.store.misses == len(first.files) and again.store.hits == len(again.files)  # type: ignore[attr-defined]
