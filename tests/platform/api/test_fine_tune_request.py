"""How OpenAI's fine-tuning hyperparameters map onto FineTuneConfig (pure: no server, no Ray)."""

from __future__ import annotations

import pytest

from reelforge.errors import UserInputError
from reelforge.platform.api.fine_tune_request import (
    FineTuneCreateRequest,
    build_job_config,
)
from reelforge.platform.config import ServeConfigError, parse_serve_config

DEFAULTS = {"workers": 2, "lr": 0.002}


def _build(**body):
    request = FineTuneCreateRequest.model_validate({"model": "reelforge-tiny", "training_file": "file-x", **body})
    return build_job_config(request, "acme", "reelforge-tiny", DEFAULTS)


def test_openai_hyperparameters_map_onto_the_config():
    config, reported = _build(
        seed=5,
        suffix="spring-look",
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 3, "batch_size": 6, "learning_rate_multiplier": 0.5, "lora_rank": 8}
            },
        },
    )
    assert (config.tenant, config.seed, config.suffix, config.epochs, config.steps) == (
        "acme",
        5,
        "spring-look",
        3.0,
        None,
    )
    assert config.batch_per_worker == 3 and config.global_batch == 6  # 6 clips per step over the 2 workers
    assert config.lr == pytest.approx(0.001) and config.lora.rank == 8
    assert reported == {"n_epochs": 3, "batch_size": 6, "learning_rate_multiplier": 0.5, "steps": None, "lora_rank": 8}
    assert config.fine_tuned_model_id == "ft:reelforge-tiny:acme:spring-look"


def test_auto_and_absent_keep_the_operator_defaults():
    config, reported = _build(
        hyperparameters={"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    )
    assert (config.workers, config.lr, config.steps, config.epochs) == (2, 0.002, 600, None)
    assert reported["n_epochs"] == "auto" and reported["steps"] == 600 and reported["batch_size"] == 8
    assert 0 <= config.seed < 2**31  # drawn when not given, and reported on the job


def test_batch_size_rounds_up_to_whole_clips_per_worker():
    config, reported = _build(hyperparameters={"batch_size": 5})
    assert config.batch_per_worker == 3 and reported["batch_size"] == 6


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"method": {"type": "dpo"}}, "method.type"),
        ({"suffix": "Has Spaces"}, "suffix"),
        ({"hyperparameters": {"n_epochs": 2, "steps": 10}}, "method.supervised.hyperparameters.steps"),
        (
            {
                "hyperparameters": {"steps": 5},
                "method": {"type": "supervised", "supervised": {"hyperparameters": {"steps": 5}}},
            },
            "hyperparameters",
        ),
    ],
)
def test_conflicting_or_unsupported_choices_name_the_field(body, param):
    with pytest.raises(UserInputError) as caught:
        _build(**body)
    assert caught.value.param == param


def test_operator_job_defaults_are_checked_when_the_serve_config_loads():
    assert parse_serve_config({"fine_tuning": {"job_defaults": {"lora.rank": 4}}}).fine_tuning.job_defaults == {
        "lora.rank": 4
    }
    with pytest.raises(ServeConfigError, match="unknown key 'lora.rnk'"):
        parse_serve_config({"fine_tuning": {"job_defaults": {"lora.rnk": 4}}})
    with pytest.raises(ServeConfigError, match="workers"):
        parse_serve_config({"fine_tuning": {"job_defaults": {"workers": 0}}})


def test_tenant_policy_falls_back_to_the_default():
    section = parse_serve_config(
        {"fine_tuning": {"default": {"max_steps": 100}, "tenants": {"acme": {"auto_promote": True}}}}
    ).fine_tuning
    assert section.policy_for("acme").auto_promote and section.policy_for("acme").max_steps == 2000
    assert section.policy_for("other").max_steps == 100 and not section.policy_for("other").auto_promote


async def _parse(body: bytes):
    from starlette.requests import Request

    from reelforge.platform.api.fine_tune_request import parse_fine_tune_request

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", b"application/json")]}
    return await parse_fine_tune_request(Request(scope, receive), 1 << 16)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": 0}}', "hyperparameters.n_epochs"),
        (b'{"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": "many"}}', "hyperparameters.n_epochs"),
        (
            b'{"model": "m", "training_file": "f", "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": -1}}}}',
            "method.supervised.hyperparameters.batch_size",
        ),
        (b'{"model": "m"}', "training_file"),
        (b'{"model": "m", "training_file": "f", "learning_rate": 1}', "learning_rate"),
    ],
)
def test_request_errors_name_the_field(body, param):
    import asyncio

    with pytest.raises(UserInputError) as caught:
        asyncio.run(_parse(body))
    assert caught.value.param == param, caught.value.message
