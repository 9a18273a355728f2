"""Loading the released layout (docs/method.md §3) and saving a layout that loads back."""

import json
import shutil

import numpy as np
import pytest
import safetensors.torch
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPVisionModelWithProjection

from parts2whole import Parts2WholePipeline, PoseGuider
from parts2whole.attention import DecoupledCrossAttnProcessor
from parts2whole.loading import DECOUPLED_ATTN_FILE, WeightsNotFoundError, decoupled_attention_state
from parts2whole.testing.inputs import call_kwargs
from parts2whole.testing.tiny_models import write_released_checkpoint


def test_released_layout_loads_with_the_right_classes(pipe, released_checkpoint) -> None:
    folder, written = released_checkpoint
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.reference_unet, UNet2DConditionModel)
    assert isinstance(pipe.vae, AutoencoderKL) and isinstance(pipe.pose_guider, PoseGuider)
    assert isinstance(pipe.text_encoder, CLIPTextModel)
    assert isinstance(pipe.image_encoder, CLIPVisionModelWithProjection)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert "authors_own" in (folder / "model_index.json").read_text()  # ignored, as it must be


def test_decoupled_weights_load_under_their_released_names(pipe, released_checkpoint) -> None:
    _, written = released_checkpoint
    loaded = decoupled_attention_state(pipe.unet)
    assert loaded.keys() == written["decoupled"].keys()
    assert len(loaded) == 2 * sum(1 for key in loaded if key.endswith("to_k_dc.weight"))
    for key, tensor in written["decoupled"].items():
        assert torch.equal(loaded[key], tensor), key
    processors = [p for p in pipe.unet.attn_processors.values() if isinstance(p, DecoupledCrossAttnProcessor)]
    assert len(processors) == len(loaded) // 2


def test_reference_unet_loads_without_the_absent_keys(pipe, released_checkpoint) -> None:
    _, written = released_checkpoint
    absent = written["absent_reference_keys"]
    assert absent, "the fixture must leave keys out"
    state = pipe.reference_unet.state_dict()
    original = written["components"]["reference_unet"].state_dict()
    for key, tensor in original.items():
        if key in absent:
            assert not state[key].any(), f"{key} should be zero, it is never used"
        else:
            assert torch.equal(state[key], tensor), key


def test_complete_reference_unet_file_loads_too(tmp_path) -> None:
    written = write_released_checkpoint(tmp_path / "complete", complete_reference=True)
    pipe = Parts2WholePipeline.from_pretrained(tmp_path / "complete")
    original = written["components"]["reference_unet"].state_dict()
    for key, tensor in pipe.reference_unet.state_dict().items():
        assert torch.equal(tensor, original[key]), key


def test_reference_unet_missing_a_needed_key_is_refused(tmp_path) -> None:
    folder = tmp_path / "broken"
    write_released_checkpoint(folder)
    weights_file = folder / "reference_unet" / "diffusion_pytorch_model.safetensors"
    state = safetensors.torch.load_file(weights_file)
    del state["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"]
    safetensors.torch.save_file(state, weights_file)
    with pytest.raises(ValueError, match="appearance encoder needs"):
        Parts2WholePipeline.from_pretrained(folder)


def test_save_load_round_trip(pipe, tmp_path) -> None:
    before = pipe(**call_kwargs(3)).images
    pipe.save_pretrained(tmp_path / "saved")
    unet_keys = safetensors.torch.load_file(tmp_path / "saved" / "unet" / "diffusion_pytorch_model.safetensors")
    assert not any(".processor." in key for key in unet_keys)
    decoupled = safetensors.torch.load_file(tmp_path / "saved" / "decoupled_attn.pth")
    assert decoupled.keys() == decoupled_attention_state(pipe.unet).keys()
    reference_keys = safetensors.torch.load_file(
        tmp_path / "saved" / "reference_unet" / "diffusion_pytorch_model.safetensors"
    )
    assert not any(key.startswith(("conv_out.", "conv_norm_out.")) for key in reference_keys)
    assert json.loads((tmp_path / "saved" / "model_index.json").read_text())["pose_guider"][1] == "PoseGuider"

    reloaded = Parts2WholePipeline.from_pretrained(tmp_path / "saved")
    reloaded.set_progress_bar_config(disable=True)
    after = reloaded(**call_kwargs(3)).images
    np.testing.assert_array_equal(before, after)


