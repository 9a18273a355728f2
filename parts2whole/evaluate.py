"""`python -m parts2whole.evaluate --weights CHECKPOINT --data DATASET`: does a checkpoint dress
held-out people in the parts it is given?

For each person of the split (a dataset in the authors' format with our `parsing/` maps) and each
condition, one image with a fixed seed, in the person's pose, with an empty prompt so that only the
references carry the appearance (`--captions`: each person's caption, which names its colours):
- `all`: every reference of the person, with its mask;
- `none`: no reference at all (`appearance={}`), the ablation;
- `other`: the references of another person of the split with the same labels (`pair_people`);
- `no_masks`: every reference of the person used whole (no mask, no alpha).
`--conditions` runs a subset (a target whose conditions were not run reads "not measured"): the
`none` ablation does not depend on the guidance scale, so a sweep over it needs only `all,other`.

Scores, inside the TARGET's parsing regions: per label, CIEDE2000 between the generated image's mean
colour and a reference colour, the mean colour of a ground-truth photo in that part's region: the
target's own for `all`, `none` and `no_masks`. For `other`, against the references given, and also
against the target's own colours in its regions, so a model that memorised its training people
rather than reading its references shows. On a synthetic dataset (`synthetic.json`), the references
given are judged by the condition's own ground truth: the other person's parts rendered on the
target's body in the target's pose, camera and light, in its own parsing regions. Elsewhere, by the
other person's ground truth in their own photo and region, which carries that photo's light and the
other person's shapes (a perfect generation scores 0.48 of the own-colour error on the face that
way: docs/mini_model.md, "The floor of the other-person condition"). And the silhouette IoU
of the person segmented from the background against the target's parsing mask, with the same
segmentation of the ground truth as a sanity row.

Each row of `results.json` also keeps the CIELAB mean colours behind its ΔE (`lab`: the ground
truth's per row, the generated image's per condition). Writes `results.json`, `results.md` and
`samples.png` under `--out`; prints the table and the targets.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .evaluation.report import markdown_table, references_tile, samples_sheet, target_lines
from .evaluation.scoring import (
    check_targets,
    colour_errors,
    errors_between,
    pair_people,
    part_regions,
    region_colours,
    silhouette_iou,
    summarise,
)
from .pipeline import Parts2WholePipeline
from .preprocess import composite_on_white, load_image, to_rgba
from .runtime import (
    SCHEDULERS,
    default_device,
    load_pipeline,
    make_scheduler,
    model_defaults,
    model_folder,
    parse_dtype,
)
from .synthetic import ORIGIN_FILE, swapped_photo
from .training.data import WHOLE_IMAGE, PartsDataset, Sample, read_samples, resize_box

CONDITIONS = ("all", "none", "other", "no_masks")
FALLBACK = {"steps": 25, "guidance_scale": 7.5, "scheduler": "ddim"}
"""Sampling settings where neither the command line nor the checkpoint's defaults give one."""
SAMPLE_PEOPLE = 4
"""People shown in samples.png."""
OTHER_JUDGES = {
    True: "the perfect answer: the other person's parts rendered on the target in its own regions (synthetic.json)",
    False: "the other person's ground truth in their own photo and region",
}
"""What `other` is scored against, by whether the dataset is synthetic."""


@dataclass(frozen=True)
class Settings:
    height: int
    width: int
    steps: int
    guidance_scale: float
    scheduler: str
    seed: int
    prompt: str | None  # None: each target's caption


