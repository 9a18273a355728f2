"""The released checkpoint layout (docs/method.md §3) <-> pipeline components.

Classes are chosen here, per folder: the checkpoint's `model_index.json` names the authors' own
classes and is not read.
"""

import os
from pathlib import Path

import safetensors.torch
import torch
from diffusers import AutoencoderKL, DDIMScheduler, ModelMixin, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from huggingface_hub import snapshot_download
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from .attention import DecoupledCrossAttnProcessor
from .pose_guider import PoseGuider
from .reference import unused_reference_keys
from .weights import SOURCES, fetch_command

DECOUPLED_ATTN_FILE = "decoupled_attn.pth"
MODEL_FILE = "diffusion_pytorch_model.safetensors"
COMPONENT_NAMES = (
    "vae",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "feature_extractor",
    "unet",
    "reference_unet",
    "pose_guider",
    "scheduler",
)


class WeightsNotFoundError(FileNotFoundError):
    """The checkpoint is not where it should be; the message says how to fetch it."""


def missing_checkpoint_parts(folder: Path, needed: tuple[str, ...] = COMPONENT_NAMES) -> list[str]:
    """The parts of the released layout that `folder` lacks, among the `needed` components."""
    parts = [f"{name}/" for name in needed if not (folder / name).is_dir()]
    if not (folder / DECOUPLED_ATTN_FILE).is_file():
        parts.append(DECOUPLED_ATTN_FILE)
    return parts


HUB_OPTIONS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "proxies")
"""The Hugging Face hub options `from_pretrained` passes on to the download, as diffusers pipelines do."""


def resolve_checkpoint(path_or_repo: str | os.PathLike, needed: tuple[str, ...] = COMPONENT_NAMES, **hub_options) -> Path:
    """The local checkpoint folder.

    A `Path` is always a local folder; a string that names no local folder is taken for a Hugging
    Face repo id and downloaded to the cache with `hub_options` (as diffusers' `from_pretrained` does).
    """
    folder = Path(path_or_repo)
    if isinstance(path_or_repo, str) and not folder.exists() and path_or_repo.count("/") == 1:
        try:
            folder = Path(snapshot_download(repo_id=path_or_repo, **hub_options))
        except Exception as error:  # offline, unknown repo, ...: the local route is the way on
            raise WeightsNotFoundError(
                f"No folder {path_or_repo!r} here, and it could not be fetched from the Hugging Face hub "
                f"({type(error).__name__}). Fetch the weights with `{fetch_command('parts2whole')}` "
                f"(into pretrained_weights/{SOURCES['parts2whole'].target})."
            ) from None
    missing = missing_checkpoint_parts(folder, needed)
    if not folder.is_dir() or missing:
        what = "no such folder" if not folder.is_dir() else f"missing {', '.join(missing)}"
        raise WeightsNotFoundError(
            f"Parts2Whole weights not found in {str(folder)!r} ({what}). "
            f"Fetch them with `{fetch_command('parts2whole', folder.parent)}` (into {folder.parent / SOURCES['parts2whole'].target})."
        )
    return folder


def load_reference_unet(folder: Path, torch_dtype: torch.dtype | None = None, variant: str | None = None) -> UNet2DConditionModel:
    """Load the appearance encoder from a file with or without its unused weights (docs/method.md §3).

    Weights that the file lacks must be among those the appearance encoder never runs; they are set
    to zero so the model is fully defined, and they are left out again when it is saved.
    """
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # the expected missing keys would read as a failure
    try:
        model, info = UNet2DConditionModel.from_pretrained(
            folder, torch_dtype=torch_dtype, low_cpu_mem_usage=False, output_loading_info=True, variant=variant
        )
    finally:
        diffusers_logging.set_verbosity(verbosity)
    needed_but_missing = sorted(set(info["missing_keys"]) - unused_reference_keys(model))
    if needed_but_missing:
        raise ValueError(f"{folder} lacks weights the appearance encoder needs: {needed_but_missing[:5]} ...")
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for key in info["missing_keys"]:
            parameters[key].zero_()
    return model


def variant_in(folder: Path, variant: str | None) -> str | None:
    """`variant` (e.g. "fp16": weights files named `*.fp16.safetensors`) where `folder` has such
    files, else None: that component's plain weights are loaded, as diffusers falls back."""
    return variant if variant and any(folder.glob(f"*.{variant}.*")) else None


def load_components(folder: Path, torch_dtype: torch.dtype | None, skip: set[str], variant: str | None = None) -> dict:
    """Every pipeline component found in the released layout under `folder`, except those in `skip`."""

    def weights(name: str) -> dict:
        return {"variant": variant_in(folder / name, variant)}

    loaders = {
        "vae": lambda: AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch_dtype, **weights("vae")),
        "text_encoder": lambda: CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=torch_dtype, **weights("text_encoder")),
        "tokenizer": lambda: CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        "image_encoder": lambda: CLIPVisionModelWithProjection.from_pretrained(
            folder / "image_encoder", dtype=torch_dtype, **weights("image_encoder")
        ),
        "feature_extractor": lambda: CLIPImageProcessor.from_pretrained(folder / "feature_extractor"),
        "unet": lambda: UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch_dtype, **weights("unet")),
        "reference_unet": lambda: load_reference_unet(folder / "reference_unet", torch_dtype, **weights("reference_unet")),
        "pose_guider": lambda: PoseGuider.from_pretrained(folder / "pose_guider", torch_dtype=torch_dtype, **weights("pose_guider")),
        "scheduler": lambda: DDIMScheduler.from_pretrained(folder / "scheduler"),
    }
    return {name: load() for name, load in loaders.items() if name not in skip}


def decoupled_processors(unet: UNet2DConditionModel) -> dict[str, DecoupledCrossAttnProcessor]:
    """The UNet's decoupled cross-attention processors, by their state-dict prefix."""
    return {
        name: processor
        for name, processor in unet.attn_processors.items()
        if isinstance(processor, DecoupledCrossAttnProcessor)
    }


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file whatever its extension; a plain torch pickle as a fallback."""
    try:
        return safetensors.torch.load_file(path)
    except safetensors.SafetensorError:
        return torch.load(path, map_location="cpu", weights_only=True)


def load_decoupled_attention(unet: UNet2DConditionModel, path: Path) -> None:
    """Load `to_k_dc`/`to_v_dc` of every decoupled processor from the released file (docs/method.md §3)."""
    state = read_state_dict(path)
    processors = decoupled_processors(unet)
    expected = {f"{name}.{key}" for name, processor in processors.items() for key in processor.state_dict()}
    if expected != set(state):
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"{path} does not match the UNet: missing {missing[:4]}, unexpected {unexpected[:4]}.")
    for name, processor in processors.items():
        processor.load_state_dict({key: state[f"{name}.{key}"] for key in processor.state_dict()})


def decoupled_attention_state(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": tensor
        for name, processor in decoupled_processors(unet).items()
        for key, tensor in processor.state_dict().items()
    }


def save_model(model: ModelMixin, folder: Path, leave_out: set[str] | None = None) -> None:
    """Save config and weights like `save_pretrained`, without the state-dict keys in `leave_out`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_config(folder)
    state = {key: tensor.contiguous() for key, tensor in model.state_dict().items() if key not in (leave_out or set())}
    safetensors.torch.save_file(state, folder / MODEL_FILE, metadata={"format": "pt"})
