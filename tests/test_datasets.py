"""Dataset layouts, official splits, the group-aware validation split and their error messages.

The videos here are empty files: these tests are about reading lists and folders, not decoding.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from varec_cli import paths
from varec_cli.datasets import (
    Sample,
    action_types,
    detect_layout,
    group_of,
    load_dataset,
    split_validation,
)
from varec_cli.errors import DatasetError

UCF_URL = "https://www.crcv.ucf.edu/data/UCF101.php"
HMDB_URL = "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------- UCF101

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
# The upstream quirk: the HandstandPushups folder holds v_HandStandPushups_* files.
UCF_FILE_PREFIX = {"ApplyEyeMakeup": "ApplyEyeMakeup", "Archery": "Archery", "HandstandPushups": "HandStandPushups"}


def make_ucf101(root: Path, groups: int = 10, clips: int = 3, test_groups: int = 3) -> Path:
    """A tiny UCF101 tree. Split N tests groups of a window shifted by N, like upstream."""
    for cls in UCF_CLASSES:
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                touch(root / "UCF-101" / cls / f"v_{UCF_FILE_PREFIX[cls]}_g{g:02d}_c{c:02d}.avi")
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    # CRLF line endings and stray blank lines, as some mirrors ship them.
    (lists / "classInd.txt").write_bytes(
        b"".join(f"{i} {cls}\r\n".encode() for i, cls in enumerate(UCF_CLASSES, 1)) + b"\r\n"
    )
    for split in (1, 2, 3):
        train_lines, test_lines = [], []
        for label, cls in enumerate(UCF_CLASSES, 1):
            for g in range(1, groups + 1):
                for c in range(1, clips + 1):
                    # Lists spell the quirky class both ways: the folder's spelling for train,
                    # the file's spelling for test.
                    prefix = cls if split == 1 or g % 2 else UCF_FILE_PREFIX[cls]
                    entry = f"{cls}/v_{prefix}_g{g:02d}_c{c:02d}.avi"
                    is_test = (split - 1) * test_groups < g <= split * test_groups
                    (test_lines.append(entry) if is_test else train_lines.append(f"{entry} {label}"))
        (lists / f"trainlist{split:02d}.txt").write_text("\r\n".join(train_lines) + "\r\n\r\n", newline="")
        (lists / f"testlist{split:02d}.txt").write_text("\n".join(test_lines) + "\n\n", newline="")
    return root


@pytest.fixture
def ucf_root(isolated_env) -> Path:
    return make_ucf101(paths.data_dir() / "ucf101")


def test_ucf101_by_name_reads_the_official_split(ucf_root):
    ds = load_dataset("ucf101", split=1, val_fraction=0.0)
    assert ds.layout == "ucf101" and ds.name == "ucf101" and ds.root == ucf_root and ds.split == 1
    assert ds.labels == UCF_CLASSES
    # 3 classes x 10 groups x 3 clips; groups 1-3 are test in split 1.
    assert len(ds.test) == 3 * 3 * 3 and len(ds.train) == 3 * 7 * 3 and ds.val == []
    assert ds.val_by == "none"
    assert {group_of(s.path).split("/g")[1] for s in ds.test} == {"01", "02", "03"}
    # The quirky class resolves to the real files, with the label from classInd.
    quirky = [s for s in ds.train if s.label == 2]
    assert len(quirky) == 21
    assert all(s.path.is_file() and s.path.name.startswith("v_HandStandPushups_") for s in quirky)
    assert quirky[0].group == "HandStandPushups/g04"
    first = ds.train[0]
    assert first == Sample(ucf_root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi", 0, "ApplyEyeMakeup/g04")


def test_ucf101_split_2_and_3_read_their_own_lists(ucf_root):
    ds2 = load_dataset("ucf101", split=2, val_fraction=0.0)
    assert {s.group.split("/")[1] for s in ds2.test} == {"g04", "g05", "g06"}
    # Split 2 lists spell HandstandPushups files as v_HandStandPushups_ for even groups: still found.
    assert sum(1 for s in ds2.test if s.label == 2) == 9
    ds3 = load_dataset(str(ucf_root), split=3, val_fraction=0.0)
    assert ds3.layout == "ucf101" and ds3.name == "ucf101"
    assert {s.group.split("/")[1] for s in ds3.test} == {"g07", "g08", "g09"}


@pytest.mark.parametrize("split", [0, 4, -1, True])
def test_split_must_be_1_2_or_3(ucf_root, split):
    with pytest.raises(DatasetError, match="split must be 1, 2 or 3"):
        load_dataset("ucf101", split=split)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_val_fraction_is_validated(ucf_root, fraction):
    with pytest.raises(DatasetError, match="validation fraction"):
        load_dataset("ucf101", val_fraction=fraction)


def test_ucf101_validation_split_takes_whole_groups_per_class(ucf_root):
    ds = load_dataset("ucf101", split=1, val_fraction=0.3, seed=3)
    assert ds.val_by == "group"
    train_groups = {s.group for s in ds.train}
    val_groups = {s.group for s in ds.val}
    assert val_groups and not (train_groups & val_groups)
    # 7 train groups per class, 30% -> round(2.1) = 2 whole groups (6 clips) per class.
    for label in range(3):
        assert len({s.group for s in ds.val if s.label == label}) == 2
        assert sum(1 for s in ds.val if s.label == label) == 6
    assert len(ds.train) + len(ds.val) == 63
    assert ds.counts() == {"train": 45, "val": 18, "test": 27}
    # Test never leaks into val.
    assert not ({s.path for s in ds.val} & {s.path for s in ds.test})


def test_validation_split_is_deterministic_by_seed(ucf_root):
    a = load_dataset("ucf101", val_fraction=0.3, seed=0)
    b = load_dataset("ucf101", val_fraction=0.3, seed=0)
    assert [s.path for s in a.val] == [s.path for s in b.val]
    vals = {tuple(sorted(s.group for s in load_dataset("ucf101", val_fraction=0.3, seed=k).val)) for k in range(6)}
    assert len(vals) > 1  # different seeds pick different groups


def test_ucf101_missing_videos_are_counted_with_the_first_named(ucf_root):
    for c in (1, 2):
        (ucf_root / "UCF-101/Archery" / f"v_Archery_g05_c{c:02d}.avi").unlink()
    with pytest.raises(DatasetError) as exc:
        load_dataset("ucf101", split=1)
    message = assert_one_line(exc)
    assert "2 of 63 entries in trainlist01.txt" in message
    assert "Archery/v_Archery_g05_c01.avi" in message and UCF_URL in message


def test_ucf101_a_video_listed_twice_or_on_both_sides_is_an_error(ucf_root):
    """A hand-edited list that trains on a test clip, or counts one twice: refused, naming the video."""
    lists = ucf_root / "ucfTrainTestlist"
    original = (lists / "trainlist01.txt").read_text()
    test_entry = (lists / "testlist01.txt").read_text().split()[0]
    for added, where in ((f"{test_entry} 1", "in both the train and the test list (trainlist01.txt, testlist01.txt)"),
                         (original.split()[0] + " 1", "twice in the train list (trainlist01.txt)")):
        (lists / "trainlist01.txt").write_text(original + added + "\n")
        with pytest.raises(DatasetError) as exc:
            load_dataset("ucf101", split=1)
        message = assert_one_line(exc)
        assert where in message and added.split()[0].split("/")[1].lower() in message.lower(), message


def test_hmdb51_a_video_marked_twice_is_an_error(isolated_env):
    root = make_hmdb51(paths.data_dir() / "hmdb51")
    split_file = root / "testTrainMulti_7030_splits" / "wave_test_split1.txt"
    first = split_file.read_text().splitlines()[1]  # i=1: role (1 + 1) % 3 = 2, a test video
    split_file.write_text(split_file.read_text() + first.split()[0] + " 1\n")  # also marked train
    with pytest.raises(DatasetError) as exc:
        load_dataset("hmdb51", split=1)
    message = assert_one_line(exc)
    assert "in both the train and the test list" in message and "_test_split1.txt" in message


def test_ucf101_not_downloaded_says_where_it_looked(isolated_env):
    with pytest.raises(DatasetError) as exc:
        load_dataset("ucf101")
    message = assert_one_line(exc)
    assert str(paths.data_dir() / "ucf101") in message and "VAREC_DATA_DIR" in message
    assert "ucfTrainTestlist" in message and UCF_URL in message


def test_ucf101_without_lists_is_incomplete(ucf_root):
    for f in (ucf_root / "ucfTrainTestlist").iterdir():
        f.unlink()
    (ucf_root / "ucfTrainTestlist").rmdir()
    with pytest.raises(DatasetError) as exc:
        load_dataset("ucf101")
    message = assert_one_line(exc)
    assert "classInd.txt is missing" in message and UCF_URL in message


def test_ucf101_malformed_lines_name_file_and_line(ucf_root):
    class_ind = ucf_root / "ucfTrainTestlist/classInd.txt"
    class_ind.write_text("1 ApplyEyeMakeup\nArchery\n3 HandstandPushups\n")
    with pytest.raises(DatasetError, match=r"classInd.txt:2: expected `<id> <ClassName>`"):
        load_dataset("ucf101")
    class_ind.write_text("1 ApplyEyeMakeup\n2 Archery\n3 HandstandPushups\n")
    train = ucf_root / "ucfTrainTestlist/trainlist01.txt"
    train.write_text(train.read_text().replace("Archery/v_Archery_g04_c01.avi 2", "Archery/v_Archery_g04_c01.avi 1"))
    with pytest.raises(DatasetError, match=r"trainlist01.txt:\d+: label 1 does not match class 'Archery'"):
        load_dataset("ucf101")


def test_a_named_dataset_must_have_its_layout(isolated_env):
    touch(paths.data_dir() / "hmdb51" / "brush_hair" / "a.avi")
    with pytest.raises(DatasetError) as exc:
        load_dataset("hmdb51")
    message = assert_one_line(exc)
    assert "testTrainMulti_7030_splits" in message and HMDB_URL in message


def test_action_types_cover_ucf101_and_map_the_dataset_labels(ucf_root):
    table = action_types()
    assert len(table) == 101
    assert set(table.values()) == {
        "Human-Object Interaction",
        "Body-Motion Only",
        "Human-Human Interaction",
        "Playing Musical Instruments",
        "Sports",
    }
    assert table["ApplyEyeMakeup"] == "Human-Object Interaction" and table["Archery"] == "Sports"
    ds = load_dataset("ucf101")
    assert ds.action_types() == {
        "ApplyEyeMakeup": "Human-Object Interaction",
        "Archery": "Sports",
        "HandstandPushups": "Body-Motion Only",
    }


# ------------------------------------------------------------------------------------------- HMDB51


def make_hmdb51(root: Path) -> Path:
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for cls in ("wave", "brush_hair", "climb"):
        for split in (1, 2, 3):
            lines = []
            for i in range(6):
                name = f"Movie{i}_{cls}_u_nm_np1_fr_goo_{i}.avi"
                if split == 1:
                    touch(root / cls / name)
                role = (i + split) % 3  # 2 train, 2 test, 2 unused per class and split
                lines.append(f"{name} {role} ")  # upstream lines end with a space
            (splits / f"{cls}_test_split{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_hmdb51_reads_train_test_and_skips_unused(isolated_env):
    root = make_hmdb51(paths.data_dir() / "hmdb51")
    ds = load_dataset("hmdb51", split=2, val_fraction=0.0)
    assert ds.layout == "hmdb51" and ds.split == 2
    assert ds.labels == ["brush_hair", "climb", "wave"]
    assert len(ds.train) == 6 and len(ds.test) == 6
    # split 2: role = (i + 2) % 3 -> train i=2,5; test i=0,3; unused i=1,4
    assert sorted(s.path.name for s in ds.train if s.label == 2) == [
        "Movie2_wave_u_nm_np1_fr_goo_2.avi",
        "Movie5_wave_u_nm_np1_fr_goo_5.avi",
    ]
    assert sorted(s.path.name for s in ds.test if s.label == 0) == [
        "Movie0_brush_hair_u_nm_np1_fr_goo_0.avi",
        "Movie3_brush_hair_u_nm_np1_fr_goo_3.avi",
    ]
    assert all(s.group is None for s in ds.train + ds.test)
    assert all(s.path.parent == root / ds.labels[s.label] for s in ds.train + ds.test)


def test_hmdb51_split_missing_one_class_file_is_an_error_not_a_lost_class(isolated_env):
    root = make_hmdb51(paths.data_dir() / "hmdb51")
    (root / "testTrainMulti_7030_splits" / "climb_test_split2.txt").unlink()
    assert load_dataset("hmdb51", split=1).labels == ["brush_hair", "climb", "wave"]
    with pytest.raises(DatasetError, match="is incomplete: .* has no climb_test_split2.txt"):
        load_dataset("hmdb51", split=2)


def test_an_hmdb51_split_without_test_videos_says_so_in_its_own_terms(isolated_env):
    from varec_cli.evaluate_run import evaluate_models

    root = make_hmdb51(paths.data_dir() / "hmdb51")
    for lists in (root / "testTrainMulti_7030_splits").glob("*_test_split2.txt"):
        lists.write_text(lists.read_text().replace(" 2 ", " 1 "))
    with pytest.raises(DatasetError, match=r"has no test videos \(its split 2 lists mark none as test\)"):
        evaluate_models("hmdb51", ["never-opened.keras"], split=2)


def test_hmdb51_validation_falls_back_to_per_clip_and_says_so(isolated_env):
    make_hmdb51(paths.data_dir() / "hmdb51")
    ds = load_dataset("hmdb51", split=1, val_fraction=0.5)
    assert ds.val_by == "clip"
    assert any("per clip" in note for note in ds.notes)
    # 2 train clips per class, 50% -> 1 clip per class to val.
    assert sorted(s.label for s in ds.val) == [0, 1, 2] and len(ds.train) == 3


def test_hmdb51_missing_video_and_malformed_line(isolated_env):
    root = make_hmdb51(paths.data_dir() / "hmdb51")
    (root / "climb" / "Movie1_climb_u_nm_np1_fr_goo_1.avi").unlink()
    with pytest.raises(DatasetError) as exc:
        load_dataset("hmdb51", split=3)  # (1 + 3) % 3 == 1: a train clip in split 3
    message = assert_one_line(exc)
    assert "1 of 6 entries in climb_test_split3.txt" in message and "climb/Movie1_climb" in message
    assert HMDB_URL in message
    touch(root / "climb" / "Movie1_climb_u_nm_np1_fr_goo_1.avi")
    (root / "testTrainMulti_7030_splits/wave_test_split1.txt").write_text("a.avi 1\nb.avi train\n")
    with pytest.raises(DatasetError, match=r"wave_test_split1.txt:2: expected `<video>.avi <0\|1\|2>`"):
        load_dataset("hmdb51", split=1)


# -------------------------------------------------------------------------------------- plain folders


def test_plain_folder_finds_videos_recursively_by_extension(tmp_path):
    root = tmp_path / "clips"
    touch(root / "walk" / "a.mp4")
    touch(root / "walk" / "day2" / "b.MOV")
    touch(root / "walk" / "notes.txt")
    touch(root / "walk" / ".hidden.mp4")
    touch(root / "run" / "c.webm")
    touch(root / "run" / "d.mkv")
    touch(root / "run" / "e.AVI")
    touch(root / "empty" / "readme.md")
    ds = load_dataset(str(root), val_fraction=0.0)
    assert ds.layout == "folder" and ds.name == "clips" and ds.split is None
    assert ds.labels == ["run", "walk"]
    assert sorted((s.path.relative_to(root).as_posix(), s.label) for s in ds.train) == [
        ("run/c.webm", 0),
        ("run/d.mkv", 0),
        ("run/e.AVI", 0),
        ("walk/a.mp4", 1),
        ("walk/day2/b.MOV", 1),
    ]
    assert ds.test == [] and ds.val == []
    assert any("empty" in note for note in ds.notes)


def test_plain_folder_of_ucf_clips_splits_by_group(tmp_path):
    root = tmp_path / "mini"
    for cls in ("Jump", "Swim"):
        for g in range(1, 6):
            for c in range(1, 4):
                touch(root / cls / f"v_{cls}_g{g:02d}_c{c:02d}.mp4")
    ds = load_dataset(root, val_fraction=0.2, seed=1)  # a Path works too
    assert ds.val_by == "group"
    # 5 groups per class, 20% -> 1 group of 3 clips per class.
    assert len(ds.val) == 6 and len(ds.train) == 24
    assert not ({s.group for s in ds.val} & {s.group for s in ds.train})


def test_folder_with_train_val_test(tmp_path):
    root = tmp_path / "ds"
    for part, n in (("train", 3), ("val", 1), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                touch(root / part / cls / f"{cls}{i}.mp4")
    ds = load_dataset(str(root), val_fraction=0.5)
    assert ds.layout == "folder-splits" and ds.labels == ["a", "b"]
    assert ds.val_by == "folder"  # a given val/ wins over val_fraction
    assert ds.counts() == {"train": 6, "val": 2, "test": 4}
    assert all(s.path.parts[-3] == "test" for s in ds.test)
    assert [s.label for s in ds.test] == [0, 0, 1, 1]


def test_folder_splits_without_val_takes_it_from_train(tmp_path):
    """Also where val/ is there but holds no video: it is ignored, and said to be."""
    root = tmp_path / "ds"
    for cls in ("a", "b"):
        for i in range(10):
            touch(root / "train" / cls / f"{cls}{i}.mp4")
        touch(root / "test" / cls / "t.mp4")
    ds = load_dataset(str(root), val_fraction=0.2)
    assert ds.val_by == "clip" and ds.counts() == {"train": 16, "val": 4, "test": 2}

    (root / "val" / "a").mkdir(parents=True)
    ds = load_dataset(str(root), val_fraction=0.2)
    assert ds.val_by == "clip" and ds.counts() == {"train": 16, "val": 4, "test": 2}
    assert any("holds no videos, so validation is taken out of train/" in note for note in ds.notes), ds.notes


def test_folder_splits_test_class_must_exist_in_train(tmp_path):
    root = tmp_path / "ds"
    touch(root / "train" / "a" / "1.mp4")
    touch(root / "train" / "b" / "1.mp4")
    touch(root / "test" / "c" / "1.mp4")
    with pytest.raises(DatasetError, match=r"has a class folder that .* lacks: c;"):
        load_dataset(str(root))
    touch(root / "test" / "d" / "1.mp4")
    with pytest.raises(DatasetError, match=r"has class folders that .* lacks: c, d;"):
        load_dataset(str(root))


def test_folders_without_videos_are_counted_in_the_notes(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b"):
        touch(root / cls / "1.mp4")
    (root / "empty").mkdir()
    assert load_dataset(str(root)).notes[0] == "ignored 1 folder without videos: empty"
    (root / "also-empty").mkdir()
    assert load_dataset(str(root)).notes[0] == "ignored 2 folders without videos: also-empty, empty"


def test_folder_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_dataset(str(tmp_path / "nope"))
    assert "does not exist" in assert_one_line(exc)
    for blank in ("", "  "):  # not the working folder
        with pytest.raises(DatasetError, match="the dataset is empty"):
            load_dataset(blank)
    (tmp_path / "file.mp4").write_bytes(b"")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset(str(tmp_path / "file.mp4"))
    empty = tmp_path / "empty"
    touch(empty / "x" / "readme.txt")
    with pytest.raises(DatasetError) as exc:
        load_dataset(str(empty))
    message = assert_one_line(exc)
    assert "no videos found" in message and ".mp4" in message
    touch(empty / "only" / "clip.mp4")
    with pytest.raises(DatasetError, match="one class only"):
        load_dataset(str(empty))


def test_layout_detection_by_content(tmp_path):
    (tmp_path / "u" / "ucfTrainTestlist").mkdir(parents=True)
    (tmp_path / "h" / "testTrainMulti_7030_splits").mkdir(parents=True)
    (tmp_path / "s" / "train").mkdir(parents=True)
    (tmp_path / "f" / "cls").mkdir(parents=True)
    assert [detect_layout(tmp_path / d) for d in "uhsf"] == ["ucf101", "hmdb51", "folder-splits", "folder"]


# ------------------------------------------------------------------------------------------ splits


@pytest.mark.parametrize(
    "name, group",
    [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup/g08"),
        ("v_HandStandPushups_g25_c04.mp4", "HandStandPushups/g25"),
        ("Jump_g3_c1.mp4", "Jump/g3"),
        ("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", None),
        ("clip.mp4", None),
        ("v_Foo_g08.avi", None),
    ],
)
def test_group_of(name, group):
    assert group_of(name) == group
    assert group_of(Path(name)) == group


def test_split_validation_mixes_groups_and_single_clips(tmp_path):
    grouped = [Sample(tmp_path / f"v_A_g{g}_c{c}.avi", 0, f"A/g{g}") for g in range(1, 5) for c in range(1, 4)]
    loose = [Sample(tmp_path / f"b{i}.avi", 1, None) for i in range(4)]
    train, val, how = split_validation(grouped + loose, 0.25, seed=7)
    assert how == "group"
    assert len([s for s in val if s.label == 0]) == 3  # one whole group of 3
    assert len({s.group for s in val if s.label == 0}) == 1
    assert len([s for s in val if s.label == 1]) == 1  # one of four single clips
    assert not ({s.group for s in train if s.label == 0} & {s.group for s in val if s.label == 0})
    # Order is kept: both parts are sub-sequences of the input.
    everything = grouped + loose
    assert [everything.index(s) for s in train] == sorted(everything.index(s) for s in train)


def test_split_validation_keeps_one_unit_per_class_in_train(tmp_path):
    samples = [Sample(tmp_path / "only.avi", 0), Sample(tmp_path / "x.avi", 1), Sample(tmp_path / "y.avi", 1)]
    train, val, how = split_validation(samples, 0.9, seed=0)
    assert how == "clip"
    assert [s.label for s in train] == [0, 1] and [s.label for s in val] == [1]


def test_a_class_keeps_its_validation_clips_when_other_classes_come_or_go(tmp_path):
    """Otherwise `evaluate --subset val` after a class is added would score clips the model trained on."""
    def make(classes):
        root = tmp_path / "-".join(classes)
        for name in classes:
            for i in range(12):
                touch(root / name / f"{name}_{i}.avi")
        return load_dataset(root, val_fraction=0.25, seed=3)

    def val_of(dataset, name):
        return sorted(s.path.name for s in dataset.val if dataset.labels[s.label] == name)

    before = make(["left", "right"])
    after = make(["aaa_new", "left", "right"])  # sorts first: every index moves
    assert before.labels.index("left") != after.labels.index("left")
    for name in ("left", "right"):
        assert val_of(before, name) == val_of(after, name) and len(val_of(before, name)) == 3


def test_phone_and_camcorder_videos_are_found_but_not_typescript(tmp_path):
    from varec_cli.video import find_videos

    for name in ("phone.3GP", "old.3g2", "free.ogv", "camcorder.m2ts", "clip.mp4", "app.ts", "module.mts"):
        touch(tmp_path / name)
    assert [p.name for p in find_videos(tmp_path)] == ["camcorder.m2ts", "clip.mp4", "free.ogv", "old.3g2", "phone.3GP"]


def test_a_local_folder_named_like_the_official_archive_is_that_folder(tmp_path, monkeypatch):
    """`UCF101` (the folder the official archive unpacks to) in the current directory is what the user
    means; `ucf101` is always the name, and `UCF101` without such a folder is taken for it too."""
    from varec_cli.datasets import resolve_dataset_root

    monkeypatch.chdir(tmp_path)
    assert resolve_dataset_root("UCF101") == ("ucf101", paths.data_dir() / "ucf101", "ucf101")
    (tmp_path / "UCF101").mkdir()
    assert resolve_dataset_root("UCF101") == ("UCF101", Path("UCF101"), None)
    assert resolve_dataset_root("ucf101") == ("ucf101", paths.data_dir() / "ucf101", "ucf101")


def test_class_folders_an_official_layout_leaves_out_are_warned_of(isolated_env):
    """A class folder with videos that HMDB51's split files (or UCF101's classInd.txt) do not name
    was dropped without a word: the run had a class fewer than the user put there."""
    root = make_hmdb51(paths.data_dir() / "hmdb51")
    assert load_dataset("hmdb51").warnings == []
    touch(root / "jump" / "Movie0_jump_u_nm_np1_fr_goo_0.avi")
    (root / "empty").mkdir()  # no videos: nothing left out
    ds = load_dataset("hmdb51")
    assert ds.labels == ["brush_hair", "climb", "wave"]
    assert ds.warnings == [
        f"HMDB51 at {root}: a class folder with videos but no <class>_test_split1.txt in "
        "testTrainMulti_7030_splits/, left out: jump"
    ]
    ucf = make_ucf101(paths.data_dir() / "ucf101")
    assert load_dataset("ucf101").warnings == []
    for extra in ("Zumba", "Yoga"):
        touch(ucf / "UCF-101" / extra / f"v_{extra}_g01_c01.avi")
    touch(ucf / "UCF-101" / "archery" / "v_Archery_g99_c01.avi")  # the Archery class spelt otherwise: named
    assert load_dataset("ucf101").warnings == [
        f"UCF101 at {ucf}: 2 class folders in UCF-101/ that ucfTrainTestlist/classInd.txt does not name, left out: "
        "Yoga, Zumba"
    ]


def test_a_val_or_test_folder_without_some_class_is_warned_of(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b", "c"):
        touch(root / "train" / cls / "1.mp4")
    touch(root / "val" / "a" / "1.mp4")
    touch(root / "test" / "a" / "1.mp4")
    touch(root / "test" / "c" / "1.mp4")
    assert load_dataset(str(root)).warnings == [
        f"{root / 'val'} has no videos of 2 classes that train/ has: b, c; validation accuracy says nothing of them",
        f"{root / 'test'} has no videos of 1 class that train/ has: b; a test evaluation says nothing of it",
    ]


def test_folders_inside_a_class_reached_through_links_are_searched_once(tmp_path):
    """A dataset put together with links to other disks: a linked folder inside a class was skipped,
    its videos silently missing. A link back up the tree is no endless search."""
    elsewhere = tmp_path / "other-disk" / "waving"
    touch(elsewhere / "w1.mp4")
    touch(elsewhere / "deeper" / "w2.mp4")
    root = tmp_path / "ds"
    touch(root / "wave" / "w0.mp4")
    touch(root / "run" / "r0.mp4")
    (root / "wave" / "more").symlink_to(elsewhere, target_is_directory=True)
    (root / "wave" / "loop").symlink_to(root, target_is_directory=True)
    ds = load_dataset(str(root), val_fraction=0.0)
    assert sorted(s.path.relative_to(root).as_posix() for s in ds.train if ds.labels[s.label] == "wave") == [
        "wave/more/deeper/w2.mp4", "wave/more/w1.mp4", "wave/w0.mp4",
    ]
    assert ds.counts()["train"] == 4 and ds.warnings == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may read anything")
def test_a_folder_inside_a_class_that_cannot_be_read_is_warned_of(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b"):
        touch(root / cls / "1.mp4")
    touch(root / "a" / "locked" / "2.mp4")
    (root / "a" / "locked").chmod(0)
    try:
        ds = load_dataset(str(root), val_fraction=0.0)
    finally:
        (root / "a" / "locked").chmod(0o755)
    assert ds.counts()["train"] == 2
    assert ds.warnings == [
        f"cannot read 1 folder under {root} ({root / 'a' / 'locked'}: Permission denied): the videos in it are left out"
    ]


def test_one_video_reached_through_a_link_in_two_classes_or_two_parts_is_an_error(tmp_path):
    """Links are followed now: a link from one class folder into another put the same clips in both
    classes, and one from val/ into train/ measured clips trained on, without a word."""
    root = tmp_path / "ds"
    for cls in ("A", "B"):
        for i in range(3):
            touch(root / cls / f"{cls.lower()}{i}.avi")
    (root / "B" / "more").symlink_to(root / "A", target_is_directory=True)
    with pytest.raises(DatasetError) as two_classes:
        load_dataset(str(root))
    assert assert_one_line(two_classes) == (
        f"{root / 'A' / 'a0.avi'} and {root / 'B' / 'more' / 'a0.avi'} are one file, in two classes (A, B): a link "
        "leads from one class folder into another; each video belongs to one class"
    )
    parts = tmp_path / "parts"
    for part in ("train", "val"):
        for cls in ("A", "B"):
            touch(parts / part / cls / f"{part}-{cls}.avi")
    (parts / "val" / "A" / "more").symlink_to(parts / "train" / "A", target_is_directory=True)
    with pytest.raises(DatasetError, match=r"are one file, in both train and val: a link leads from one into the other"):
        load_dataset(str(parts))
    (parts / "val" / "A" / "more").unlink()
    (parts / "train" / "B" / "again.avi").symlink_to(parts / "train" / "B" / "train-B.avi")
    with pytest.raises(DatasetError, match=r"are one file, reached through a link: each video belongs in a dataset once"):
        load_dataset(str(parts))


def test_a_class_folder_named_through_a_link_does_not_let_a_link_climb_out_of_it(tmp_path):
    """`up -> ../..` inside a class: not followed when the class is reached as it is, nor through a
    link to the dataset (the folders above it as named are not the folders above it on the disk)."""
    from varec_cli.video import find_videos

    real = tmp_path / "real"
    touch(real / "ds" / "Walk" / "w.avi")
    touch(real / "other" / "secret.avi")
    (real / "ds" / "Walk" / "up").symlink_to(Path("..") / "..", target_is_directory=True)
    (tmp_path / "alias").symlink_to(real / "ds", target_is_directory=True)
    assert find_videos(real / "ds" / "Walk") == [real / "ds" / "Walk" / "w.avi"]
    assert find_videos(tmp_path / "alias" / "Walk") == [tmp_path / "alias" / "Walk" / "w.avi"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may read anything")
def test_a_class_folder_that_cannot_be_read_is_not_called_one_without_videos(tmp_path):
    root = tmp_path / "ds"
    for cls in ("a", "b", "c"):
        touch(root / cls / "1.mp4")
    touch(root / "d" / "inner" / "1.mp4")
    (root / "c").chmod(0o300)
    (root / "d" / "inner").chmod(0o300)  # its only videos out of reach: not a class "without videos" either
    try:
        ds = load_dataset(str(root), val_fraction=0.0)
    finally:
        (root / "c").chmod(0o755)
        (root / "d" / "inner").chmod(0o755)
    assert ds.labels == ["a", "b"] and ds.notes == []
    assert ds.warnings == [
        f"cannot read 2 folders under {root} ({root / 'c'}: Permission denied; and 1 more): the videos in them are left out"
    ]
