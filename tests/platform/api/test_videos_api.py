"""The OpenAI Videos API on a real Ray Serve app: the pinned `openai` client end to end, then every
kind of bad request, each answered in OpenAI's error shape without losing what was accepted."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import openai
import pytest
from PIL import Image
from ray._common.test_utils import wait_for_condition

from reelforge.models.video_io import read_video
from tests.harness import PROMPT, assert_openai_error, register_fixture_adapter

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
warnings.filterwarnings("ignore", category=DeprecationWarning)  # the client marks the Sora API deprecated


@pytest.fixture(scope="module")
def keys(api_platform) -> dict[str, str]:
    store = api_platform.tenants
    keys = {}
    for name, rpm, concurrency in (
        ("acme", None, None),
        ("globex", None, None),
        ("throttled", 2, None),
        ("single", None, 1),
    ):
        keys[name] = store.create(name, requests_per_minute=rpm, concurrent_jobs=concurrency)[1]
    return keys


def openai_client(platform, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0)


def wait_until_finished(http, video_id: str, timeout: float = 120) -> dict:
    def finished():
        body = http.get(f"/videos/{video_id}").json()
        return body if body["status"] in ("completed", "failed") else None

    wait_for_condition(lambda: finished() is not None, timeout=timeout, retry_interval_ms=100)
    return finished()


def test_openai_client_creates_polls_downloads_lists_and_deletes(api_platform, keys, tmp_path):
    client = openai_client(api_platform, keys["acme"])
    video = client.videos.create_and_poll(
        prompt=PROMPT, model="reelforge-tiny", seconds="2", size="48x32", poll_interval_ms=100
    )
    assert video.status == "completed" and video.progress == 100 and video.error is None
    assert (video.model, video.seconds, video.size, video.prompt) == ("reelforge-tiny", "2", "48x32", PROMPT)
    assert video.completed_at >= video.created_at and video.expires_at > video.completed_at

    path = tmp_path / "video.mp4"
    path.write_bytes(client.videos.download_content(video.id).read())
    decoded = read_video(path)
    assert (decoded.width, decoded.height, decoded.num_frames) == (48, 32, 2 * 8 + 1)  # 8 fps, 4k+1 frames
    thumbnail = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read()))
    assert thumbnail.size == (48, 32)

    assert video.id in [v.id for v in client.videos.list(limit=100).data]
    assert client.videos.retrieve(video.id).status == "completed"
    deleted = client.videos.delete(video.id)
    assert deleted.deleted and deleted.id == video.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    job = api_platform.jobs.peek(video.id)
    assert job.deleted and job.files_removed  # a finished video's files go with it
    assert not (Path(api_platform.config.storage_url) / "videos" / "acme" / f"{video.id}.mp4").exists()
    assert job.replica and job.replica.startswith("generator-reelforge-tiny#")


def test_json_body_reports_progress_while_running_and_poll_hint(api_platform, keys):
    with api_platform.client(keys["acme"]) as http:
        created = http.post("/videos", json={"prompt": PROMPT, "seconds": 4, "steps": 150, "seed": 7, "guidance": 5.0})
        assert created.status_code == 200, created.text
        assert created.headers["openai-poll-after-ms"] == "100"
        assert created.json()["status"] == "queued"
        video_id = created.json()["id"]
        seen: list[tuple[str, int]] = []

        def mid_run():
            body = http.get(f"/videos/{video_id}").json()
            seen.append((body["status"], body["progress"]))
            return body["status"] == "in_progress" and 0 < body["progress"] < 100

        wait_for_condition(mid_run, timeout=120, retry_interval_ms=50)
        final = wait_until_finished(http, video_id)
    assert final["status"] == "completed", final
    progress = [p for status, p in seen if status == "in_progress"]
    assert progress == sorted(progress)
    job = api_platform.jobs.peek(video_id)
    assert (job.seed, job.steps, job.guidance, job.num_frames) == (7, 150, 5.0, 33)


def test_missing_wrong_and_revoked_keys_are_401(api_platform, keys):
    with api_platform.client(None) as http:
        assert "missing API key" in assert_openai_error(http.get("/videos"), 401, "invalid_api_key")["message"]
        bad_scheme = http.get("/videos", headers={"Authorization": f"Basic {keys['acme']}"})
        assert "Bearer" in assert_openai_error(bad_scheme, 401, "invalid_api_key")["message"]
    with api_platform.client("rf-acme-not-a-real-key") as http:
        assert_openai_error(http.post("/videos", json={"prompt": PROMPT}), 401, "invalid_api_key")
    store = api_platform.tenants
    _, temporary_key = store.create("short-lived")
    store.revoke_key("short-lived")
    with api_platform.client(temporary_key) as http:
        assert "revoked" in assert_openai_error(http.get("/videos"), 401)["message"]
    rotated = store.rotate_key("short-lived")
    with api_platform.client(rotated) as http:
        assert http.get("/videos").status_code == 200


def test_another_tenants_video_is_404_and_stays_intact(api_platform, keys):
    with api_platform.client(keys["acme"]) as acme, api_platform.client(keys["globex"]) as globex:
        video_id = acme.post("/videos", json={"prompt": PROMPT, "seconds": "1"}).json()["id"]
        wait_until_finished(acme, video_id)
        for response in (
            globex.get(f"/videos/{video_id}"),
            globex.get(f"/videos/{video_id}/content"),
            globex.delete(f"/videos/{video_id}"),
        ):
            assert_openai_error(response, 404, "not_found")
        assert video_id not in [v["id"] for v in globex.get("/videos", params={"limit": 100}).json()["data"]]
        assert_openai_error(globex.get("/videos", params={"after": video_id}), 404)
        assert acme.get(f"/videos/{video_id}").json()["status"] == "completed"
        assert acme.get(f"/videos/{video_id}/content").content[4:8] == b"ftyp"


def test_unknown_and_foreign_models_are_404_listing_what_exists(api_platform, keys):
    ft_id = register_fixture_adapter(api_platform.settings, "globex", "brand", "lower-third-orange")
    with api_platform.client(keys["acme"]) as http:
        error = assert_openai_error(
            http.post("/videos", json={"prompt": PROMPT, "model": "sora-2"}), 404, "model_not_found", "model"
        )
        assert "reelforge-tiny" in error["message"]
        # globex's adapter is "does not exist" for acme, exactly like a made-up id.
        assert_openai_error(http.post("/videos", json={"prompt": PROMPT, "model": ft_id}), 404, "model_not_found")
        assert_openai_error(http.post("/videos", json={"prompt": PROMPT, "model": "ft:reelforge-tiny:acme:nope"}), 404)
        assert [m["id"] for m in http.get("/models").json()["data"]] == ["reelforge-tiny"]
    with api_platform.client(keys["globex"]) as http:
        assert [m["id"] for m in http.get("/models").json()["data"]] == ["reelforge-tiny", ft_id]
        assert http.get(f"/models/{ft_id}").json()["owned_by"] == "globex"


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"prompt": PROMPT, "size": "1280x720"}, "size", "multiple of 8 between 8 and 128x128"),
        ({"prompt": PROMPT, "size": "wide"}, "size", "WIDTHxHEIGHT"),
        ({"prompt": PROMPT, "seconds": "12"}, "seconds", "allowed values: 1, 2, 3, 4, 5, 6, 7, 8"),
        ({"prompt": "x" * 2001}, "prompt", "at most 2000"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": PROMPT, "steps": 0}, "steps", "between 1 and"),
        ({"prompt": PROMPT, "guidance": "strong"}, "guidance", "guidance"),
        ({"prompt": PROMPT, "colour": "red"}, "colour", "unknown parameter"),
        ({"model": "reelforge-tiny"}, "prompt", "missing required parameter"),
    ],
)
def test_unsupported_values_are_400_naming_the_field(api_platform, keys, body, param, needle):
    with api_platform.client(keys["acme"]) as http:
        before = len(http.get("/videos", params={"limit": 100}).json()["data"])
        error = assert_openai_error(http.post("/videos", json=body), 400, param=param)
        assert needle in error["message"]
        assert len(http.get("/videos", params={"limit": 100}).json()["data"]) == before  # nothing recorded


def test_malformed_bodies_are_400_in_openai_shape(api_platform, keys):
    with api_platform.client(keys["acme"]) as http:
        json_headers = {"Content-Type": "application/json"}
        assert (
            "not valid JSON"
            in assert_openai_error(http.post("/videos", content=b'{"prompt": ', headers=json_headers), 400)["message"]
        )
        assert (
            "JSON object"
            in assert_openai_error(http.post("/videos", content=b'["a"]', headers=json_headers), 400)["message"]
        )
        broken_form = b'--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhello'  # no closing boundary
        response = http.post(
            "/videos", content=broken_form, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
        )
        assert_openai_error(response, 400)
        upload = http.post(
            "/videos", data={"prompt": PROMPT}, files={"input_reference": ("ref.png", b"\x89PNG", "image/png")}
        )
        assert_openai_error(upload, 400, param="input_reference")
        assert (
            "content type"
            in assert_openai_error(
                http.post("/videos", content=b"prompt", headers={"Content-Type": "text/plain"}), 400
            )["message"]
        )
        form = http.post(
            "/videos", data={"prompt": PROMPT, "seconds": "1", "seed": "3"}
        )  # a well-formed form still works
        assert form.status_code == 200 and api_platform.jobs.peek(form.json()["id"]).seed == 3
        assert_openai_error(http.get("/videos", params={"limit": 0}), 400, param="limit")
        assert_openai_error(http.get("/nowhere"), 404, "unknown_url")


def test_oversized_body_is_413(api_platform, keys):
    with api_platform.client(keys["acme"]) as http:
        error = assert_openai_error(http.post("/videos", json={"prompt": "x" * 70_000}), 413, "request_too_large")
        assert "65536" in error["message"]


def test_rate_limit_is_429_with_retry_after_and_accepted_jobs_finish(api_platform, keys):
    with api_platform.client(keys["throttled"]) as http:
        accepted = []
        for _ in range(2):
            response = http.post("/videos", json={"prompt": PROMPT, "seconds": "1"})
            assert response.status_code == 200, response.text
            assert response.headers["x-ratelimit-limit-requests"] == "2"
            accepted.append(response.json()["id"])
        refused = http.post("/videos", json={"prompt": PROMPT, "seconds": "1"})
        error = assert_openai_error(refused, 429, "rate_limit_exceeded")
        assert error["type"] == "requests" and "2 video requests per minute" in error["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert http.get("/videos").status_code == 200  # reads are not counted
        assert all(wait_until_finished(http, v)["status"] == "completed" for v in accepted)


def test_concurrency_quota_is_429_until_the_running_job_finishes(api_platform, keys):
    with api_platform.client(keys["single"]) as http:
        first = http.post("/videos", json={"prompt": PROMPT, "steps": 150, "seconds": "2"}).json()["id"]
        refused = http.post("/videos", json={"prompt": PROMPT})
        assert "limit 1" in assert_openai_error(refused, 429, "rate_limit_exceeded")["message"]
        assert int(refused.headers["Retry-After"]) >= 1
        wait_until_finished(http, first)
        assert http.post("/videos", json={"prompt": PROMPT, "seconds": "1"}).status_code == 200


def test_list_paginates_with_after_limit_and_order(api_platform):
    _, key = api_platform.tenants.create("pager")
    with api_platform.client(key) as http:
        ids = [http.post("/videos", json={"prompt": PROMPT, "seconds": "1", "seed": i}).json()["id"] for i in range(3)]
        page = http.get("/videos", params={"limit": 2}).json()
        assert [v["id"] for v in page["data"]] == ids[::-1][:2] and page["has_more"]
        assert page["first_id"] == ids[2] and page["last_id"] == ids[1]
        rest = http.get("/videos", params={"limit": 2, "after": page["last_id"]}).json()
        assert [v["id"] for v in rest["data"]] == [ids[0]] and not rest["has_more"]
        ascending = http.get("/videos", params={"order": "asc"}).json()
        assert [v["id"] for v in ascending["data"]] == ids
        for video_id in ids:
            wait_until_finished(http, video_id)


def test_client_sent_multiplex_header_is_ignored(api_platform, keys):
    register_fixture_adapter(api_platform.settings, "globex", "other", "lower-third-orange")
    with api_platform.client(keys["acme"]) as http:
        response = http.post(
            "/videos",
            json={"prompt": PROMPT, "seconds": "1"},
            headers={"serve_multiplexed_model_id": "globex.other.reelforge-tiny/1"},
        )
        video_id = response.json()["id"]
        assert wait_until_finished(http, video_id)["status"] == "completed"
    job = api_platform.jobs.peek(video_id)
    assert job.adapter is None and job.timings["adapter"] is None


def test_content_before_completion_is_409(api_platform, keys):
    with api_platform.client(keys["acme"]) as http:
        video_id = http.post("/videos", json={"prompt": PROMPT, "steps": 150, "seconds": "2"}).json()["id"]
        assert_openai_error(http.get(f"/videos/{video_id}/content"), 409, "video_not_ready")
        assert_openai_error(
            http.get(f"/videos/{video_id}/content", params={"variant": "spritesheet"}), 400, param="variant"
        )
        wait_until_finished(http, video_id)
        assert http.get(f"/videos/{video_id}/content").status_code == 200


def test_usage_totals_match_the_videos_that_ran(api_platform, tmp_path, monkeypatch, capsys):
    from tests.harness import run_cli

    _, key = api_platform.tenants.create("metered")
    with api_platform.client(key) as http:
        ids = [
            http.post("/videos", json={"prompt": PROMPT, "seconds": s, "seed": i}).json()["id"]
            for i, s in enumerate(["1", "1", "2"])
        ]
        for video_id in ids:
            assert wait_until_finished(http, video_id)["status"] == "completed"
        usage = http.get("/usage").json()
        assert_openai_error(http.get("/usage", params={"start_date": "yesterday"}), 400, param="start_date")
        assert http.get("/usage", params={"start_date": "2000-01-01", "end_date": "2000-01-02"}).json()["data"] == []
    totals = usage["totals"]["generation"]
    assert usage["tenant"] == "metered" and totals["jobs"] == 3 and totals["frames"] == 9 + 9 + 17
    recorded = sum(api_platform.jobs.peek(v).timings["generate_s"] for v in ids)
    assert totals["seconds"] == pytest.approx(recorded, abs=0.01)
    with api_platform.client(api_platform.tenants.create("unmetered")[1]) as other:
        assert other.get("/usage").json()["data"] == []  # usage is tenant-scoped
    config = tmp_path / "serve.yaml"
    config.write_text(f"home: {api_platform.config.home}\n")
    code, out, err = run_cli(["usage", "--tenant", "metered", "--config", str(config), "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert sum(row["frames"] for row in json.loads(out)) == 35
    code, _, err = run_cli(["usage", "--tenant", "nobody", "--config", str(config)], monkeypatch, capsys)
    assert code == 2 and "no tenant named 'nobody'" in err


def test_refused_prompts_never_reach_a_generator_and_are_audited_and_metered(api_platform):
    import hashlib

    _, key = api_platform.tenants.create("strict")
    with api_platform.client(key) as http:
        before = http.get("/videos", params={"limit": 100}).json()["data"]
        refused = http.post("/videos", json={"prompt": "a deepfake of a famous actor"})
        error = assert_openai_error(refused, 400, "content_policy_violation", "prompt")
        assert "safety rule" in error["message"] and "deep" in error["message"]
        tenant_rule = http.post("/videos", data={"prompt": "our competitor's logo melting"})
        assert (
            "blocked term 'competitor'" in assert_openai_error(tenant_rule, 400, "content_policy_violation")["message"]
        )
        assert http.get("/videos", params={"limit": 100}).json()["data"] == before  # no job was recorded
        accepted = http.post("/videos", json={"prompt": PROMPT, "seconds": "1"}).json()["id"]
        assert wait_until_finished(http, accepted)["status"] == "completed"
        mp4 = http.get(f"/videos/{accepted}/content").content
        events = http.get("/audit").json()["data"]
        usage = http.get("/usage").json()["totals"]
    refusals = [e for e in events if e["action"] == "video.refused"]
    assert [e["details"]["prompt"] for e in refusals] == [
        "a deepfake of a famous actor",
        "our competitor's logo melting",
    ]
    assert all(
        e["actor"] == f"rf-strict-...{key[-4:]}" and e["tenant"] == "strict"
        for e in events
        if e["action"] != "video.completed"
    )
    requested = next(e for e in events if e["action"] == "video.requested")
    completed = next(e for e in events if e["action"] == "video.completed")
    assert requested["subject"] == completed["subject"] == accepted
    assert completed["actor"].startswith("generator:generator-reelforge-tiny#")
    assert completed["details"]["video_sha256"] == hashlib.sha256(mp4).hexdigest()  # the audit names the exact file
    assert usage["refusal"]["jobs"] == 2 and usage["generation"]["jobs"] == 1
    with api_platform.client(api_platform.tenants.create("outsider")[1]) as other:
        assert other.get("/audit").json()["data"] == []  # tenant A cannot read tenant B's audit
        assert_openai_error(other.get("/audit", params={"limit": 0}), 400, param="limit")


def test_audit_records_the_adapter_hash_of_each_generation(api_platform):
    ft_id = register_fixture_adapter(api_platform.settings, "audited", "brand", "lower-third-orange")
    with api_platform.client(api_platform.tenants.create("audited")[1]) as http:
        video_id = http.post("/videos", json={"prompt": PROMPT, "model": ft_id, "seconds": "1"}).json()["id"]
        assert wait_until_finished(http, video_id)["status"] == "completed"
        completed = [e for e in http.get("/audit").json()["data"] if e["action"] == "video.completed"]
    from reelforge.jobs.adapter_registry import adapter_sha256
    from tests.harness import FIXTURE_ADAPTERS

    assert completed[0]["details"]["adapter"] == "audited.brand.reelforge-tiny/1"
    assert completed[0]["details"]["adapter_sha256"] == adapter_sha256(FIXTURE_ADAPTERS / "lower-third-orange")
