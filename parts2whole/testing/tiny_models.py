"""Tiny Parts2Whole components (the diffusers `get_dummy_components` pattern) and the released layout.

`write_released_checkpoint` writes the components the way the authors' checkpoint is laid out
(docs/method.md §3), independently of the project's own `save_pretrained`: the reference UNet without the
keys the release lacks, `decoupled_attn.pth` as a safetensors file keyed by the UNet's
cross-attention paths, and a `model_index.json` naming classes that do not exist here.
"""

import json
from pathlib import Path

import safetensors.torch
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from parts2whole import PoseGuider
from parts2whole.training.components import character_tokenizer

HIDDEN = 32  # cross-attention width of the tiny models


def tiny_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer (no merges) over lower-case letters and digits."""
    return character_tokenizer()


def tiny_unet(seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=HIDDEN,
        attention_head_dim=2,
    )


def tiny_components(seed: int = 0) -> dict:
    """Every pipeline component, tiny and seeded; the pose guider's output layer is not zero."""
    vae_config = dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(**vae_config)
    tokenizer = tiny_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=HIDDEN,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=HIDDEN,
            projection_dim=HIDDEN,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=4,
        )
    )
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    pose_guider = PoseGuider(conditioning_embedding_channels=32, block_out_channels=(4, 8, 8, 16))
    torch.nn.init.normal_(pose_guider.conv_out.weight, std=1.0)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return dict(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        image_encoder=image_encoder.eval(),
        feature_extractor=feature_extractor,
        unet=tiny_unet(seed + 1),
        reference_unet=tiny_unet(seed + 2),
        pose_guider=pose_guider,
        scheduler=scheduler,
    )


def released_reference_keys_absent(state_dict: dict) -> set[str]:
    """docs/method.md §3's list of keys missing from the released `reference_unet`, for the tiny layout
    (whose last cross-attention block is `up_blocks.1.attentions.1`)."""
    last = "up_blocks.1.attentions.1"
    block = f"{last}.transformer_blocks.0"
    absent_prefixes = (
        "conv_norm_out.",
        "conv_out.",
        f"{last}.proj_out.",
        f"{block}.attn1.to_q.",
        f"{block}.attn1.to_k.",
        f"{block}.attn1.to_v.",
        f"{block}.attn1.to_out.0.",
        f"{block}.norm2.",
        f"{block}.attn2.",
        f"{block}.norm3.",
        f"{block}.ff.",
    )
    return {key for key in state_dict if key.startswith(absent_prefixes)}


def decoupled_weights(unet: UNet2DConditionModel, seed: int) -> dict[str, torch.Tensor]:
    """Random `to_k_dc`/`to_v_dc` for every cross-attention of `unet`, keyed as in the release."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, module in unet.named_modules():
        if name.endswith("attn2"):
            for projection in ("to_k_dc", "to_v_dc"):
                shape = (module.to_k.out_features, module.to_k.in_features)
                weights[f"{name}.processor.{projection}.weight"] = torch.randn(shape, generator=generator) * 0.2
    return weights


def write_released_checkpoint(folder: Path, seed: int = 0, complete_reference: bool = False) -> dict:
    """Write tiny components in the released layout; returns what was written, for comparisons."""
    components = tiny_components(seed)
    for name in ("vae", "text_encoder", "tokenizer", "image_encoder", "feature_extractor", "unet", "pose_guider", "scheduler"):
        components[name].save_pretrained(folder / name)
    reference = components["reference_unet"]
    state = reference.state_dict()
    absent = set() if complete_reference else released_reference_keys_absent(state)
    (folder / "reference_unet").mkdir(parents=True)
    reference.save_config(folder / "reference_unet")
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in state.items() if k not in absent},
        folder / "reference_unet" / "diffusion_pytorch_model.safetensors",
    )
    decoupled = decoupled_weights(components["unet"], seed)
    safetensors.torch.save_file(decoupled, folder / "decoupled_attn.pth")
    model_index = {"_class_name": "Parts2WholePipeline", "_diffusers_version": "0.25.0"}
    model_index.update({name: ["src.models.authors_own", f"Authors{name.title()}"] for name in components})
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2))
    return {"components": components, "decoupled": decoupled, "absent_reference_keys": absent}


def write_tiny_segformer(folder: Path, seed: int = 0) -> None:
    """A tiny SegFormer with the clothes parser's 18 classes, saved like `segformer_b2_clothes`."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    classes = ["Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt",
               "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag", "Scarf"]  # fmt: skip
    torch.manual_seed(seed)
    config = SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], num_attention_heads=[1, 2],
        patch_sizes=[7, 3], strides=[4, 2], decoder_hidden_size=16, num_labels=len(classes),
        id2label=dict(enumerate(classes)), label2id={name: i for i, name in enumerate(classes)},
    )
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)


def write_tiny_realesrgan(path: Path, seed: int = 0, num_block: int = 1) -> None:
    """An RRDBNet x4 with `num_block` blocks and 8 features, saved like RealESRGAN_x4plus.pth ({'params_ema': ...})."""
    from parts2whole.upscale import import_realesrgan

    _, RRDBNet = import_realesrgan()
    torch.manual_seed(seed)
    network = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=num_block, num_grow_ch=32, scale=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": network.state_dict()}, path)


def write_demo_weights(root: Path) -> Path:
    """Everything the demo uses, tiny, in the pretrained_weights/ layout; returns `root`."""
    write_released_checkpoint(root / "parts2whole")
    write_tiny_segformer(root / "segformer_b2_clothes")
    write_tiny_realesrgan(root / "RealESRGAN_x4plus.pth")
    return root
