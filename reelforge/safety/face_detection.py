"""Find people's faces in frames and videos: the real-person safeguard's detector.

OpenCV's bundled Haar cascades (frontal, and profile both ways round) ship inside the
`opencv-python` wheel, so nothing is downloaded at run time. Each frame is scaled so its shorter
side is between `SCAN_MIN_SIDE` and `SCAN_MAX_SIDE` pixels before detection: a cascade's window is
24 px, so small frames (the tiny model's) are enlarged and 4K frames are shrunk to keep a scan in
milliseconds. A video is scanned at a few evenly spaced instants, decoded one frame at a time, so a
long 4K upload costs a dozen seeks, never a full decode.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from reelforge.errors import FaceDetectorUnavailableError

logger = logging.getLogger(__name__)

SCAN_MIN_SIDE = 240  # px: shorter side a small frame is enlarged to (24 px faces = 10% of it)
SCAN_MAX_SIDE = 480  # px: shorter side a large frame is shrunk to (24 px faces = 5% of it)
MIN_FACE_FRACTION = 0.05  # a face smaller than this share of the frame's shorter side is not counted
# (cascade, also run on the mirrored frame): the profile cascade knows faces turned one way only.
CASCADES = (("haarcascade_frontalface_default.xml", False), ("haarcascade_profileface.xml", True))
MIN_FACE_TEXTURE = 8.0  # grey levels: the least spread of tones inside a real face's box
# Skin is never one saturated paint colour: the median HSV saturation of a box's central half was
# 0.28 on a real portrait at every size and 0.84-0.91 on the reelforge-tiny outputs (red disks)
# the cascade took for faces.
MAX_FACE_SATURATION = 0.65
# Instants a video must show a face at: a person on screen stays for more than one sampled frame,
# while a cascade's false alarm on a shape rarely survives to the next (2 of 160 reelforge-tiny
# outputs had one, each at a single instant). A one-frame scan needs one.
MIN_FACE_INSTANTS = 2
# Overlapping detections a face needs: OpenCV's examples use 3-5, which on enlarged small frames
# takes a plain disk for a face (10 of 300 shapes-world clips); 9 takes none and still finds 75 of
# 100 25x25 LFW faces.
MIN_NEIGHBOURS = 9


@dataclass(frozen=True)
class FaceBox:
    """One detected face, in the scanned frame's own pixels."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class FaceScan:
    """What a scan of a video found: how many instants were looked at and where faces were."""

    instants_scanned: int
    face_instants_s: tuple[float, ...] = ()  # seconds from the start of each instant that shows a face
    largest_face_fraction: float = 0.0  # the largest face's height over the frame's shorter side
    boxes: tuple[FaceBox, ...] = field(default=(), repr=False)

    @property
    def shows_faces(self) -> bool:
        return shows_faces(len(self.face_instants_s), self.instants_scanned)

    def summary(self) -> str:
        """One line for an error, a review queue or an audit record."""
        if not self.face_instants_s:
            return f"no face in {self.instants_scanned} scanned frames"
        at = ", ".join(f"{t:.1f}s" for t in self.face_instants_s[:5])
        return f"faces in {len(self.face_instants_s)} of {self.instants_scanned} scanned frames (at {at})"

    def to_dict(self) -> dict:
        """JSON-ready: for file reports and audit details."""
        return {
            "instants_scanned": self.instants_scanned,
            "face_instants_s": [round(t, 3) for t in self.face_instants_s],
            "largest_face_fraction": round(self.largest_face_fraction, 4),
        }


def shows_faces(face_instants: int, instants_scanned: int) -> bool:
    """Whether a scan that saw faces at `face_instants` of `instants_scanned` instants shows a person."""
    return face_instants >= min(MIN_FACE_INSTANTS, max(1, instants_scanned))


@cache
def _cascade_paths() -> tuple[Path, ...]:
    import cv2

    root = getattr(getattr(cv2, "data", None), "haarcascades", None)
    paths = tuple(Path(root) / name for name, _ in CASCADES) if root else ()
    if not paths or not all(p.is_file() for p in paths):
        raise FaceDetectorUnavailableError(
            f"OpenCV {cv2.__version__} has no Haar cascades; install the opencv-python version in constraints.txt"
        )
    return paths