@dataclass(frozen=True)
class Person:
    """A held-out person at the generated size, with the reference colour of each measured part."""

    sample: Sample
    target: np.ndarray  # (H, W, 3) uint8, the ground truth
    parsing: np.ndarray  # (H, W) `PARSING_CLASSES` indices
    regions: dict[str, np.ndarray]  # label -> bool (H, W), see `part_regions`
    colours: dict[str, np.ndarray]  # label -> CIELAB mean of the ground truth in its region


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m parts2whole.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        required=True,
        help="a checkpoint folder (released layout), or a weights folder: its released model, else the mini model",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: <split>.jsonl, images, parsing/")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N people of the split")
    parser.add_argument(
        "--height", type=int, default=None, help="default: the checkpoint's defaults.json, else the data's"
    )
    parser.add_argument(
        "--width", type=int, default=None, help="default: the checkpoint's defaults.json, else the data's"
    )
    parser.add_argument("--steps", type=int, default=None, help=f"default: defaults.json, else {FALLBACK['steps']}")
    parser.add_argument(
        "--guidance", type=float, default=None, help=f"default: defaults.json, else {FALLBACK['guidance_scale']}"
    )
    parser.add_argument("--scheduler", choices=list(SCHEDULERS), default=None, help="default: defaults.json, else ddim")
    parser.add_argument("--seed", type=int, default=0, help="the same seed for every image")
    parser.add_argument("--prompt", default="", help="one prompt for every image (default: none)")
    parser.add_argument("--captions", action="store_true", help="each target's caption as its prompt instead")
    parser.add_argument(
        "--conditions",
        type=condition_list,
        default=CONDITIONS,
        help=f"comma-separated, of {','.join(CONDITIONS)} (default: all); a guidance sweep needs only all,other",
    )
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=None, help="default: docs/eval-<checkpoint folder name>")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def condition_list(text: str) -> tuple[str, ...]:
    """The named conditions, in `CONDITIONS` order (each run once however often it is named)."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(CONDITIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"conditions are {', '.join(CONDITIONS)}; got {text!r}")
    return tuple(condition for condition in CONDITIONS if condition in names)


def resolve_settings(args: argparse.Namespace, defaults: dict, image_size: tuple[int, int]) -> Settings:
    """Each setting from the command line, else the checkpoint's `defaults.json` (what it was trained
    to be sampled with), else `FALLBACK`; the size falls back to the data's image size (multiples of 8)."""
    width, height = image_size
    fallback = {"height": height // 8 * 8, "width": width // 8 * 8, **FALLBACK}
    given = {
        "height": args.height,
        "width": args.width,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "scheduler": args.scheduler,
    }
    chosen = {
        key: given[key] if given[key] is not None else defaults.get(key, value) for key, value in fallback.items()
    }
    return Settings(**chosen, seed=args.seed, prompt=None if args.captions else args.prompt)


def load_person(dataset: PartsDataset, index: int) -> Person:
    """The ground truth and parsing map exactly as the dataset resizes them for the pose (uncropped)."""
    item = dataset[index]
    target = ((item["pixels"] + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    parsing = item["parsing"].numpy()
    sample = dataset.samples[index]
    regions = part_regions(parsing, sample.appearance)
    return Person(sample, target, parsing, regions, region_colours(target, regions))


@dataclass(frozen=True)
class PerfectAnswer:
    """The other-person condition's own ground truth on a synthetic dataset: each given part's
    region in it and its mean colour there."""

    regions: dict[str, np.ndarray]
    colours: dict[str, np.ndarray]


def synthetic_origin(root: Path) -> dict | None:
    """The seed and target size a synthetic dataset was made with (`synthetic.json`), else None."""
    path = Path(root) / ORIGIN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def perfect_answer(origin: dict, person: Person, partner: Person, size: tuple[int, int]) -> PerfectAnswer:
    """The partner's parts rendered on the target's body in the target's shot, resized to `size` =
    (width, height) as the dataset resizes the target."""
    names = int(person.sample.target.stem), int(partner.sample.target.stem)
    photo, parsing = swapped_photo(origin["seed"], *names, tuple(origin["size"]))
    image = np.asarray(resize_box(photo.convert("RGB"), size, WHOLE_IMAGE, Image.Resampling.BICUBIC))
    parsing = np.asarray(resize_box(Image.fromarray(parsing, "L"), size, WHOLE_IMAGE, Image.Resampling.NEAREST))
    regions = part_regions(parsing, partner.sample.appearance)
    return PerfectAnswer(regions, region_colours(image, regions))


def whole_reference(path: Path) -> Image.Image:
    """A reference with no mask at all: on white where it is transparent, then opaque everywhere."""
    return composite_on_white(to_rgba(load_image(path, "a reference")))


def condition_inputs(
    person: Person, partner: Person | None, conditions: tuple[str, ...] = CONDITIONS
) -> dict[str, tuple[dict, dict | None]]:
    """(`appearance`, `mask`) of each of `conditions` run for this person, in `CONDITIONS` order
    (`other` only where there is a partner); the unmasked references are read only when asked for."""
    sample = person.sample
    made = {
        "all": lambda: (sample.appearance, sample.mask),
        "none": lambda: ({}, None),
        "other": lambda: (partner.sample.appearance, partner.sample.mask),
        "no_masks": lambda: ({label: whole_reference(path) for label, path in sample.appearance.items()}, None),
    }
    run = [c for c in CONDITIONS if c in conditions and (c != "other" or partner is not None)]
    return {condition: made[condition]() for condition in run}


def generate(
    pipe: Parts2WholePipeline, settings: Settings, person: Person, appearance: dict, mask: dict | None
) -> np.ndarray:
    """One image in the person's pose. The seed is the same for every person and condition, so that
    two conditions of a person start from the same noise and differ only in their inputs."""
    image = pipe(
        appearance=appearance,
        mask=mask,
        structure={"densepose": person.sample.densepose},
        prompt=person.sample.caption if settings.prompt is None else settings.prompt,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        generator=torch.Generator().manual_seed(settings.seed),
    ).images[0]
    return np.asarray(image)


def score(
    image: np.ndarray, person: Person, partner: Person | None, condition: str, perfect: PerfectAnswer | None = None
) -> dict:
    """`delta_e` against the colours of the references given (none given: the target's own): for
    `other`, the `perfect` answer's where there is one, else the partner's; for `other` also
    `delta_e_own`, against the target's own; `iou` of the silhouette; `lab`, the generated mean
    colours themselves, so that an error can be taken apart (lightness or hue)."""
    measured = region_colours(image, person.regions)
    scores = {"iou": silhouette_iou(image, person.parsing), "lab": lab_lists(measured)}
    if condition == "other":
        if perfect is None:
            scores["delta_e"] = errors_between(measured, partner.colours)
        else:
            scores["delta_e"] = colour_errors(image, perfect.regions, perfect.colours)
        scores["delta_e_own"] = errors_between(measured, person.colours)
    else:
        scores["delta_e"] = errors_between(measured, person.colours)
    return scores


def lab_lists(colours: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """CIELAB colours as JSON lists, to 0.01."""
    return {label: [round(float(value), 2) for value in colour] for label, colour in colours.items()}


def evaluate(
    pipe: Parts2WholePipeline,
    dataset: PartsDataset,
    settings: Settings,
    root: Path,
    limit: int | None,
    conditions: tuple[str, ...] = CONDITIONS,
) -> tuple[list[dict], list[dict[str, Image.Image]]]:
    """A result row per person and the cells of samples.png for the first `SAMPLE_PEOPLE`."""
    partners = pair_people(dataset.samples)
    origin = synthetic_origin(root)
    rows, sheet_rows = [], []
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in tqdm(range(count), desc="people"):
        person = load_person(dataset, index)
        partner = None if partners[index] is None else load_person(dataset, partners[index])
        inputs = condition_inputs(person, partner, conditions)
        images = {condition: generate(pipe, settings, person, *given) for condition, given in inputs.items()}
        perfect = None
        if origin is not None and "other" in images:
            perfect = perfect_answer(origin, person, partner, (settings.width, settings.height))
        rows.append({
            "target": str(person.sample.target.relative_to(root)),
            "labels": list(person.sample.appearance),
            "partner": None if partner is None else str(partner.sample.target.relative_to(root)),
            "segmentation_iou": silhouette_iou(person.target, person.parsing),
            "lab": lab_lists(person.colours),
            "conditions": {c: score(image, person, partner, c, perfect) for c, image in images.items()},
        })  # fmt: skip
        if index < SAMPLE_PEOPLE:
            sheet_rows.append(sheet_cells(person, partner, images, (settings.width, settings.height)))
    return rows, sheet_rows


def sheet_cells(person: Person, partner: Person | None, images: dict[str, np.ndarray], size: tuple[int, int]) -> dict:
    """One row of samples.png: references | pose | generated per condition | ground truth | other person."""
    cells = {
        "references": references_tile(list(person.sample.appearance.values()), size),
        "pose": load_image(person.sample.densepose, "the densepose map"),
        **{condition: Image.fromarray(image) for condition, image in images.items()},
        "ground truth": Image.fromarray(person.target),
    }
    if partner is not None:
        cells["other person"] = Image.fromarray(partner.target)
    return cells


def write_report(out: Path, results: dict, table: str, targets: list[str], sheet: Image.Image) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    sheet.save(out / "samples.png")
    s = results["settings"]
    prompt = "each target's caption" if s["prompt"] is None else repr(s["prompt"])
    lines = [
        f"# Evaluation of `{results['weights']}` on `{results['data']}` ({results['split']})",
        "",
        f"{results['people']} people of the {results['split']} split, {s['height']} x {s['width']}, "
        f"{s['steps']} {s['scheduler']} steps, guidance {s['guidance_scale']:g}, seed {s['seed']}, "
        f"prompt: {prompt}; device {results['device']}.",
        "",
        table,
        "",
        "ΔE: CIEDE2000 between the generated image's mean colour (averaged in linear light) in the target's",
        "parsing region of each part (less its rim) and the reference colour: the mean colour of the target's",
        f"ground truth there; for `other: vs the references given`, {results['other_judged_by']}.",
        "About 1 is just noticeable; lower is better. IoU: the person segmented from the background",
        "against the target's parsing mask; the last row segments the ground truth itself.",
        "",
        "## Targets",
        "",
        *targets,
        "",
        "![references | pose | generated per condition | ground truth | the other person](samples.png)",
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device or default_device()
    try:
        samples = read_samples(args.data, args.split)
        if samples[0].parsing is None:
            raise ValueError(
                f"{args.data} has no parsing/ folder: the evaluation measures parts in the targets' parsing maps."
            )
        size = load_image(samples[0].target, "the first target image").size
        folder = model_folder(args.weights)
        print(f"evaluating {folder}", file=sys.stderr)
        settings = resolve_settings(args, model_defaults(folder), size)
        dataset = PartsDataset(args.data, args.split, (settings.height, settings.width), random_crop=False)
        pipe = load_pipeline(folder, device, parse_dtype(None, device))
        pipe.scheduler = make_scheduler(settings.scheduler, pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        rows, sheet_rows = evaluate(pipe, dataset, settings, args.data, args.limit, args.conditions)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {condition: summarise(rows, condition) for condition in CONDITIONS}
    run = {condition: summary[condition] for condition in args.conditions}
    segmentation_iou = float(np.mean([row["segmentation_iou"] for row in rows]))
    targets = check_targets(summary, segmentation_iou)
    table = markdown_table(run, segmentation_iou, len(rows))
    target_text = target_lines(targets)
    results = {
        "weights": str(folder),
        "data": str(args.data),
        "split": args.split,
        "device": device,
        "settings": asdict(settings),
        "people": len(rows),
        "segmentation_iou": segmentation_iou,
        "other_judged_by": OTHER_JUDGES[synthetic_origin(args.data) is not None],
        "conditions": run,
        "targets": targets,
        "rows": rows,
    }
    columns = ["references", "pose", *args.conditions, "ground truth", "other person"]
    out = args.out or Path("docs") / f"eval-{folder.name}"
    write_report(
        out, results, table, target_text, samples_sheet(sheet_rows, columns, (settings.width, settings.height))
    )
    print(table)
    print("\n".join(target_text))
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'samples.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
