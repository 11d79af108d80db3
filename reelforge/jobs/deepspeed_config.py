"""The DeepSpeed config of a fine-tune: ZeRO stage, offload, precision and batch sizes from `FineTuneConfig`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelforge.jobs.finetune_config import FineTuneConfig

if TYPE_CHECKING:
    import torch


def resolve_precision(requested: str, use_gpu: bool, bf16_supported: bool) -> str:
    """`auto` -> bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."""
    if requested != "auto":
        return requested
    if not use_gpu:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def base_weights_dtype(precision: str) -> torch.dtype:
    """The dtype a worker loads the frozen base in: the training precision itself.

    DeepSpeed casts the module to bf16/fp16 anyway; loading it in fp32 first would hold a 14B
    expert at 57 GB (and the text encoder at 22 GB) on the card before that cast, more than an
    80 GB GPU has. The LoRA weights keep fp32 master copies in the optimizer either way.
    """
    import torch  # here, not at the top: the API process imports this module and never loads torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def deepspeed_config(config: FineTuneConfig, precision: str) -> dict:
    """The dict passed to `deepspeed.initialize(config=...)`; the optimizer and schedule are ours."""
    zero: dict = {
        "stage": config.deepspeed.zero_stage,
        "overlap_comm": False,  # no communication stream on CPU / gloo
        # Only LoRA gradients exist: small tensors that cannot fragment memory, so copying each into
        # a contiguous buffer as it is produced buys nothing and costs a backward-time copy.
        "contiguous_gradients": False,
    }
    if config.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    if config.deepspeed.offload_params and config.deepspeed.zero_stage == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": False}
    if config.deepspeed.zero_stage == 3:
        # Small LoRA tensors: gather them eagerly instead of keeping them persistent-partitioned.
        zero["stage3_param_persistence_threshold"] = 0
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    return {
        "train_micro_batch_size_per_gpu": config.batch_per_worker,
        "gradient_accumulation_steps": config.grad_accum,
        "train_batch_size": config.global_batch,
        "gradient_clipping": config.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        # The client optimizer is torch's AdamW: DeepSpeed's fused / CPU Adam would JIT-compile C++.
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,  # progress is ours (MLflow + logging)
        "wall_clock_breakdown": False,
    }
