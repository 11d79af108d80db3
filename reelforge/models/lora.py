"""LoRA adapters on the video transformer: attach, save in diffusers format, load by name, switch.

Saved adapters are `pytorch_lora_weights.safetensors` in diffusers' LoRA format (what
`WanPipeline.load_lora_weights` reads, with the peft config in the safetensors metadata so alpha
survives the round trip) plus `reelforge_adapter.json`, which names the base model it was trained on.

A model with two experts (Wan 2.2 A14B) gets one file holding every trained expert, keyed by
pipeline component (`transformer.*` high noise, `transformer_2.*` low noise), and `load_adapter`
loads each part into its expert. (diffusers' own `load_lora_weights` fills only `transformer`
unless told `load_into_transformer_2=True`, and then with the same weights: the commonest A14B
LoRA mistake.)
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import peft
import torch
from peft.utils import get_peft_model_state_dict

from reelforge.errors import AdapterError, InvalidLoraConfigError
from reelforge.models.loading import VideoModel

logger = logging.getLogger(__name__)

LORA_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
ADAPTER_CARD_FILE = "reelforge_adapter.json"

# Which experts of a two-expert model an adapter trains, as pipeline components.
ExpertChoice = Literal["all", "high_noise", "low_noise"]
EXPERT_CHOICES: dict[str, tuple[str, ...]] = {
    "all": ("transformer", "transformer_2"),
    "high_noise": ("transformer",),
    "low_noise": ("transformer_2",),
}


@dataclass(frozen=True)
class LoraConfig:
    """Rank, scale, dropout and target modules of a LoRA adapter (targets default to the spec's)."""

    rank: int = 16
    alpha: float | None = None
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None
    # Two-expert models: both by default, because a look lives in the low-noise expert's fine detail
    # (colours, small marks) as much as in the high-noise expert's layout; one-expert models ignore it.
    experts: ExpertChoice = "all"

    def __post_init__(self) -> None:
        if self.experts not in EXPERT_CHOICES:
            raise InvalidLoraConfigError(f"lora experts must be one of {sorted(EXPERT_CHOICES)}, got {self.experts!r}")
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or not 1 <= self.rank <= 1024:
            raise InvalidLoraConfigError(f"lora rank must be an integer between 1 and 1024, got {self.rank!r}")
        if self.alpha is not None and not self.alpha > 0:
            raise InvalidLoraConfigError(f"lora alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidLoraConfigError(f"lora dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None and not self.target_modules:
            raise InvalidLoraConfigError("lora target_modules is empty; leave it unset for the model's defaults")

    @property
    def effective_alpha(self) -> float:
        """alpha, or rank when unset (scale 1)."""
        return float(self.alpha if self.alpha is not None else self.rank)

    def to_peft(self, default_targets: Sequence[str]) -> peft.LoraConfig:
        """The peft config; gaussian init of A and zero B so a fresh adapter leaves outputs unchanged."""
        return peft.LoraConfig(
            r=self.rank,
            lora_alpha=self.effective_alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules or default_targets),
            init_lora_weights="gaussian",
        )


@dataclass(frozen=True)
class AdapterCard:
    """What `reelforge_adapter.json` records about an adapter."""

    base_model: str
    architecture: str
    rank: int
    alpha: float
    target_modules: list[str]
    extra: dict = field(default_factory=dict)
    # The pipeline components (experts) the adapter has weights for.
    experts: list[str] = field(default_factory=lambda: ["transformer"])
    # `base_fingerprint` of the checkpoint it was trained on (None: an adapter from before it was recorded).
    base_fingerprint: str | None = None


def check_adapter_name(adapter_name: str) -> None:
    """peft stores adapters as submodule attributes: "eval" or "train" would shadow nn.Module's."""
    if hasattr(torch.nn.Module, adapter_name) or not adapter_name.isidentifier():
        raise AdapterError(
            f"adapter name {adapter_name!r} is not usable; use an identifier that is not a torch.nn.Module attribute"
        )


def trained_experts(model: VideoModel, config: LoraConfig) -> dict[str, torch.nn.Module]:
    """The experts (by pipeline component) an adapter with `config` trains on `model`."""
    experts = model.spec.experts(model.pipeline)
    if len(experts) == 1:
        if config.experts != "all":
            raise InvalidLoraConfigError(
                f"lora experts {config.experts!r} needs a two-expert model; {model.name} has one transformer"
            )
        return experts
    return {name: experts[name] for name in EXPERT_CHOICES[config.experts]}


def attach_lora(model: VideoModel, config: LoraConfig, adapter_name: str = "default") -> list[torch.nn.Parameter]:
    """Freeze the experts, add a trainable adapter to the chosen ones, return the LoRA parameters."""
    check_adapter_name(adapter_name)
    targets = list(config.target_modules or model.spec.default_lora_targets)
    names = [name for name, _ in model.transformer.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise InvalidLoraConfigError(
            f"lora target_modules {missing} match no module of {model.name}'s transformer; "
            f"the default targets are {list(model.spec.default_lora_targets)}"
        )
    for expert in model.spec.experts(model.pipeline).values():
        expert.requires_grad_(False)
    params: list[torch.nn.Parameter] = []
    chosen = trained_experts(model, config)
    for expert in chosen.values():
        expert.add_adapter(config.to_peft(targets), adapter_name=adapter_name)
        expert.set_adapter(adapter_name)
        params += [p for n, p in expert.named_parameters() if "lora_" in n and f".{adapter_name}." in n]
    for p in params:
        p.requires_grad_(True)
    logger.info(
        "attached LoRA %r (rank %d, alpha %g) to %d modules of %s: %d trainable parameters",
        adapter_name,
        config.rank,
        config.effective_alpha,
        len(params) // 2,
        " and ".join(chosen),
        sum(p.numel() for p in params),
    )
    return params


def adapter_state_dict(model: VideoModel, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """The adapter's tensors of every expert that has it, keyed `<component>.<module>...` as saved."""
    tensors: dict[str, torch.Tensor] = {}
    for component, expert in model.spec.experts(model.pipeline).items():
        if adapter_name in getattr(expert, "peft_config", {}):
            state = get_peft_model_state_dict(expert, adapter_name=adapter_name)
            tensors.update({f"{component}.{key}": value for key, value in state.items()})
    return tensors


def save_adapter(
    model: VideoModel,
    directory: str | Path,
    adapter_name: str = "default",
    state_dict: dict[str, torch.Tensor] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the adapter in diffusers LoRA format plus its card; `state_dict` overrides (e.g. ZeRO-3 gathered)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    experts = {
        c: e for c, e in model.spec.experts(model.pipeline).items() if adapter_name in getattr(e, "peft_config", {})
    }
    if not experts:
        raise AdapterError(f"no adapter named {adapter_name!r} is attached to {model.name}")
    peft_config = next(iter(experts.values())).peft_config[adapter_name]
    tensors = state_dict if state_dict is not None else adapter_state_dict(model, adapter_name)
    metadata = peft_config.to_dict()
    metadata["target_modules"] = sorted(metadata["target_modules"])
    layers = {
        component: {
            key.removeprefix(f"{component}."): value.detach().to("cpu", torch.float32).contiguous()
            for key, value in tensors.items()
            if key.startswith(f"{component}.")
        }
        for component in experts
    }
    # The shared writer of diffusers' LoRA mixins: each component's tensors and peft config under its prefix.
    type(model.pipeline)._save_lora_weights(
        save_directory=str(directory),
        lora_layers=layers,
        lora_metadata={component: metadata for component in experts},
        weight_name=LORA_WEIGHTS_FILE,
    )
    card = AdapterCard(
        base_model=model.name,
        architecture=model.spec.architecture,
        rank=int(peft_config.r),
        alpha=float(peft_config.lora_alpha),
        target_modules=metadata["target_modules"],
        extra=extra or {},
        experts=sorted(experts),
        base_fingerprint=model.fingerprint,
    )
    (directory / ADAPTER_CARD_FILE).write_text(json.dumps(asdict(card), indent=2) + "\n")
    return directory


def read_adapter_card(directory: str | Path) -> AdapterCard | None:
    """The adapter's card, or None for a plain diffusers LoRA from elsewhere."""
    path = Path(directory) / ADAPTER_CARD_FILE
    if not path.is_file():
        return None
    try:
        return AdapterCard(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise AdapterError(f"adapter card {path} is unreadable: {exc}") from exc


def loaded_adapters(model: VideoModel) -> list[str]:
    """Names of the adapters currently loaded into any expert."""
    names: dict[str, None] = {}
    for expert in model.spec.experts(model.pipeline).values():
        names.update(dict.fromkeys(getattr(expert, "peft_config", {})))
    return list(names)


def _adapter_components(weights: Path) -> list[str]:
    """The pipeline components an adapter file has weights for (its key prefixes)."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        return sorted({key.split(".", 1)[0] for key in handle.keys()})


def check_base_fingerprint(model: VideoModel, card: AdapterCard | None, directory: Path) -> None:
    """Refuse an adapter trained on another checkpoint: it would load, and draw another look."""
    if card is None or model.fingerprint is None:
        return
    if card.base_fingerprint is None:
        logger.warning(
            "adapter %s records no base fingerprint (made before reelforge recorded one): cannot check that it "
            "was trained on this checkpoint of %s",
            directory,
            model.name,
        )
        return
    if card.base_fingerprint != model.fingerprint:
        raise AdapterError(
            f"adapter {directory} was trained on another checkpoint of {card.base_model} (base fingerprint "
            f"{card.base_fingerprint[:12]}, this {model.name} is {model.fingerprint[:12]}): it would load, but "
            "not draw the look it learned; fine-tune it again on this base"
        )


def load_adapter(model: VideoModel, directory: str | Path, adapter_name: str) -> None:
    """Load a diffusers-format LoRA from `directory` under `adapter_name` (not activated)."""
    directory = Path(directory)
    weights = directory / LORA_WEIGHTS_FILE
    if not directory.is_dir():
        raise AdapterError(f"adapter directory {directory} does not exist")
    if not weights.is_file():
        raise AdapterError(f"adapter directory {directory} has no {LORA_WEIGHTS_FILE}")
    if adapter_name in loaded_adapters(model):
        raise AdapterError(f"an adapter named {adapter_name!r} is already loaded; unload it first")
    check_adapter_name(adapter_name)
    card = read_adapter_card(directory)
    # Families of one transformer design share adapters (a reelforge-tiny adapter from before it learned
    # image conditioning still fits it); a real shape mismatch is caught by the load below.
    if card is not None and card.architecture.split("-")[0] != model.spec.architecture.split("-")[0]:
        raise AdapterError(
            f"adapter {directory} was trained for a {card.architecture} model ({card.base_model}); "
            f"{model.name} is {model.spec.architecture}"
        )
    experts = model.spec.experts(model.pipeline)
    try:
        components = _adapter_components(weights)
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise AdapterError(f"adapter {weights} is not a readable safetensors file: {exc}") from exc
    if not components or ("transformer_2" in components and "transformer_2" not in experts):
        raise AdapterError(
            f"adapter {directory} has weights for {components or 'nothing'}; {model.name} has {sorted(experts)}"
        )
    check_base_fingerprint(model, card, directory)
    try:
        with warnings.catch_warnings():
            # Several adapters on one transformer is the point of multiplexed serving, not a mistake.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            if set(components) <= set(experts):
                for component in components:
                    experts[component].load_lora_adapter(
                        str(directory), weight_name=LORA_WEIGHTS_FILE, prefix=component, adapter_name=adapter_name
                    )
            else:  # another layout (ComfyUI / original Wan, kohya): diffusers converts it into `transformer`
                model.pipeline.load_lora_weights(
                    str(directory), adapter_name=adapter_name, weight_name=LORA_WEIGHTS_FILE
                )
    except (ValueError, RuntimeError, KeyError, OSError) as exc:
        # A failed load can leave a half-registered adapter behind; remove it so the model stays usable.
        _delete_everywhere(model, adapter_name)
        raise AdapterError(f"adapter {directory} does not fit {model.name}: {exc}") from exc


def activate_adapter(model: VideoModel, adapter_name: str | None, scale: float = 1.0) -> None:
    """Make `adapter_name` the only active adapter at `scale`; None runs the base model."""
    if adapter_name is not None and adapter_name not in loaded_adapters(model):
        raise AdapterError(f"no adapter named {adapter_name!r} is loaded (loaded: {loaded_adapters(model)})")
    for expert in model.spec.experts(model.pipeline).values():
        present = getattr(expert, "peft_config", {})
        if adapter_name in present:
            expert.enable_lora()
            expert.set_adapters([adapter_name], weights=[scale])
        elif present:
            expert.disable_lora()  # an expert the adapter does not cover runs as the base model


def _delete_everywhere(model: VideoModel, adapter_name: str) -> None:
    for expert in model.spec.experts(model.pipeline).values():
        if adapter_name in getattr(expert, "peft_config", {}):
            expert.delete_adapters(adapter_name)


def unload_adapter(model: VideoModel, adapter_name: str) -> None:
    """Remove `adapter_name` and free its weights."""
    if adapter_name not in loaded_adapters(model):
        raise AdapterError(f"no adapter named {adapter_name!r} is loaded")
    with warnings.catch_warnings():
        # peft warns when the active adapter goes; callers choose the next one with activate_adapter.
        warnings.filterwarnings("ignore", message="Adapter .* was active which is now deleted")
        _delete_everywhere(model, adapter_name)
