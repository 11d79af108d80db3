"""The sampling strategies' arithmetic: where windows go, that none spans a cut or overlaps another,
and how the per-video and per-dataset caps share clips out."""

from __future__ import annotations

import pytest

from reelforge.jobs.clip_sampling import ClipWindow, SamplingStrategy, cap_dataset, plan_windows
from reelforge.jobs.shot_detection import Shot

FPS, FRAMES = 8.0, 17  # 2.125 s windows


def shots_at(cuts: list[float], duration: float) -> list[Shot]:
    edges = [0.0, *cuts, duration]
    return [Shot(i, a, b) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


def no_overlap(windows: list[ClipWindow]) -> bool:
    return all(a.end_s <= b.start_s + 1e-9 for a, b in zip(windows, windows[1:]))


def test_scene_windows_stay_inside_shots_clear_of_every_cut():
    cuts = [7.3, 19.0, 33.5, 48.2]
    shots = shots_at(cuts, 60.0)
    margin = 1 / 30
    windows = plan_windows(60.0, FPS, FRAMES, max_clips=40, shots=shots, margin_s=margin)
    assert windows and no_overlap(windows)
    for w in windows:
        shot = shots[w.shot]
        assert shot.start_s <= w.start_s and w.end_s <= shot.end_s
        assert all(not (w.start_s - margin < cut < w.end_s + margin) for cut in cuts)
    assert {w.shot for w in windows} == {0, 1, 2, 3, 4}  # every shot is used


def test_scene_windows_spread_over_the_whole_video_when_capped():
    shots = shots_at([float(c) for c in range(10, 180, 10)], 180.0)  # 18 shots of 10 s
    windows = plan_windows(180.0, FPS, FRAMES, max_clips=8, shots=shots)
    assert len(windows) == 8 and windows[0].shot == 0 and windows[-1].shot == 17
    assert windows[-1].start_s > 150  # not just the first seconds
    head = plan_windows(180.0, FPS, FRAMES, max_clips=8, strategy=SamplingStrategy.HEAD)
    assert head[-1].end_s == pytest.approx(8 * FRAMES / FPS)  # the old policy: the first 17 s only


def test_shots_take_turns_and_short_shots_give_nothing():
    shots = [Shot(0, 0.0, 1.0), Shot(1, 1.0, 20.0), Shot(2, 20.0, 25.0)]  # a 1 s shot is shorter than a window
    windows = plan_windows(25.0, FPS, FRAMES, max_clips=4, shots=shots)
    assert [w.shot for w in windows] == [1, 1, 2, 2]  # turns: 1, 2, 1, 2 (shot 0 holds none)
    more = plan_windows(25.0, FPS, FRAMES, max_clips=6, shots=shots)
    assert [w.shot for w in more] == [1, 1, 1, 1, 2, 2]  # shot 2 is full at two: shot 1 takes the rest
    assert no_overlap(windows)


def test_uniform_spreads_evenly_and_head_is_consecutive():
    uniform = plan_windows(60.0, FPS, FRAMES, max_clips=5, strategy=SamplingStrategy.UNIFORM)
    assert [round(w.start_s, 3) for w in uniform] == [0.0, 14.469, 28.938, 43.406, 57.875]
    assert uniform[-1].end_s == pytest.approx(60.0)
    head = plan_windows(5.0, FPS, FRAMES, max_clips=8, strategy=SamplingStrategy.HEAD)
    assert [w.start_s for w in head] == [0.0, 2.125]  # the 0.75 s tail is dropped
    assert plan_windows(2.0, FPS, FRAMES, max_clips=8) == []  # shorter than one window


def test_dataset_cap_takes_clips_from_every_video_in_turn():
    plans = [plan_windows(d, FPS, FRAMES, max_clips=8, strategy=SamplingStrategy.UNIFORM) for d in (60, 60, 5)]
    capped = cap_dataset(plans, max_clips=7)
    assert [len(p) for p in capped] == [3, 2, 2]
    assert capped[0][0].start_s == 0.0 and capped[0][-1] == plans[0][-1]  # still spread over the video
    assert cap_dataset(plans, max_clips=100) == plans


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        plan_windows(10.0, 0.0, FRAMES, max_clips=1)


def test_a_shot_too_short_for_the_default_length_is_cut_to_a_shorter_bucket():
    shots = [Shot(0, 0.0, 10.0), Shot(1, 10.0, 11.5), Shot(2, 11.5, 11.9)]  # 1.5 s and 0.4 s shots
    windows = plan_windows(11.9, FPS, (17, 9), max_clips=8, shots=shots)
    by_shot = {w.shot: w.num_frames for w in windows}
    assert by_shot == {0: 17, 1: 9}  # the 0.4 s shot fits not even 9 frames (1.125 s)
    assert all(shots[w.shot].start_s <= w.start_s and w.end_s <= shots[w.shot].end_s for w in windows)
    assert plan_windows(11.9, FPS, 17, max_clips=8, shots=shots)[-1].shot == 0  # one length: the short shot gives none
