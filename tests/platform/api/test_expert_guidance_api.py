"""`guidance_2` (Wan 2.2 A14B's low-noise expert scale) through the API app (FastAPI's TestClient, real stores).

The generators' capabilities are the one stand-in (see `ApiClients`): here they say how many
experts the served model has, so each branch of the rule is reached without a 14B deployment.
That a loaded two-expert model reports its experts, and that a job's `guidance_2` reaches the
sampler, is tested on tiny random A14B configs in tests/models/test_wan22_families.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from reelforge.platform.serving.generation_worker import job_settings
from tests.harness import PROMPT, TINY, ApiClients, assert_openai_error

TWO_EXPERTS = replace(TINY, experts=2, default_guidance_2=3.0)


@pytest.fixture
def a14b(tmp_path) -> ApiClients:
    return ApiClients(tmp_path / "home", caps=TWO_EXPERTS)


@pytest.fixture
def one_expert(tmp_path) -> ApiClients:
    return ApiClients(tmp_path / "home")


def _recorded(api: ApiClients) -> int:
    return len(api.acme.get("/v1/videos", params={"limit": 100}).json()["data"])


def test_guidance_2_is_recorded_reaches_the_sampler_and_survives_a_remix(a14b):
    created = a14b.acme.post("/v1/videos", json={"prompt": PROMPT, "guidance": 4.0, "guidance_2": 2.5, "seed": 4})
    assert created.status_code == 200, created.text
    job = a14b.services.videos.jobs.peek(created.json()["id"])
    assert (job.guidance, job.guidance_2) == (4.0, 2.5)
    settings = job_settings(job)
    assert (settings.guidance, settings.guidance_2, settings.seed) == (4.0, 2.5, 4)

    remixed = a14b.acme.post(f"/v1/videos/{job.id}/remix", json={"prompt": "a blue square moving up"})
    assert remixed.status_code == 200, remixed.text
    again = a14b.services.videos.jobs.peek(remixed.json()["id"])
    assert (again.guidance, again.guidance_2) == (4.0, 2.5)

    # Left out, the model's default applies at sampling time (None travels as None).
    plain = a14b.acme.post("/v1/videos", json={"prompt": PROMPT})
    assert job_settings(a14b.services.videos.jobs.peek(plain.json()["id"])).guidance_2 is None


def test_a_one_expert_model_refuses_guidance_2_by_name(one_expert):
    before = _recorded(one_expert)
    error = assert_openai_error(
        one_expert.acme.post("/v1/videos", json={"prompt": PROMPT, "guidance_2": 3.0}), 400, param="guidance_2"
    )
    assert "two-expert" in error["message"] and "reelforge-tiny" in error["message"]
    assert _recorded(one_expert) == before


@pytest.mark.parametrize("value", [31.0, -1.0, True, "strong", float("inf")])
def test_absurd_guidance_2_is_400_naming_it(a14b, value):
    body = {"prompt": PROMPT, "guidance_2": value}
    response = (
        a14b.acme.post("/v1/videos", json=body)
        if value != float("inf")
        else a14b.acme.post(
            "/v1/videos",
            content=b'{"prompt": "a red circle", "guidance_2": Infinity}',
            headers={"Content-Type": "application/json"},
        )
    )
    assert_openai_error(response, 400, param="guidance_2")
    assert _recorded(a14b) == 0


def test_form_fields_carry_guidance_2(a14b):
    created = a14b.acme.post("/v1/videos", data={"prompt": PROMPT, "guidance_2": "1.5"})
    assert created.status_code == 200, created.text
    assert a14b.services.videos.jobs.peek(created.json()["id"]).guidance_2 == 1.5


def test_negative_prompt_counts_the_low_noise_scale(a14b):
    # guidance 1 on the high-noise steps, but the low-noise steps (default 3.0) make an unconditional pass
    used = a14b.acme.post("/v1/videos", json={"prompt": PROMPT, "negative_prompt": "blurry", "guidance": 1.0})
    assert used.status_code == 200, used.text
    ignored = a14b.acme.post(
        "/v1/videos", json={"prompt": PROMPT, "negative_prompt": "blurry", "guidance": 1.0, "guidance_2": 1.0}
    )
    assert "no effect at guidance 1" in assert_openai_error(ignored, 400, param="negative_prompt")["message"]
