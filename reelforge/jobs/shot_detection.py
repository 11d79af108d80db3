"""Shot boundaries of a video, so that no training clip spans a hard cut.

PySceneDetect's ContentDetector (HSV change between consecutive frames, the field's standard) runs
over one streaming pass with PyAV, on frames downscaled to about 256 px wide; it holds a frame or
two, never the video. A clip that straddles a cut would teach the model jump cuts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from reelforge.models.video_probe import VideoProbe

logger = logging.getLogger(__name__)
DETECTION_WIDTH = 256  # px: enough to see a cut, cheap to compare
DEFAULT_THRESHOLD = 27.0  # ContentDetector's default: a hard cut scores far above, camera motion below
MIN_SHOT_S = 0.25  # shorter "shots" are flashes or fades, merged into their neighbour


@dataclass(frozen=True)
class Shot:
    """Seconds [start_s, end_s) of one continuous shot, the `index`-th of its video."""

    index: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def detect_shots(path: str | Path, probe: VideoProbe, threshold: float = DEFAULT_THRESHOLD) -> list[Shot]:
    """The video's shots in order, covering its whole duration (one shot when there is no cut)."""
    from scenedetect import ContentDetector, SceneManager, open_video

    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.auto_downscale = False
    manager.downscale = max(1, probe.display_width // DETECTION_WIDTH)
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=max(1, round(MIN_SHOT_S * probe.fps))))
    manager.detect_scenes(video)
    scenes = manager.get_scene_list(start_in_scene=True)
    shots = [Shot(i, start.get_seconds(), end.get_seconds()) for i, (start, end) in enumerate(scenes)]
    if not shots:
        shots = [Shot(0, 0.0, probe.duration_s)]
    logger.info("%s: %d shots (cuts at %s)", Path(path).name, len(shots), [round(s.start_s, 2) for s in shots[1:]])
    return shots