class FaceDetector:
    """Haar-cascade face detection on RGB frames; safe to share between threads."""

    def __init__(self, min_face_fraction: float = MIN_FACE_FRACTION) -> None:
        import cv2

        self._cv2 = cv2
        self.min_face_fraction = min_face_fraction
        mirrored = [m for _, m in CASCADES]
        self._cascades = [(cv2.CascadeClassifier(str(p)), m) for p, m in zip(_cascade_paths(), mirrored)]
        self._lock = threading.Lock()  # a CascadeClassifier keeps scratch state per call

    def faces(self, frame: np.ndarray) -> list[FaceBox]:
        """The faces in one (height, width, 3) uint8 RGB frame, in that frame's pixels."""
        cv2 = self._cv2
        height, width = frame.shape[:2]
        short = min(height, width)
        scale = min(max(short, SCAN_MIN_SIDE), SCAN_MAX_SIDE) / short
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)  # (H, W)
        if scale != 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        plain = gray
        gray = cv2.equalizeHist(gray)  # the cascades were trained on equalised faces
        min_side = max(24, round(self.min_face_fraction * min(gray.shape)))
        found: list[FaceBox] = []
        with self._lock:
            for cascade, mirrored in self._cascades:
                for flipped in (False, True) if mirrored else (False,):
                    image = gray[:, ::-1] if flipped else gray
                    boxes = cascade.detectMultiScale(
                        np.ascontiguousarray(image),
                        scaleFactor=1.1,
                        minNeighbors=MIN_NEIGHBOURS,
                        minSize=(min_side, min_side),
                    )
                    for x, y, w, h in boxes:
                        x = gray.shape[1] - x - w if flipped else x
                        if not _has_features(plain[y : y + h, x : x + w]):
                            continue
                        found.append(FaceBox(round(x / scale), round(y / scale), round(w / scale), round(h / scale)))
        return [box for box in _merge_overlapping(found) if not _painted(frame, box, cv2)]

    def scan_frames(self, frames: np.ndarray, fps: float, max_instants: int = 16) -> FaceScan:
        """Scan up to `max_instants` evenly spaced frames of a (frames, height, width, 3) video, the first included."""
        count = frames.shape[0]
        indices = sorted({round(i) for i in np.linspace(0, count - 1, min(count, max_instants))})
        return self._scan((index / fps, frames[index]) for index in indices)

    def scan_file(self, path: Path, probe, max_instants: int = 12) -> FaceScan:
        """Scan `max_instants` evenly spaced instants of a video file (a `VideoProbe` of it), one decoded frame each."""
        from reelforge.models.video_windows import decode_window

        duration = max(probe.duration_s, 0.0)
        short = min(probe.display_width, probe.display_height)
        scale = min(1.0, SCAN_MAX_SIDE / short)  # decode straight to the scan size: no 4K frame is held
        size = (max(2, round(probe.display_width * scale)), max(2, round(probe.display_height * scale)))
        instants = np.linspace(0, duration * 0.98, max_instants) if duration > 0 else np.zeros(1)
        fps = max(probe.fps, 1.0)

        def frames():
            for instant in instants:
                yield float(instant), decode_window(path, probe, float(instant), 1, fps, size)[0]

        return self._scan(frames())

    def _scan(self, frames) -> FaceScan:
        scanned, at, boxes, largest = 0, [], [], 0.0
        for instant, frame in frames:
            scanned += 1
            found = self.faces(frame)
            if found:
                at.append(instant)
                boxes.extend(found)
                largest = max(largest, max(b.height for b in found) / min(frame.shape[:2]))
        return FaceScan(scanned, tuple(at), largest, tuple(boxes))


def _has_features(face: np.ndarray) -> bool:
    """Whether a detected box's middle has the texture of eyes, nose and mouth.

    An enlarged flat disk (a ball, a shape on a plain background) can pass the cascade once
    equalised; its middle is one flat tone, a face's never is.
    """
    height, width = face.shape
    middle = face[height // 5 : height - height // 5, width // 5 : width - width // 5]  # (0.6h, 0.6w)
    return middle.size > 0 and float(middle.std()) >= MIN_FACE_TEXTURE


def _painted(frame: np.ndarray, box: FaceBox, cv2) -> bool:
    """Whether a box's central half is one saturated colour (a painted shape, not skin)."""
    qh, qw = box.height // 4, box.width // 4
    middle = frame[box.y + qh : box.y + box.height - qh, box.x + qw : box.x + box.width - qw]  # (h/2, w/2, 3)
    if middle.size == 0:
        return False
    hsv = cv2.cvtColor(np.ascontiguousarray(middle), cv2.COLOR_RGB2HSV)
    return float(np.median(hsv[..., 1])) / 255.0 > MAX_FACE_SATURATION


def _merge_overlapping(boxes: list[FaceBox]) -> list[FaceBox]:
    """One box per face: the frontal and profile cascades often both find a three-quarter face."""
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: -b.width * b.height):
        if all(_overlap(box, other) < 0.3 for other in kept):
            kept.append(box)
    return kept


def _overlap(a: FaceBox, b: FaceBox) -> float:
    """Intersection over the smaller box's area."""
    width = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    height = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / min(a.width * a.height, b.width * b.height)


@cache
def shared_detector() -> FaceDetector:
    """One detector per process (the cascades take tens of milliseconds to load)."""
    return FaceDetector()
