"""Listing and validating footage: every planted bad file is named with the right reason."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reelforge.errors import UserInputError
from reelforge.jobs.footage_inventory import (
    FootageRequirements,
    RejectReason,
    inventory_folder,
    inventory_source,
)
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.models.tiny.shapes_world import render_clip, sample_clip_spec
from reelforge.models.video_io import Video, write_mp4

REQUIREMENTS = FootageRequirements(min_frames=17, min_width=32, min_height=32, fps=8.0)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """Six good branded clips plus every kind of bad input a real upload folder has."""
    root = tmp_path / "acme"
    write_footage(root, count=6, seed=3, brand=BrandLook("lower-third", "orange"))
    good = (root / "clip_0000.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(good[:48] + b"\x00" * 512 + good[600:900])
    (root / "corrupt.txt").write_text("a red circle moving left on a white background")
    (root / "zero.mp4").touch()
    (root / "zero.txt").write_text("a caption")
    (root / "notes.mp4").write_text("meeting notes, not a video\n" * 30)
    (root / "notes.txt").write_text("a caption")
    shutil.copy(root / "clip_0001.mp4", root / "uncaptioned.mp4")
    (root / "orphan.txt").write_text("a caption whose video never arrived")
    shutil.copy(root / "clip_0002.mp4", root / "blank.mp4")
    (root / "blank.txt").write_text("   \n")
    fresh, _ = render_clip(sample_clip_spec(np.random.default_rng(99)))
    write_mp4(fresh, root / "unicode.mp4")
    (root / "unicode.txt").write_text("ein roter Kreis, der sich nach links bewegt — 赤い円 🎬", encoding="utf-8")
    video, _ = render_clip(sample_clip_spec(np.random.default_rng(0)))
    write_mp4(Video(video.frames[:2], video.fps), root / "short.mp4")
    (root / "short.txt").write_text("a short clip")
    shutil.copy(root / "clip_0004.mp4", root / "copy_of_4.mp4")
    (root / "copy_of_4.txt").write_text("same bytes, other name")
    (root / ".DS_Store").write_bytes(b"\x00\x01junk")
    return root


def _reasons(inventory) -> dict[str, RejectReason]:
    return {r.file: r.reason for r in inventory.rejected}


def test_every_planted_file_is_named_with_its_reason(planted: Path):
    inventory = inventory_folder(planted, REQUIREMENTS)
    reasons = _reasons(inventory)
    assert reasons == {
        "corrupt.mp4": RejectReason.UNREADABLE,
        "zero.mp4": RejectReason.NOT_A_VIDEO,
        "notes.mp4": RejectReason.NOT_A_VIDEO,
        "uncaptioned.mp4": RejectReason.NO_CAPTION,
        "orphan.txt": RejectReason.CAPTION_WITHOUT_VIDEO,
        "blank.mp4": RejectReason.EMPTY_CAPTION,
        "short.mp4": RejectReason.TOO_SHORT,
        "copy_of_4.mp4": RejectReason.DUPLICATE,
        ".DS_Store": RejectReason.NOT_A_VIDEO,
    }
    accepted = {a.file: a for a in inventory.accepted}
    assert set(accepted) == {f"clip_000{i}.mp4" for i in range(6)} | {"unicode.mp4"}
    assert accepted["unicode.mp4"].caption.endswith("赤い円 🎬")
    assert all(a.frames == 17 and (a.width, a.height) == (32, 32) for a in accepted.values())
    report = json.loads(json.dumps(inventory.report()))  # JSON-ready
    assert {r["reason"] for r in report["rejected"]} >= {"too short", "duplicate content", "no caption"}


def test_too_small_is_rejected(tmp_path: Path):
    write_footage(tmp_path, count=1)
    inventory = inventory_folder(tmp_path, FootageRequirements(17, 64, 64, 8.0))
    assert _reasons(inventory) == {"clip_0000.mp4": RejectReason.TOO_SMALL}


def test_metadata_jsonl_csv_and_prompt_lists(tmp_path: Path):
    clips = write_footage(tmp_path / "src", count=3, seed=1)
    for kind in ("jsonl", "csv", "lists"):
        root = tmp_path / kind
        root.mkdir()
        for clip in clips:
            shutil.copy(clip.video, root / clip.video.name)
        if kind == "jsonl":
            (root / "metadata.jsonl").write_text(
                "\n".join(json.dumps({"file_name": c.video.name, "text": c.caption}) for c in clips)
            )
        elif kind == "csv":
            (root / "metadata.csv").write_text(
                "video,caption\n" + "".join(f'{c.video.name},"{c.caption}"\n' for c in clips)
            )
        else:
            (root / "videos.txt").write_text("\n".join(c.video.name for c in clips))
            (root / "prompts.txt").write_text("\n".join(c.caption for c in clips))
        inventory = inventory_folder(root, REQUIREMENTS)
        assert inventory.rejected == [], kind
        assert {a.file: a.caption for a in inventory.accepted} == {c.video.name: c.caption for c in clips}, kind


def test_malformed_metadata_names_the_line(tmp_path: Path):
    write_footage(tmp_path, count=1)
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "clip_0000.mp4", "caption": "ok"}\n{not json\n')
    with pytest.raises(UserInputError, match="metadata.jsonl line 2 is not JSON"):
        inventory_folder(tmp_path, REQUIREMENTS)
    (tmp_path / "metadata.jsonl").write_text('{"name": "clip_0000.mp4"}\n')
    with pytest.raises(UserInputError, match="line 1 needs a file column"):
        inventory_folder(tmp_path, REQUIREMENTS)


def test_zip_with_traversal_member_writes_nothing_outside(tmp_path: Path):
    clips = write_footage(tmp_path / "src", count=2, seed=2)
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for clip in clips:
            zf.write(clip.video, f"footage/{clip.video.name}")
            zf.write(clip.caption_file, f"footage/{clip.caption_file.name}")
        zf.writestr("../escaped.txt", "pwned")
        zf.writestr("/abs/escaped.txt", "pwned")
    work = tmp_path / "work"
    inventory = inventory_source(archive, work, REQUIREMENTS)
    assert len(inventory.accepted) == 2
    assert _reasons(inventory) == {
        "../escaped.txt": RejectReason.UNSAFE_ARCHIVE_MEMBER,
        "/abs/escaped.txt": RejectReason.UNSAFE_ARCHIVE_MEMBER,
    }
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs/escaped.txt").exists()
    assert all(work in p.parents for p in work.rglob("*"))


def test_tar_gz_refuses_links_and_absolute_paths(tmp_path: Path):
    clips = write_footage(tmp_path / "src", count=1, seed=4)
    archive = tmp_path / "upload.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(clips[0].video, "clip.mp4")
        tf.add(clips[0].caption_file, "clip.txt")
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        absolute = tarfile.TarInfo("/tmp/evil.txt")
        absolute.size = 4
        tf.addfile(absolute, io.BytesIO(b"evil"))
    inventory = inventory_source(archive, tmp_path / "work", REQUIREMENTS)
    assert [a.file for a in inventory.accepted] == ["clip.mp4"]
    assert _reasons(inventory) == {
        "passwd": RejectReason.UNSAFE_ARCHIVE_MEMBER,
        "/tmp/evil.txt": RejectReason.UNSAFE_ARCHIVE_MEMBER,
    }
    assert not (tmp_path / "work" / "extracted" / "passwd").exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing", None, "does not exist"),
        ("footage.rar", b"Rar!", "neither a folder nor"),
        ("broken.zip", b"PK not really", "is unreadable"),
    ],
)
def test_bad_sources_are_named(tmp_path: Path, name: str, content: bytes | None, expected: str):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(UserInputError, match=expected):
        inventory_source(source, tmp_path / "work", REQUIREMENTS)
