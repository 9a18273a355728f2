"""Draw the example references and DensePose poses under examples/ (no third-party images).

    python scripts/make_examples.py

Poses are DensePose IUV maps drawn from a stick figure: each body part is a capsule filled with
its DensePose part index (blue), V along the limb (red) and U across it (green), on black.
References are flat drawings of garments, a face and shoes; transparent where there is no part,
so the alpha channel serves as the mask, except where an example ships a mask file. Each example
folder holds its references, masks, pose (densepose.png) and example.json; examples/poses/ holds
the pose gallery.
"""

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WIDTH, HEIGHT = 512, 768

# DensePose part indices, front view (the person's right is the image's left).
TORSO_FRONT, RIGHT_HAND, LEFT_HAND, LEFT_FOOT, RIGHT_FOOT = 2, 3, 4, 5, 6
UPPER_LEG_RIGHT, UPPER_LEG_LEFT, LOWER_LEG_RIGHT, LOWER_LEG_LEFT = 9, 10, 13, 14
UPPER_ARM_LEFT, UPPER_ARM_RIGHT, LOWER_ARM_LEFT, LOWER_ARM_RIGHT = 15, 16, 19, 20
HEAD_RIGHT, HEAD_LEFT = 23, 24

POSES: dict[str, dict[str, tuple[float, float]]] = {
    "standing": {
        "neck": (256, 190), "pelvis": (256, 410),
        "r_shoulder": (196, 215), "r_elbow": (180, 320), "r_wrist": (176, 420),
        "l_shoulder": (316, 215), "l_elbow": (332, 320), "l_wrist": (336, 420),
        "r_hip": (226, 420), "r_knee": (222, 560), "r_ankle": (220, 690),
        "l_hip": (286, 420), "l_knee": (290, 560), "l_ankle": (292, 690),
    },
    "arms_out": {
        "neck": (256, 190), "pelvis": (256, 410),
        "r_shoulder": (196, 215), "r_elbow": (120, 250), "r_wrist": (50, 275),
        "l_shoulder": (316, 215), "l_elbow": (392, 250), "l_wrist": (462, 275),
        "r_hip": (226, 420), "r_knee": (210, 560), "r_ankle": (196, 690),
        "l_hip": (286, 420), "l_knee": (302, 560), "l_ankle": (316, 690),
    },
    "walking": {
        "neck": (250, 190), "pelvis": (252, 410),
        "r_shoulder": (192, 215), "r_elbow": (196, 320), "r_wrist": (222, 410),
        "l_shoulder": (310, 215), "l_elbow": (318, 318), "l_wrist": (300, 405),
        "r_hip": (222, 420), "r_knee": (196, 555), "r_ankle": (186, 685),
        "l_hip": (282, 420), "l_knee": (300, 548), "l_ankle": (330, 670),
    },
    "hands_on_hips": {
        "neck": (256, 190), "pelvis": (256, 410),
        "r_shoulder": (196, 215), "r_elbow": (128, 300), "r_wrist": (196, 396),
        "l_shoulder": (316, 215), "l_elbow": (384, 300), "l_wrist": (316, 396),
        "r_hip": (226, 420), "r_knee": (214, 560), "r_ankle": (206, 690),
        "l_hip": (286, 420), "l_knee": (298, 560), "l_ankle": (306, 690),
    },
}

# (part index, from joint, to joint, radius in pixels); later parts are drawn over earlier ones.
LIMBS = [
    (TORSO_FRONT, "neck", "pelvis", 66),
    (UPPER_LEG_RIGHT, "r_hip", "r_knee", 30), (LOWER_LEG_RIGHT, "r_knee", "r_ankle", 24),
    (UPPER_LEG_LEFT, "l_hip", "l_knee", 30), (LOWER_LEG_LEFT, "l_knee", "l_ankle", 24),
    (UPPER_ARM_RIGHT, "r_shoulder", "r_elbow", 20), (LOWER_ARM_RIGHT, "r_elbow", "r_wrist", 17),
    (UPPER_ARM_LEFT, "l_shoulder", "l_elbow", 20), (LOWER_ARM_LEFT, "l_elbow", "l_wrist", 17),
]


def capsule(joint_from, joint_to, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels within `radius` of a segment, with V (0..1 along it) and U (0..1 across it)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    start, end = np.array(joint_from, float), np.array(joint_to, float)
    axis = end - start
    length = np.linalg.norm(axis)
    along = ((xs - start[0]) * axis[0] + (ys - start[1]) * axis[1]) / length**2
    clamped = np.clip(along, 0.0, 1.0)
    across = ((xs - start[0]) * -axis[1] + (ys - start[1]) * axis[0]) / length
    distance = np.hypot(xs - (start[0] + clamped * axis[0]), ys - (start[1] + clamped * axis[1]))
    return distance <= radius, clamped, np.clip(across / (2 * radius) + 0.5, 0.0, 1.0)


def draw_densepose(joints: dict[str, tuple[float, float]]) -> Image.Image:
    iuv = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)

    def paint(inside, v, u, index) -> None:
        iuv[inside] = np.stack([v[inside] * 255, u[inside] * 255, np.full(inside.sum(), index)], axis=-1)

    for index, joint_from, joint_to, radius in LIMBS:
        paint(*capsule(joints[joint_from], joints[joint_to], radius), index)
    for wrist, elbow, index in (("r_wrist", "r_elbow", RIGHT_HAND), ("l_wrist", "l_elbow", LEFT_HAND)):
        direction = np.subtract(joints[wrist], joints[elbow])
        tip = np.add(joints[wrist], direction / np.linalg.norm(direction) * 34)
        paint(*capsule(joints[wrist], tip, 15), index)
    for ankle, index, side in (("r_ankle", RIGHT_FOOT, -1), ("l_ankle", LEFT_FOOT, 1)):
        toe = np.add(joints[ankle], (side * 30, 36))
        paint(*capsule(joints[ankle], toe, 16), index)
    head_center = np.add(joints["neck"], (0, -78))
    inside, v, u = capsule(np.add(head_center, (0, -20)), np.add(head_center, (0, 30)), 48)
    right_half = np.mgrid[0:HEIGHT, 0:WIDTH][1] < head_center[0]
    paint(inside & right_half, v, u, HEAD_RIGHT)
    paint(inside & ~right_half, v, u, HEAD_LEFT)
    return Image.fromarray(iuv)


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
    draw_densepose(POSES[pose]).save(folder / "densepose.png")
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
    for name, joints in POSES.items():
        draw_densepose(joints).save(EXAMPLES / "poses" / f"{name}.png")
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
        "arms_out",
        {"prompt": "a person with arms stretched out, full body, studio photo", "seed": 3, **common},
    )


if __name__ == "__main__":
    main()
