"""The AI-content labels of GB 45438-2025: the visible label drawn and found in real MP4s, the
`AIGC` metadata written and matched to the record, and the label policy's floors and overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from reelforge.models.video_io import Video, read_video, write_mp4
from reelforge.provenance.aigc_metadata import AIGC_KEY, FIELDS, aigc_metadata, read_aigc
from reelforge.provenance.explicit_label import detect_label, draw_label, label_stamp, target_text_height
from reelforge.provenance.label_policy import ExplicitLabelPolicy, ImplicitLabelPolicy, LabelSection


def _footage(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A colour gradient scrolling with grain: detail everywhere, as cheap to encode as a real picture."""
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (np.arange(width + num_frames * 4, dtype=np.float32) / 97)
    row = 128 + 70 * np.stack([np.sin(phase), np.sin(phase + 2), np.sin(phase + 4)], axis=-1)  # (W', 3)
    grain = rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    frames = [row[None, 4 * t : 4 * t + width] + grain for t in range(num_frames)]  # (H, W, 3) each
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)  # (F, H, W, 3)


@pytest.mark.parametrize(
    ("height", "width", "fps", "frames", "position"),
    [
        (32, 32, 8.0, 17, "top-left"),
        (128, 128, 8.0, 17, "bottom-right"),
        (480, 832, 16.0, 33, "top-right"),
        (704, 1280, 8.0, 17, "bottom-left"),
    ],
)
def test_the_label_is_found_in_an_encoded_mp4_for_two_seconds_at_the_configured_size(
    tmp_path, height, width, fps, frames, position
):
    policy = ExplicitLabelPolicy(position=position)
    footage = _footage(frames, height, width)
    path = write_mp4(Video(draw_label(footage, fps, policy), fps), tmp_path / "labelled.mp4")
    found = detect_label(read_video(path).frames, fps, policy)
    assert found.present and found.valid, found.problems
    assert found.labelled_seconds >= min(2.0, frames / fps)
    assert found.text_height_px >= target_text_height(policy, height, width)
    assert found.text_height_px >= 0.05 * min(height, width)  # the standard's 5% of the shorter side

    unlabelled = write_mp4(Video(footage, fps), tmp_path / "plain.mp4")
    assert not detect_label(read_video(unlabelled).frames, fps, policy).present


def test_the_label_leaves_the_frames_after_its_duration_alone():
    policy = ExplicitLabelPolicy(duration_s=2.0)
    footage = _footage(40, 64, 64)
    labelled = draw_label(footage, 8.0, policy)
    assert not np.array_equal(labelled[15], footage[15]) and np.array_equal(labelled[16:], footage[16:])
    # A label drawn for one second only is reported as too short.
    short = detect_label(draw_label(footage, 8.0, ExplicitLabelPolicy(duration_s=2.0))[:8], 8.0, policy)
    assert short.valid  # an eight-frame video at 8 fps is labelled throughout: that is all there is
    cut = footage.copy()
    cut[:8] = labelled[:8]
    found = detect_label(cut, 8.0, policy)
    assert found.present and not found.valid and "first 1.00 s only" in found.problems[0]


def test_a_smaller_label_than_the_policy_asks_is_not_taken_for_it(tmp_path):
    footage = _footage(17, 480, 832)
    small = ExplicitLabelPolicy(min_height_fraction=0.05, min_height_px=6)
    large = ExplicitLabelPolicy(min_height_fraction=0.10)
    assert label_stamp(large, 480, 832).text_height > label_stamp(small, 480, 832).text_height
    found = detect_label(draw_label(footage, 8.0, small), 8.0, large)
    assert not found.valid


def test_the_policy_keeps_the_standards_floors_and_refuses_text_the_font_cannot_draw():
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        ExplicitLabelPolicy(duration_s=1.0)
    with pytest.raises(ValidationError, match="greater than or equal to 0.05"):
        ExplicitLabelPolicy(min_height_fraction=0.01)
    with pytest.raises(ValidationError, match="cannot draw"):
        ExplicitLabelPolicy(text="AI生成 🎬")
    assert ExplicitLabelPolicy(text="人工智能生成内容 AI-generated").text


def test_a_tenants_overrides_apply_over_the_platform_default():
    section = LabelSection.model_validate(
        {
            "default": {"implicit": {"content_producer": "acme-cloud-001"}},
            "tenants": {"globex": {"explicit": {"text": "AI合成", "position": "bottom-right"}}},
        }
    )
    globex, other = section.policy_for("globex"), section.policy_for("initech")
    assert (globex.explicit.text, globex.explicit.position, globex.explicit.duration_s) == (
        "AI合成",
        "bottom-right",
        2.0,
    )
    assert globex.implicit.content_producer == other.implicit.content_producer == "acme-cloud-001"
    assert other.explicit.text == "AI生成"
    with pytest.raises(ValidationError, match="labels.tenants.bad"):
        LabelSection.model_validate({"tenants": {"bad": {"explicit": {"duration_s": 0.5}}}})
    # A tenant outside the labelling rules may go unlabelled, but only where the operator allows it.
    with pytest.raises(ValidationError, match="needs labels.allow_unlabelled"):
        LabelSection.model_validate({"tenants": {"eu-only": {"enabled": False}}})
    allowed = LabelSection.model_validate({"allow_unlabelled": True, "tenants": {"eu-only": {"enabled": False}}})
    assert not allowed.policy_for("eu-only").enabled and allowed.policy_for("other").enabled


def test_aigc_metadata_holds_every_field_and_is_matched_to_the_record(tmp_path):
    policy = ImplicitLabelPolicy(content_producer="op-42", reserved_code1="sig:abc")
    path = write_mp4(Video(_footage(9, 32, 32), 8.0), tmp_path / "v.mp4", metadata=aigc_metadata(policy, "video_1"))
    found = read_aigc(path, "video_1", policy)
    assert found.present and found.valid, found.problems
    assert list(found.fields) == list(FIELDS)
    assert (found.fields["Label"], found.fields["ContentProducer"], found.fields["ProduceID"]) == (
        "1",
        "op-42",
        "video_1",
    )
    assert found.fields["ReservedCode1"] == "sig:abc"
    mismatch = read_aigc(path, "video_2", policy)
    assert mismatch.present and not mismatch.valid and "does not match" in mismatch.problems[0]

    forged = write_mp4(
        Video(_footage(9, 32, 32), 8.0), tmp_path / "f.mp4", metadata={AIGC_KEY: json.dumps({"Label": "1"})}
    )
    problems = read_aigc(forged, "video_1", policy).problems
    assert "AIGC lacks ContentProducer" in problems and any("ProduceID" in p for p in problems)
    bare = write_mp4(Video(_footage(9, 32, 32), 8.0), tmp_path / "b.mp4")
    assert not read_aigc(bare, "video_1", policy).present
