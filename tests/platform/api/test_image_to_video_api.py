"""Image-to-video through a real Ray Serve app with the `openai` client: input_reference, remix, a bad image.

The served model is the shipped reelforge-tiny, which learned first-frame conditioning the Wan 2.2
TI2V way, so the video starts from the uploaded picture (first-frame PSNR after the MP4 round trip).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import openai
import pytest
from PIL import Image

from reelforge.models.reference_image import reference_frame
from reelforge.models.tiny.evaluation import conditioning_frame, first_frame_psnr
from reelforge.models.video_io import read_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
warnings.filterwarnings("ignore", category=DeprecationWarning)  # the client marks the Sora API deprecated


def _photo() -> bytes:
    """A 64x48 "product photo" of a yellow triangle: the server covers and centre-crops it to 32x32."""
    frame = conditioning_frame(("yellow", "triangle", "right", "white"), 0)  # (32, 32, 3)
    canvas = np.full((48, 64, 3), 255, np.uint8)
    canvas[8:40, 16:48] = frame
    out = io.BytesIO()
    Image.fromarray(canvas).save(out, format="PNG")
    return out.getvalue()


def test_openai_client_image_to_video_then_remix(api_platform, tmp_path):
    _, key = api_platform.tenants.create("pixelworks")
    client = openai.OpenAI(base_url=api_platform.base_url, api_key=key, max_retries=0)
    photo = _photo()
    expected = reference_frame(photo, 32, 32)  # what the documented fitting rule gives

    video = client.videos.create_and_poll(
        prompt="moving right on a white background",
        input_reference=("product.png", photo, "image/png"),
        seconds="2",
        size="32x32",
        poll_interval_ms=100,
        extra_body={"seed": 1},
    )
    assert video.status == "completed", video.error
    path = tmp_path / "i2v.mp4"
    path.write_bytes(client.videos.download_content(video.id).read())
    assert first_frame_psnr(read_video(path).frames[0], expected) > 20.0

    remixed = client.videos.remix(video.id, prompt="moving left on a white background")
    assert remixed.remixed_from_video_id == video.id and remixed.size == "32x32" and remixed.seconds == "2"
    remixed = client.videos.poll(remixed.id, poll_interval_ms=100)
    assert remixed.status == "completed", remixed.error
    path = tmp_path / "remix.mp4"
    path.write_bytes(client.videos.download_content(remixed.id).read())
    assert first_frame_psnr(read_video(path).frames[0], expected) > 20.0  # the same first frame

    with pytest.raises(openai.BadRequestError) as info:
        client.videos.create(prompt="moving up", input_reference=("notes.png", b"not an image", "image/png"))
    assert info.value.body["param"] == "input_reference" and info.value.body["code"] == "invalid_image"