def test_components_can_be_passed_in(released_checkpoint) -> None:
    folder, written = released_checkpoint
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    pipe = Parts2WholePipeline.from_pretrained(folder, vae=vae)
    assert pipe.vae is vae


def test_a_component_passed_in_need_not_be_in_the_checkpoint(released_checkpoint, tmp_path) -> None:
    """A checkpoint without its VAE folder loads when a VAE is given (only the rest is looked for)."""
    folder = tmp_path / "no-vae"
    shutil.copytree(released_checkpoint[0], folder)
    shutil.rmtree(folder / "vae")
    vae = AutoencoderKL.from_pretrained(released_checkpoint[0] / "vae")
    assert Parts2WholePipeline.from_pretrained(folder, vae=vae).vae is vae


def test_torch_dtype_applies_to_every_model(released_checkpoint) -> None:
    pipe = Parts2WholePipeline.from_pretrained(released_checkpoint[0], torch_dtype=torch.bfloat16)
    for name in ("vae", "text_encoder", "image_encoder", "unet", "reference_unet", "pose_guider"):
        assert getattr(pipe, name).dtype == torch.bfloat16, name
    assert all(t.dtype == torch.bfloat16 for t in decoupled_attention_state(pipe.unet).values())


def test_unknown_component_is_refused(released_checkpoint) -> None:
    with pytest.raises(TypeError, match=r"Unknown argument\(s\) \['controlnet'\]; from_pretrained takes the components"):
        Parts2WholePipeline.from_pretrained(released_checkpoint[0], controlnet=None)


def test_hub_options_and_variants_are_taken(released_checkpoint, tmp_path) -> None:
    """diffusers' loading options work: hub options on a local folder, and a variant's files where a
    component has them (the UNet's fp16 file here), the plain files elsewhere."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(released_checkpoint[0], folder)
    plain = Parts2WholePipeline.from_pretrained(folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = safetensors.torch.load_file(weights)
    shifted = {key: tensor + 1.0 for key, tensor in state.items()}
    safetensors.torch.save_file(shifted, weights.with_name("diffusion_pytorch_model.fp16.safetensors"))
    options = dict(revision="main", cache_dir=str(tmp_path / "cache"), local_files_only=True, token=None, force_download=False)
    pipe = Parts2WholePipeline.from_pretrained(folder, variant="fp16", **options)
    key = "conv_in.weight"
    torch.testing.assert_close(pipe.unet.state_dict()[key], plain.unet.state_dict()[key] + 1.0)
    torch.testing.assert_close(pipe.vae.state_dict()["encoder.conv_in.weight"], plain.vae.state_dict()["encoder.conv_in.weight"])


def test_missing_weights_folder_says_how_to_fetch(tmp_path) -> None:
    with pytest.raises(WeightsNotFoundError) as error:
        Parts2WholePipeline.from_pretrained(tmp_path / "nowhere" / "parts2whole")
    assert f"`python download_weights.py --only parts2whole --dir {tmp_path / 'nowhere'}`" in str(error.value)
    assert f"(into {tmp_path / 'nowhere' / 'parts2whole'})" in str(error.value)


def test_incomplete_weights_folder_names_what_is_missing(tmp_path) -> None:
    folder = tmp_path / "partial"
    write_released_checkpoint(folder)
    (folder / "decoupled_attn.pth").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"missing decoupled_attn\.pth.*download_weights"):
        Parts2WholePipeline.from_pretrained(folder)


def test_pipeline_saves_into_a_new_nested_folder_with_pt_metadata(released_checkpoint, tmp_path) -> None:
    pipe = Parts2WholePipeline.from_pretrained(released_checkpoint[0])
    pipe.save_pretrained(tmp_path / "new" / "nested" / "model")
    with safetensors.safe_open(tmp_path / "new" / "nested" / "model" / DECOUPLED_ATTN_FILE, "pt") as file:
        assert file.metadata() == {"format": "pt"}
