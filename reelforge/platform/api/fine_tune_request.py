"""`POST /v1/fine_tuning/jobs` bodies, and how their hyperparameters map onto `FineTuneConfig`.

OpenAI's fields (model, training_file, validation_file, suffix, seed, metadata, and
hyperparameters either in `method.supervised.hyperparameters` or the older top-level
`hyperparameters`) mean here:

| OpenAI | FineTuneConfig |
|---|---|
| `n_epochs` | `epochs` (passes over the training clips) |
| `batch_size` | clips per optimizer step over all workers (`batch_per_worker` x `workers`) |
| `learning_rate_multiplier` | `lr` = the operator's default lr x multiplier |
| `steps` (ours) | `steps` (instead of `n_epochs`) |
| `lora_rank` (ours) | `lora.rank` |

"auto" or absent keeps the operator's `fine_tuning.job_defaults`, else FineTuneConfig's defaults.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelforge.errors import UserInputError
from reelforge.jobs.finetune_config import (
    FineTuneConfig,
    FineTuneConfigError,
    build_config,
    with_keys,
)
from reelforge.platform.api.errors import validate_request
from reelforge.platform.api.video_request import read_json_object

HYPERPARAMETERS_PARAM = "method.supervised.hyperparameters"
SUFFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # as FineTuneConfig.suffix


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hyperparameters(_Strict):
    """OpenAI's supervised hyperparameters plus reelforge's `steps` and `lora_rank`."""

    n_epochs: Annotated[int, Field(ge=1, le=100)] | Literal["auto"] | None = None
    batch_size: Annotated[int, Field(ge=1, le=1024)] | Literal["auto"] | None = None
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=100)] | Literal["auto"] | None = None
    steps: int | None = Field(None, ge=1)
    lora_rank: int | None = Field(None, ge=1, le=1024)


class SupervisedMethod(_Strict):
    hyperparameters: Hyperparameters = Hyperparameters()


class Method(_Strict):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: dict | None = None
    reinforcement: dict | None = None


class FineTuneCreateRequest(_Strict):
    """The create fields, as OpenAI names them."""

    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    hyperparameters: Hyperparameters | None = None  # OpenAI's older place for them
    method: Method | None = None
    integrations: list[dict] | None = None
    metadata: dict[str, str] | None = Field(None, max_length=16)

    def chosen_hyperparameters(self) -> Hyperparameters:
        """The hyperparameters from `method`, or the top-level ones; giving both is an error."""
        if self.method is not None and self.method.type != "supervised":
            raise UserInputError(
                f"method {self.method.type!r} is not supported; video fine-tuning is 'supervised'", param="method.type"
            )
        from_method = self.method.supervised.hyperparameters if self.method and self.method.supervised else None
        if from_method is not None and self.hyperparameters is not None:
            raise UserInputError(
                "give hyperparameters in method.supervised.hyperparameters or at the top level, not both",
                param="hyperparameters",
            )
        return from_method or self.hyperparameters or Hyperparameters()


async def parse_fine_tune_request(request, max_bytes: int) -> FineTuneCreateRequest:
    """Parse a JSON create body; every problem is a UserInputError naming the field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise UserInputError(f"unsupported content type {content_type!r}; send application/json")
    data = await read_json_object(request, max_bytes)
    parsed = validate_request(FineTuneCreateRequest, data)
    if parsed.integrations:
        raise UserInputError(
            "integrations are not supported; every job is tracked in the platform's MLflow", param="integrations"
        )
    return parsed


def build_job_config(
    body: FineTuneCreateRequest, tenant: str, model: str, job_defaults: dict
) -> tuple[FineTuneConfig, dict]:
    """The FineTuneConfig a request runs (data filled in later by the driver) and the hyperparameters it reports."""
    hp = body.chosen_hyperparameters()
    base = with_keys({"tenant": tenant, "model": model, "data": "."}, job_defaults)
    defaults = build_config(base)
    values: dict = {"seed": body.seed if body.seed is not None else secrets.randbelow(2**31)}
    # The platform checked consent at admission, with the upload's declaration, which the job's own
    # ingest of the archive cannot see.
    values["faces_need_consent"] = False
    if body.validation_file is not None:
        values["holdout_fraction"] = 0.0  # the validation file is the held-out data; all training clips train
    if body.suffix is not None:
        if not SUFFIX.match(body.suffix):
            raise UserInputError(
                f"suffix {body.suffix!r} must be 1-40 lowercase letters, digits or dashes, starting with "
                "a letter or digit (it becomes part of the model id)",
                param="suffix",
            )
        values["suffix"] = body.suffix
    if hp.steps is not None and isinstance(hp.n_epochs, int):
        raise UserInputError("give n_epochs or steps, not both", param=f"{HYPERPARAMETERS_PARAM}.steps")
    if isinstance(hp.n_epochs, int):
        values.update({"epochs": float(hp.n_epochs), "steps": None})
    elif hp.steps is not None:
        values.update({"steps": hp.steps, "epochs": None})
    if isinstance(hp.batch_size, int):
        per_step = defaults.workers * defaults.grad_accum
        values["batch_per_worker"] = max(1, math.ceil(hp.batch_size / per_step))
    multiplier = hp.learning_rate_multiplier if isinstance(hp.learning_rate_multiplier, float | int) else 1.0
    values["lr"] = defaults.lr * multiplier
    if hp.lora_rank is not None:
        values["lora.rank"] = hp.lora_rank
    try:
        config = build_config(with_keys(base, values))
    except FineTuneConfigError as exc:
        raise UserInputError(
            exc.message.replace("invalid fine-tune config", "invalid hyperparameters"), param=HYPERPARAMETERS_PARAM
        ) from None
    reported = {
        "n_epochs": int(config.epochs) if config.epochs is not None else "auto",
        "batch_size": config.global_batch,
        "learning_rate_multiplier": multiplier,
        "steps": config.steps if config.epochs is None else None,
        "lora_rank": config.lora.rank,
    }
    return config, reported
