"""The API's contract without Ray: every route's response schema in /openapi.json, the OpenAI error
shape for bad input, tenant scoping and pagination, through FastAPI's TestClient.

The app and its stores are real (SQLite under a temporary home); the one stand-in is the generator
deployments' capabilities call, which isolates the routes from Ray Serve handles.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.harness import PROMPT, assert_openai_error


def test_openapi_describes_the_response_of_every_route(api):
    spec = api.anonymous.get("/openapi.json").json()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 19
    for path, method, operation in operations:
        ok = operation["responses"]["200"]["content"]
        assert any(media.get("schema") for media in ok.values()), f"{method.upper()} {path} has no response schema"
        if path.startswith("/v1/"):
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, f"{method.upper()} {path}"
    video = spec["components"]["schemas"]["VideoObject"]["properties"]
    assert {"id", "object", "status", "progress", "seconds", "size", "error"} <= set(video)


def test_a_video_is_created_listed_paged_and_scoped_to_its_tenant(api):
    created = api.acme.post("/v1/videos", json={"prompt": PROMPT, "seconds": "1", "size": "32x32", "seed": 3})
    assert created.status_code == 200, created.text
    video = created.json()
    assert (video["object"], video["status"], video["seconds"], video["size"]) == ("video", "queued", "1", "32x32")
    assert created.headers["openai-poll-after-ms"] == "1000" and created.headers["x-ratelimit-limit-requests"] == "1000"
    assert api.wakes == 1  # the dispatcher was told at once
    second = api.acme.post("/v1/videos", data={"prompt": PROMPT}).json()  # multipart/form works as JSON does

    page = api.acme.get("/v1/videos", params={"limit": 1}).json()
    assert (page["object"], [v["id"] for v in page["data"]], page["has_more"]) == ("list", [second["id"]], True)
    assert page["first_id"] == page["last_id"] == second["id"]
    rest = api.acme.get("/v1/videos", params={"limit": 1, "after": page["last_id"]}).json()
    assert ([v["id"] for v in rest["data"]], rest["has_more"]) == ([video["id"]], False)
    oldest_first = api.acme.get("/v1/videos", params={"order": "asc"}).json()
    assert [v["id"] for v in oldest_first["data"]] == [video["id"], second["id"]]

    assert api.acme.get(f"/v1/videos/{video['id']}").json()["id"] == video["id"]
    for request in (
        lambda c: c.get(f"/v1/videos/{video['id']}"),
        lambda c: c.delete(f"/v1/videos/{video['id']}"),
        lambda c: c.get(f"/v1/videos/{video['id']}/content"),
    ):
        assert_openai_error(request(api.globex), 404, "not_found")
    assert api.globex.get("/v1/videos").json()["data"] == []
    assert_openai_error(api.acme.get(f"/v1/videos/{video['id']}/content"), 409, "video_not_ready")
    deleted = api.acme.delete(f"/v1/videos/{video['id']}").json()
    assert deleted == {"id": video["id"], "object": "video.deleted", "deleted": True}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "param"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, None),
        ({"json": ["a", "list"]}, 400, None),
        ({"json": {}}, 400, "prompt"),
        ({"json": {"prompt": PROMPT, "colour": "red"}}, 400, "colour"),
        ({"json": {"prompt": PROMPT, "seed": "seven"}}, 400, "seed"),
        ({"json": {"prompt": PROMPT, "seconds": "3"}}, 400, "seconds"),
        ({"json": {"prompt": PROMPT, "size": "33x32"}}, 400, "size"),
        ({"json": {"prompt": PROMPT, "model": "ft:reelforge-tiny:globex:look"}}, 404, "model"),
        ({"json": {"prompt": "x" * 70_000}}, 413, None),
        ({"json": {"prompt": "a competitor logo"}}, 400, None),
    ],
)
def test_bad_create_requests_get_the_openai_error_shape(api, request_kwargs, status, param):
    error = assert_openai_error(api.acme.post("/v1/videos", **request_kwargs), status)
    if param is not None:
        assert error["param"] == param and param in error["message"]
    assert api.acme.get("/v1/videos").json()["data"] == []  # nothing was recorded


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/videos?limit=abc", "limit"),
        ("/v1/videos?limit=0", "limit"),
        ("/v1/videos?order=sideways", "order"),
        ("/v1/files?limit=0", "limit"),
        ("/v1/fine_tuning/jobs?limit=1000", "limit"),
        ("/v1/audit?after=abc", "after"),
        ("/v1/usage?start_date=yesterday", "start_date"),
    ],
)
def test_bad_query_parameters_are_named(api, path, param):
    error = assert_openai_error(api.acme.get(path), 400)
    assert error["param"] == param


def test_authentication_and_unknown_routes(api):
    assert api.anonymous.get("/healthz").json() == {"status": "ok"}
    assert_openai_error(api.anonymous.get("/v1/videos"), 401, "invalid_api_key")
    wrong = TestClient(api.app, headers={"Authorization": "Bearer rf-acme-not-a-key"})
    assert_openai_error(wrong.get("/v1/models"), 401, "invalid_api_key")
    assert_openai_error(TestClient(api.app, headers={"Authorization": "Basic abc"}).get("/v1/models"), 401)
    assert_openai_error(api.acme.get("/v1/nowhere"), 404, "unknown_url")
    assert_openai_error(api.acme.put("/v1/videos"), 405, "unknown_url")
    for path in ("/v1/files/file-nope", "/v1/fine_tuning/jobs/ftjob-nope", "/v1/fine_tuning/jobs/ftjob-nope/events"):
        assert_openai_error(api.acme.get(path), 404, "not_found")


def test_models_audit_and_usage_answer_in_their_shapes(api):
    models = api.acme.get("/v1/models").json()
    assert models == {
        "object": "list",
        "data": [{"id": "reelforge-tiny", "object": "model", "created": 0, "owned_by": "reelforge"}],
    }
    api.acme.post("/v1/videos", json={"prompt": PROMPT})
    audit = api.acme.get("/v1/audit").json()
    assert [e["action"] for e in audit["data"]] == ["video.requested"] and audit["last_id"] == audit["data"][0]["id"]
    assert api.globex.get("/v1/audit").json()["data"] == []
    usage = api.acme.get("/v1/usage").json()
    assert (usage["object"], usage["tenant"], usage["data"], usage["totals"]) == ("list", "acme", [], {})
