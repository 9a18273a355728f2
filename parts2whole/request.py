"""One generation request: the parts, their masks, the pose and the settings, as the command line,
the examples, the demo and the Python helpers all describe it.

Its JSON form is the authors' `input_dict` (`appearance`, `mask`, `structure`: image paths, relative
to the JSON file) plus the optional settings, so the settings written beside any result make that
result again (`python -m parts2whole RESULT.json --out DIR`). Every default lives here once; a model
may replace them with its own `defaults.json` (parts2whole.runtime.model_defaults).
"""

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .labels import order_labels
from .runtime import SCHEDULERS

IMAGE_GROUPS = ("appearance", "mask", "structure")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """Upper bounds a server sets on what a visitor may ask for (the demo's P2W_* settings)."""

    max_side: int = 4096
    max_steps: int = 1000
    max_images: int = 16


@dataclass(frozen=True)
class GenerationRequest:
    """A checked generation request; constructing one with a bad value raises ValueError with a sentence.

    Seed None means "draw one" (`with_seed`): only the settings written beside an image make it again.
    """

    appearance: dict[str, str] = field(default_factory=dict)  # part label -> image path
    mask: dict[str, str] = field(default_factory=dict)  # part label -> mask path, for any of the parts
    structure: dict[str, str] = field(default_factory=dict)  # {"densepose": path}
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    height: int = 768
    width: int = 512
    steps: int = 50
    guidance_scale: float = 7.5
    num_images: int = 1
    scheduler: str = "ddim"

    def __post_init__(self) -> None:
        for name in ("seed", "height", "width", "steps", "num_images"):  # 256.0 from a slider is 256
            value = getattr(self, name)
            if is_finite_number(value) and value == int(value):
                object.__setattr__(self, name, int(value))
        self.check()

    # ------------------------------------------------------------------------------ checks

    def check(self, limits: Limits = Limits()) -> None:
        check_values(vars(self), limits)

    # -------------------------------------------------------------------------------- JSON

    @classmethod
    def from_dict(
        cls, entry: object, base: Path = Path("."), defaults: dict | None = None, limits: Limits = Limits()
    ) -> "GenerationRequest":
        """`entry` (the JSON form; image paths relative to `base`) over `defaults` over the defaults above,
        checked against `limits`."""
        if not isinstance(entry, dict):
            raise ValueError("A request must be a JSON object.")
        unknown = sorted(set(entry) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"Unknown key(s) {unknown}; the keys are {list(FIELD_NAMES)}.")
        values = {**(defaults or {}), **entry}
        for group in IMAGE_GROUPS:
            paths = values.get(group) or {}
            if isinstance(paths, dict) and all(isinstance(p, str) for p in paths.values()):
                values[group] = {name: str((base / p).resolve()) for name, p in paths.items()}
            else:
                values[group] = paths  # refused by check_values with a sentence
        check_values({**SETTING_DEFAULTS, **values}, limits)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, base: Path = Path("."), defaults: dict | None = None) -> "GenerationRequest":
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}).") from None
        return cls.from_dict(entry, base, defaults)

    def to_dict(self, relative_to: Path | None = None) -> dict:
        """The JSON form; image paths relative to `relative_to` (where the JSON is written) when given."""
        values = asdict(self)
        if relative_to is not None:
            for group in IMAGE_GROUPS:
                values[group] = {name: os.path.relpath(p, relative_to) for name, p in values[group].items()}
        return values

    def to_json(self, relative_to: Path | None = None) -> str:
        return json.dumps(self.to_dict(relative_to), indent=2) + "\n"

    # ---------------------------------------------------------------------------- variants

    def with_seed(self) -> "GenerationRequest":
        """This request with its seed drawn when it has none."""
        return self if self.seed is not None else replace(self, seed=random.randrange(MAX_SEED + 1))

    def image(self, index: int) -> "GenerationRequest":
        """The request that makes image `index` of this one alone (images use seed, seed + 1, ...)."""
        return replace(self, seed=self.seed + index, num_images=1)


def check_values(values: dict, limits: Limits = Limits()) -> None:
    """Every field of a request in `values` checked, each failure a ValueError with a sentence."""
    for group in IMAGE_GROUPS:
        paths = values.get(group)
        if not isinstance(paths, dict) or not all(isinstance(p, str | os.PathLike) for p in paths.values()):
            raise ValueError(f"{group!r} must map names to image paths.")
    order_labels(values["appearance"])  # the pipeline also runs with no parts (ablations); a request may not
    for label in values["mask"]:
        if label not in values["appearance"]:
            raise ValueError(f"A mask is given for {label!r} but there is no {label!r} part.")
    if "densepose" not in values["structure"]:
        raise ValueError('Add a pose: \'structure\' must hold the DensePose map as {"densepose": PATH}.')
    for name in ("prompt", "negative_prompt"):
        if not isinstance(values[name], str):
            raise ValueError(f"The {name.replace('_', ' ')} must be text; got {values[name]!r}.")
    if values["seed"] is not None:
        whole_number(values["seed"], "The seed", 0, MAX_SEED)
    for name in ("height", "width"):
        value = whole_number(values[name], f"The {name}", 8, limits.max_side)
        if value % 8:
            raise ValueError(f"The {name} must be a multiple of 8; got {value}.")
    whole_number(values["steps"], "The number of steps", 1, limits.max_steps)
    whole_number(values["num_images"], "The number of images", 1, limits.max_images)
    guidance = values["guidance_scale"]
    if not is_finite_number(guidance):
        raise ValueError(f"The guidance scale must be a number (1 turns guidance off); got {guidance!r}.")
    if values["scheduler"] not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {values['scheduler']!r}; choose one of {', '.join(SCHEDULERS)}.")


FIELD_NAMES = tuple(f.name for f in fields(GenerationRequest))
SETTING_DEFAULTS = {f.name: f.default for f in fields(GenerationRequest) if f.name not in IMAGE_GROUPS}
"""Every optional setting and its default."""

FAST_SCHEDULER = "dpm++2m"
FAST_STEP_SHARE = 0.4
"""The fast preset: DPM-Solver++ 2M at two fifths of a model's default steps (50 -> 20, 25 -> 10);
its speed and quality against the defaults are measured in docs/PERFORMANCE.md."""


def fast_settings(defaults: dict) -> dict:
    """The fast preset's scheduler and steps for a model whose default settings are `defaults`."""
    steps = {**SETTING_DEFAULTS, **defaults}["steps"]
    return {"scheduler": FAST_SCHEDULER, "steps": max(1, round(steps * FAST_STEP_SHARE))}


def is_finite_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def whole_number(value: object, what: str, low: int, high: int) -> int:
    """`value` as an int in [low, high], else a ValueError that says so (an API can send anything)."""
    if not is_finite_number(value) or value != int(value):
        raise ValueError(f"{what} must be a whole number from {low} to {high}; got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{what} must be from {low} to {high}; got {value:g}.")
    return int(value)
