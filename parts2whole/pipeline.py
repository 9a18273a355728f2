"""`Parts2WholePipeline`: a person in a pose, wearing the given parts (docs/method.md §4)."""

import copy
import inspect
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import safetensors.torch
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers import KarrasDiffusionSchedulers, SchedulerMixin
from diffusers.utils import BaseOutput, logging
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from .attention import install_processors
from .labels import MAX_PARTS, order_labels
from .loading import (
    COMPONENT_NAMES,
    DECOUPLED_ATTN_FILE,
    HUB_OPTIONS,
    decoupled_attention_state,
    load_components,
    load_decoupled_attention,
    resolve_checkpoint,
    save_model,
)
from .pose_guider import PoseGuider, install_pose_hook, pose_added_to_conv_in
from .preprocess import ImageInput, prepare_pose, prepare_reference
from .reference import ReferenceBank, capture_reference_features, unused_reference_keys

logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt", "latent")
STRUCTURE_KEYS = ("densepose",)

_TOKENIZER_LOCK = threading.Lock()
"""A fast tokenizer keeps its padding and truncation settings on the shared Rust object and sets
them on every call, so two calls at once can encode with each other's settings (measured: a
`max_length` call came back at another call's `longest` length). Calls that tokenize take turns."""


def tokenize(tokenizer: CLIPTokenizer, texts: list[str], **options) -> torch.Tensor:
    """`tokenizer(texts, return_tensors="pt", **options).input_ids`, safe from threads running at once.
    Quiet: a text longer than the encoder reads is said once, in our words (`encode_text`, the demo's
    warning), not also by transformers' log line on every count."""
    with _TOKENIZER_LOCK:
        return tokenizer(texts, return_tensors="pt", verbose=False, **options).input_ids


def text_embeddings(
    tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, texts: list[str], device: torch.device
) -> torch.Tensor:
    """CLIP text embeddings (len(texts), max length, D), each text on its own, cut to the encoder's length."""
    max_length = tokenizer.model_max_length
    input_ids = tokenize(tokenizer, texts, padding="max_length", max_length=max_length, truncation=True)
    return text_encoder(input_ids.to(device))[0]


