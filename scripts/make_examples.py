"""Draw the example references and DensePose poses under examples/ (no third-party images).

    PYTHONPATH=. python scripts/make_examples.py

Poses are DensePose IUV maps rendered from the project's posable body (parts2whole.body), one
per pose-maker preset shown in the gallery. References are flat drawings of garments, a face and
shoes; transparent where there is no part, so the alpha channel serves as the mask, except where
an example ships a mask file. Each example folder holds its references, masks, pose
(densepose.png) and example.json; examples/poses/ holds the pose gallery.
"""

import json
from pathlib import Path

from PIL import Image, ImageDraw

from parts2whole.body import Camera, render_pose
from parts2whole.body.presets import PRESETS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WIDTH, HEIGHT = 512, 768
GALLERY = ("standing", "walking", "arms out", "hands on hips", "waving", "arms crossed", "three-quarter view", "back view")


def draw_densepose(preset: str) -> Image.Image:
    return render_pose(PRESETS[preset].pose, camera=Camera(yaw=PRESETS[preset].yaw), size=(WIDTH, HEIGHT))


def canvas(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def draw_face() -> tuple[Image.Image, Image.Image]:
    """A face on a light background (RGB) and its mask (the face ellipse)."""
    image = Image.new("RGB", (256, 320), (222, 226, 232))
    draw = ImageDraw.Draw(image)
    draw.ellipse((48, 40, 208, 260), fill=(232, 188, 160))
    draw.pieslice((40, 22, 216, 190), 180, 360, fill=(70, 44, 30))
    for x in (96, 160):
        draw.ellipse((x - 14, 132, x + 14, 150), fill=(255, 255, 255))
        draw.ellipse((x - 7, 134, x + 7, 148), fill=(60, 90, 60))
        draw.line((x - 16, 118, x + 16, 114), fill=(70, 44, 30), width=5)
    draw.line((128, 150, 120, 192, 134, 194), fill=(190, 140, 120), width=4)
    draw.arc((96, 196, 160, 232), 20, 160, fill=(170, 70, 80), width=6)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((48, 40, 208, 260), fill=255)
    return image, mask


def draw_cap() -> Image.Image:
    image, draw = canvas((256, 160))
    draw.pieslice((36, 20, 220, 196), 180, 360, fill=(30, 90, 160, 255))
    draw.rounded_rectangle((20, 100, 236, 122), radius=10, fill=(20, 60, 120, 255))
    draw.ellipse((120, 20, 136, 36), fill=(240, 240, 240, 255))
    return image


def draw_tshirt(stripe: tuple[int, int, int]) -> Image.Image:
    image, draw = canvas((320, 320))
    body = [(96, 40), (128, 30), (192, 30), (224, 40), (300, 100), (268, 150), (236, 120), (236, 300), (84, 300), (84, 120), (52, 150), (20, 100)]
    draw.polygon(body, fill=(245, 245, 240, 255))
    for y in range(60, 300, 36):
        draw.rectangle((84, y, 236, y + 14), fill=(*stripe, 255))
    draw.pieslice((128, 6, 192, 58), 0, 180, fill=(0, 0, 0, 0))
    return image


def draw_jeans() -> Image.Image:
    image, draw = canvas((256, 400))
    draw.polygon([(56, 20), (200, 20), (220, 380), (146, 380), (128, 130), (110, 380), (36, 380)], fill=(52, 80, 140, 255))
    draw.rectangle((56, 20, 200, 44), fill=(40, 62, 112, 255))
    draw.line((128, 44, 128, 120), fill=(200, 170, 90, 255), width=3)
    return image


def draw_dress() -> Image.Image:
    image, draw = canvas((320, 480))
    draw.polygon([(116, 20), (204, 20), (216, 170), (300, 460), (20, 460), (104, 170)], fill=(190, 30, 50, 255))
    draw.rectangle((104, 160, 216, 184), fill=(120, 16, 30, 255))
    for x, y in ((120, 260), (200, 300), (90, 380), (230, 400), (160, 360)):
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(250, 220, 120, 255))
    return image


def draw_shoes(colour: tuple[int, int, int]) -> Image.Image:
    image, draw = canvas((320, 160))
    for left in (20, 170):
        draw.rounded_rectangle((left, 60, left + 130, 120), radius=26, fill=(*colour, 255))
        draw.rectangle((left, 112, left + 130, 128), fill=(240, 240, 240, 255))
    return image


def write_example(name: str, parts: dict[str, Image.Image], masks: dict[str, Image.Image], pose: str, settings: dict) -> None:
    folder = EXAMPLES / name
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"appearance": {}, "mask": {}, "structure": {"densepose": "densepose.png"}}
    draw_densepose(pose).save(folder / "densepose.png")
    for label, image in parts.items():
        file_name = label.replace(" ", "_")
        image.save(folder / f"{file_name}.png")
        entry["appearance"][label] = f"{file_name}.png"
        if label in masks:
            masks[label].save(folder / f"{file_name}_mask.png")
            entry["mask"][label] = f"{file_name}_mask.png"
    entry.update(settings)
    (folder / "example.json").write_text(json.dumps(entry, indent=2) + "\n")


def main() -> None:
    (EXAMPLES / "poses").mkdir(parents=True, exist_ok=True)
    for old in (EXAMPLES / "poses").glob("*.png"):
        old.unlink()
    for preset in GALLERY:
        draw_densepose(preset).save(EXAMPLES / "poses" / f"{preset.replace(' ', '_').replace('-', '_')}.png")
    face, face_mask = draw_face()
    common = {"negative_prompt": "", "height": 768, "width": 512, "steps": 50, "guidance_scale": 7.5}
    write_example(
        "casual",
        {"hair or headwear": draw_cap(), "face": face, "upper body clothes": draw_tshirt((40, 110, 70)),
         "lower body clothes": draw_jeans(), "shoes": draw_shoes((30, 30, 30))},
        {"face": face_mask},
        "standing",
        {"prompt": "a young man in a blue cap, a striped t-shirt and jeans, full body, studio photo", "seed": 42, **common},
    )
    write_example(
        "red_dress",
        {"face": face, "whole body clothes": draw_dress(), "shoes": draw_shoes((150, 20, 40))},
        {"face": face_mask},
        "walking",
        {"prompt": "a woman in a red dress walking, full body, studio photo", "seed": 7, **common},
    )
    write_example(
        "arms_out",
        {"face": face, "upper body clothes": draw_tshirt((180, 60, 40)), "lower body clothes": draw_jeans()},
        {"face": face_mask},
        "arms out",
        {"prompt": "a person with arms stretched out, full body, studio photo", "seed": 3, **common},
    )


if __name__ == "__main__":
    main()
