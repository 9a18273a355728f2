"""Training settings, read from a YAML file (configs/*.yaml) and overridable from the command line.

The defaults are docs/method.md §6's for the released scale: loss on epsilon, frozen VAE and encoders, lr
2e-5, batch 8 per GPU, fp16, 30k steps, classifier-free dropout 0.1, reference dropout 0.2, random
resized crops of scale 0.9-1.0 at 512 x 512.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml


@dataclass
class ModelConfig:
    """The architecture of a model trained from scratch (ignored when fine-tuning a checkpoint)."""

    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    layers_per_block: int = 1
    attention_heads: int = 4
    cross_attention_dim: int = 64
    text_layers: int = 2
    vision_layers: int = 2
    clip_image_size: int = 64
    clip_patch_size: int = 8
    pose_guider_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    vae_channels: list[int] = field(default_factory=lambda: [32, 64, 64, 64])
    vae_latent_channels: int = 4
    vae_layers_per_block: int = 1
    vae_norm_groups: int = 32  # at most; one group per channel at 32 channels normalises each colour feature away
    zero_terminal_snr: bool = False  # docs/training.md: the noise schedule of a small latent


@dataclass
class TrainConfig:
    data: str = "data/synthetic"
    output_dir: str = "runs/parts2whole"
    pretrained: str | None = None  # a released-layout checkpoint to fine-tune; None: from scratch
    model: ModelConfig = field(default_factory=ModelConfig)
    height: int = 512
    width: int = 512
    crop_scale: list[float] = field(default_factory=lambda: [0.9, 1.0])
    learning_rate: float = 2e-5
    adam_weight_decay: float = 1e-2
    lr_warmup_steps: int = 0
    lr_scheduler: str = "constant_with_warmup"  # any diffusers.optimization name, e.g. "cosine" (decays to 0 at max_steps)
    batch_size: int = 8  # per process
    gradient_accumulation_steps: int = 1
    max_steps: int = 30000
    max_minutes: float | None = None  # the main stage stops (checkpoint, final model) after this long; None: at max_steps
    max_grad_norm: float = 1.0
    mixed_precision: str = "fp16"  # "no", "fp16", "bf16"
    ema_decay: float | None = None  # e.g. 0.999; None: no EMA
    cfg_dropout: float = 0.1  # the whole context dropped: empty text, no image tokens, no references
    reference_dropout: float = 0.2  # the pose, all references, or single parts dropped
    caption_dropout: float = 0.0  # the caption alone replaced by the empty text
    loss_weights: dict[str, float] = field(default_factory=dict)  # parsing class -> weight (docs/training.md); {}: plain MSE
    high_noise_portion: float = 0.0  # the noisiest fraction of the timesteps, drawn high_noise_multiplier times as often
    high_noise_multiplier: float = 1.0  # (docs/training.md, "Drawing the noisier timesteps more often"); 1: uniform
    cache_references: bool = False  # encode each reference once, kept in memory (docs/training.md, "The reference cache")
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    validate_every: int = 1000
    validation_people: int = 4
    validation_steps: int = 25
    validation_guidance: float = 7.5
    vae_steps: int = 0  # steps of a VAE stage before the main one (its VAE replaces a `pretrained` one)
    vae_init: str | None = None  # a saved VAE: the VAE stage continues it; without a stage, the model uses it
    vae_decoder_steps: int = 0  # then steps of the decoder alone (the latents stay as they are)
    vae_learning_rate: float = 1e-3
    vae_batch_size: int = 16
    vae_kl_weight: float = 1e-6
    vae_deterministic: bool = False  # decode the posterior mean, its spread fixed small (docs/training.md)

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] = ()) -> "TrainConfig":
        """The file's settings, then `overrides` given as KEY=VALUE (VALUE read as YAML)."""
        values = yaml.safe_load(Path(path).read_text()) if path else {}
        values = dict(values or {})
        for override in overrides:
            key, separator, value = override.partition("=")
            if not separator:
                raise ValueError(f"An override must read KEY=VALUE, got {override!r}.")
            values[key] = yaml.safe_load(value)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training setting(s) {unknown}; the settings are {sorted(known)}.")
        model = values.pop("model", None) or {}
        unknown = sorted(set(model) - {f.name for f in fields(ModelConfig)})
        if unknown:
            raise ValueError(f"Unknown model setting(s) {unknown}.")
        return cls(**numbers_read(cls, values), model=ModelConfig(**numbers_read(ModelConfig, model)))

    def to_dict(self) -> dict:
        return asdict(self)


def numbers_read(settings_class: type, values: dict) -> dict:
    """`values` with the numeric settings checked: YAML reads 5e-4 or 5e3 (no dot) as strings, which
    are taken as the numbers they spell; anything else that is not a number is refused with its name."""
    numeric_kinds = {float: float, float | None: float, int: int, int | None: int}
    kinds = {f.name: f.type for f in fields(settings_class)}
    checked = dict(values)
    for name, value in values.items():
        numeric = numeric_kinds.get(kinds[name])
        if numeric is None or value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            continue
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if numeric is float and math.isfinite(number) or number.is_integer():
                checked[name] = numeric(number)
                continue
        kind = "a number" if numeric is float else "a whole number"
        raise ValueError(f"The setting {name} must be {kind}, got {value!r}.")
    return checked