def reference_latents(vae: AutoencoderKL, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    """VAE latents of references: the posterior mean (so that a seed gives one image), scaled.
    Training encodes references the same way, so the appearance encoder sees what it will see."""
    posterior = vae.encode(pixels.to(device, vae.dtype)).latent_dist
    return posterior.mode() * vae.config.scaling_factor


@dataclass
class Parts2WholePipelineOutput(BaseOutput):
    """`images`: PIL images, an (N, H, W, 3) array, an (N, 3, H, W) tensor, or latents."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


@dataclass
class PreparedParts:
    """The parts of one call, in label order, ready for the encoders."""

    labels: list[str]
    pixels: torch.Tensor  # (P, 3, H, W) in [-1, 1]
    masks: torch.Tensor  # (P, 1, H, W) in [0, 1]
    clip_images: list[PIL.Image.Image]


class Parts2WholePipeline(DiffusionPipeline):
    """Generate a person from reference images of their parts and a DensePose map of the pose.

    The appearance encoder (`reference_unet`) runs once per call; its masked features join the
    denoising UNet's self-attention (conditional branch only), one CLIP image token per part joins
    its cross-attention, and the pose guider's features are added after `conv_in`.

    A call keeps nothing on the pipeline: its reference features, pose features, scheduler state
    and guidance are its own, so one loaded pipeline can serve several calls at once (threads),
    each giving what it gives alone.
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->pose_guider->vae->reference_unet->unet"
    """The order `__call__` first uses the models in: accelerate's offload moves each model off the
    device when the next one in this order starts, so the reference UNet and the VAE are off it
    through the denoising loop (the VAE comes back for the decoding)."""
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        image_encoder: CLIPVisionModelWithProjection,
        feature_extractor: CLIPImageProcessor,
        unet: UNet2DConditionModel,
        reference_unet: UNet2DConditionModel,
        pose_guider: PoseGuider,
        scheduler: KarrasDiffusionSchedulers,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            unet=unet,
            reference_unet=reference_unet,
            pose_guider=pose_guider,
            scheduler=scheduler,
        )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        install_processors(unet, reference_unet)
        install_pose_hook(unet)

    # ----------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        **kwargs,
    ) -> "Parts2WholePipeline":
        """Load the released layout (docs/method.md §3) from a folder or a Hugging Face repo id.

        Any component can be passed in instead, e.g. `vae=AutoencoderKL.from_pretrained(...)`.
        The hub options of diffusers pipelines (`revision`, `cache_dir`, `local_files_only`,
        `token`, `force_download`, `proxies`) go to the download; `variant` picks weights files
        such as `*.fp16.safetensors` where a component has them.
        """
        hub_options = {name: kwargs.pop(name) for name in HUB_OPTIONS if name in kwargs}
        unknown = sorted(set(kwargs) - set(COMPONENT_NAMES))
        if unknown:
            raise TypeError(
                f"Unknown argument(s) {unknown}; from_pretrained takes the components {list(COMPONENT_NAMES)}, "
                f"torch_dtype, variant and the hub options {list(HUB_OPTIONS)}."
            )
        needed = tuple(name for name in COMPONENT_NAMES if name not in kwargs)
        folder = resolve_checkpoint(pretrained_model_name_or_path, needed, **hub_options)
        pipe = cls(**load_components(folder, torch_dtype, skip=set(kwargs), variant=variant), **kwargs)
        load_decoupled_attention(pipe.unet, folder / DECOUPLED_ATTN_FILE)
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write the released layout: the UNet without its decoupled processors, which go to their
        own file, and the appearance encoder without the weights it never uses."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        decoupled = decoupled_attention_state(self.unet)
        for name in COMPONENT_NAMES:
            component = getattr(self, name)
            if name == "unet":
                save_model(component, folder / name, leave_out=set(decoupled))
            elif name == "reference_unet":
                save_model(component, folder / name, leave_out=unused_reference_keys(component))
            else:
                component.save_pretrained(folder / name)
        tensors = {key: tensor.contiguous() for key, tensor in decoupled.items()}
        safetensors.torch.save_file(tensors, folder / DECOUPLED_ATTN_FILE, metadata={"format": "pt"})
        self.save_config(folder)

    # ------------------------------------------------------------------------------------- steps

    def check_inputs(
        self,
        appearance: dict,
        mask: dict | None,
        structure: dict,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        num_images_per_prompt: int,
        output_type: str,
        generator: torch.Generator | list[torch.Generator] | None,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> list[str]:
        """Every check on the call's arguments, each failing with a sentence; returns the labels in order
        (none for `appearance={}`, which `order_labels` alone would refuse)."""
        if not isinstance(appearance, dict):
            raise ValueError("`appearance` must be a dict from part label to image, e.g. {'face': image}.")
        labels = order_labels(appearance) if appearance else []
        for label in mask or {}:
            if label not in appearance:
                raise ValueError(f"A mask is given for {label!r} but there is no {label!r} image in `appearance`.")
        if not isinstance(structure, dict) or "densepose" not in structure:
            raise ValueError("`structure` must hold the target pose as {'densepose': image}.")
        other = sorted(set(structure) - set(STRUCTURE_KEYS))
        if other:
            raise ValueError(f"Unsupported structure {other}: the released model takes only 'densepose'.")
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value <= 0 or value % 8:
                raise ValueError(f"`{name}` must be a positive multiple of 8, got {value!r}.")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be at least 1, got {num_inference_steps!r}.")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float) or not math.isfinite(guidance_scale):
            raise ValueError(f"`guidance_scale` must be a finite number (e.g. 7.5; 1 turns guidance off), got {guidance_scale!r}.")
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"`num_images_per_prompt` must be at least 1, got {num_images_per_prompt!r}.")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if isinstance(generator, list) and len(generator) != num_images_per_prompt:
            raise ValueError(f"{len(generator)} generators given for {num_images_per_prompt} images.")
        unknown = sorted(set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs))
        if unknown:
            raise ValueError(f"Callbacks can take {self._callback_tensor_inputs}, not {unknown}.")
        return labels

    def prepare_parts(
        self, labels: list[str], appearance: dict, mask: dict | None, height: int, width: int
    ) -> PreparedParts:
        if not labels:
            return PreparedParts([], torch.zeros(0, 3, height, width), torch.zeros(0, 1, height, width), [])
        prepared = [prepare_reference(appearance[label], (mask or {}).get(label), width, height, label) for label in labels]
        pixels, masks, clip_images = zip(*prepared, strict=True)
        return PreparedParts(labels, torch.stack(pixels), torch.stack(masks), list(clip_images))

    def encode_text(self, texts: list[str], device: torch.device) -> torch.Tensor:
        """CLIP text embeddings (len(texts), 77, D), each text on its own; says when a text is cut."""
        max_length = self.tokenizer.model_max_length
        untruncated = tokenize(self.tokenizer, texts, padding="longest")
        if untruncated.shape[-1] > max_length:
            logger.warning(f"Prompts are cut to the text encoder's {max_length} tokens.")
        return text_embeddings(self.tokenizer, self.text_encoder, texts, device)

    def encode_image_tokens(self, images: list[PIL.Image.Image], device: torch.device) -> torch.Tensor:
        """(1, MAX_PARTS, D): one projected CLIP image embedding per part, then zero tokens."""
        dimension = self.image_encoder.config.projection_dim
        tokens = torch.zeros(1, MAX_PARTS, dimension, device=device, dtype=self.image_encoder.dtype)
        if images:
            pixels = self.feature_extractor(images=images, return_tensors="pt").pixel_values
            tokens[0, : len(images)] = self.image_encoder(pixels.to(device, self.image_encoder.dtype)).image_embeds
        return tokens

    def capture_parts(
        self,
        bank: ReferenceBank,
        parts: PreparedParts,
        label_embeds: torch.Tensor,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        """Run the appearance encoder on the parts into `bank`. With no parts the bank stays empty,
        so every self-attention of the denoising UNet is plain, as in the unconditional branch."""
        if not parts.labels:
            return
        latents = reference_latents(self.vae, parts.pixels, device).to(dtype)
        capture_reference_features(self.reference_unet, bank, latents, label_embeds, parts.masks.to(device, dtype))

    def prepare_latents(
        self,
        num_images: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
        scheduler: SchedulerMixin,
    ) -> torch.Tensor:
        shape = (num_images, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif latents.shape != shape:
            raise ValueError(f"`latents` must have shape {shape}, got {tuple(latents.shape)}.")
        return latents.to(device, dtype) * scheduler.init_noise_sigma

    @staticmethod
    def scheduler_step_kwargs(scheduler: SchedulerMixin, generator: torch.Generator | None, eta: float) -> dict:
        """`eta` and `generator` for the schedulers whose `step` takes them (DDIM, DDPM, ...)."""
        accepted = inspect.signature(scheduler.step).parameters
        return {name: value for name, value in (("eta", eta), ("generator", generator)) if name in accepted}

    def decode_latents(self, latents: torch.Tensor, output_type: str):
        if output_type == "latent":
            return latents
        images = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        return self.image_processor.postprocess(images, output_type=output_type)

    # -------------------------------------------------------------------------------------- call

    @torch.no_grad()
    def __call__(
        self,
        appearance: dict[str, ImageInput],
        structure: dict[str, ImageInput],
        mask: dict[str, ImageInput] | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        height: int = 768,
        width: int = 512,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[["Parts2WholePipeline", int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        scheduler: SchedulerMixin | None = None,
    ) -> Parts2WholePipelineOutput | tuple:
        """Generate `num_images_per_prompt` images of a person in the pose of `structure['densepose']`.

        Args:
            appearance: part label (`parts2whole.PART_LABELS`) -> reference image of that part. `{}`
                means no parts (an evaluation's ablation): zero image tokens and no reference
                features, so the conditional branch differs from the unconditional one only by the
                prompt. The command line and the demo refuse it (`order_labels`).
            structure: `{"densepose": image}`, the DensePose map of the target pose (docs/method.md).
            mask: part label -> greyscale mask (white = the part) for some of `appearance`'s parts;
                default, per part: its alpha channel, else the whole image.
            prompt, negative_prompt: texts of the conditional and unconditional branches.
            height, width: the output's size in pixels, multiples of 8.
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance `uncond + s * (cond - uncond)`; at most 1 runs
                the conditional branch alone.
            num_images_per_prompt: images made at once; with a list of generators, image i uses the
                i-th, so each can be made again alone.
            eta: DDIM's eta (ignored by schedulers without it).
            generator: the seed(s) of the initial noise and of stochastic schedulers.
            latents: initial noise (N, C, height / 8, width / 8) instead of drawing it.
            output_type: "pil", "np", "pt" or "latent".
            return_dict: a `Parts2WholePipelineOutput`, else a tuple.
            callback_on_step_end: `f(pipe, step, timestep, {"latents": ...})` after each step; what
                it returns replaces those tensors. An exception it raises ends the call there (the
                demo's Stop), leaving nothing behind.
            callback_on_step_end_tensor_inputs: the tensors given to the callback.
            scheduler: the scheduler of this call (default: the pipeline's). The call steps its
                own copy, so the one given can be shared by calls running at once.

        Images may be PIL images, numpy arrays or paths.
        """
        # 1. Check the inputs and read the images
        labels = self.check_inputs(
            appearance, mask, structure, height, width, num_inference_steps, guidance_scale, num_images_per_prompt,
            output_type, generator, list(callback_on_step_end_tensor_inputs),
        )  # fmt: skip
        parts = self.prepare_parts(labels, appearance, mask, height, width)
        pose = prepare_pose(structure["densepose"], width, height)
        guided = guidance_scale > 1.0
        device = self._execution_device
        dtype = self.unet.dtype

        # 2. Encode the texts (prompt, negative prompt, each part's label) and the image tokens
        text_embeds = self.encode_text([prompt or "", negative_prompt or "", *labels], device).to(dtype)
        prompt_embeds, negative_embeds, label_embeds = text_embeds[:1], text_embeds[1:2], text_embeds[2:]
        image_tokens = self.encode_image_tokens(parts.clip_images, device).to(dtype)
        context = torch.cat([prompt_embeds, image_tokens], dim=1).expand(num_images_per_prompt, -1, -1)
        if guided:
            uncond_context = torch.cat([negative_embeds, torch.zeros_like(image_tokens)], dim=1)
            context = torch.cat([uncond_context.expand(num_images_per_prompt, -1, -1), context])

        # 3. Encode the pose, once for the whole generation
        pose_features = self.pose_guider(pose[None].to(device, self.pose_guider.dtype)).to(dtype)

        # 4. Timesteps and initial noise, on this call's own scheduler
        scheduler = copy.deepcopy(scheduler or self.scheduler)
        scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = scheduler.timesteps
        latents = self.prepare_latents(num_images_per_prompt, height, width, dtype, device, generator, latents, scheduler)
        step_kwargs = self.scheduler_step_kwargs(scheduler, generator, eta)

        # 5. Appearance encoder into this call's bank, then the denoising loop with the parts and the pose
        bank = ReferenceBank()
        with bank.active(), pose_added_to_conv_in(self.unet, pose_features):
            self.capture_parts(bank, parts, label_embeds, device, dtype)
            bank.num_uncond = num_images_per_prompt if guided else 0
            with self.progress_bar(total=len(timesteps)) as progress_bar:
                for i, t in enumerate(timesteps):
                    model_input = torch.cat([latents] * 2) if guided else latents
                    model_input = scheduler.scale_model_input(model_input, t)
                    noise_pred = self.unet(model_input, t, encoder_hidden_states=context).sample
                    if guided:
                        noise_uncond, noise_cond = noise_pred.chunk(2)
                        noise_pred = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
                    latents = scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
                    if callback_on_step_end is not None:
                        step_tensors = {"latents": latents}
                        callback_kwargs = {name: step_tensors[name] for name in callback_on_step_end_tensor_inputs}
                        latents = callback_on_step_end(self, i, t, callback_kwargs).get("latents", latents)
                    progress_bar.update()

        # 6. Decode
        images = self.decode_latents(latents, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return Parts2WholePipelineOutput(images=images)
