"""Scores of generated people: each part's colour against reference colours, and the silhouette;
who is paired with whom for the "another person's references" condition; the averages and the
targets they are held to.

Colours are compared inside the TARGET's parsing regions: the pose is the target's, so that is
where a faithful generation puts each part.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from ..labels import PART_LABELS
from ..metrics import delta_e, iou, mean_lab
from ..training.data import PARSING_CLASSES, Sample
from .segmentation import person_mask

MIN_REGION_PIXELS = 12
"""Regions with fewer pixels (after the rim is removed) are skipped: their mean colour is noise."""

MAX_DELTA_E_RATIO = 0.5
"""Targets: ΔE with all references at most this times ΔE without any; ΔE to another person's
references at most this times ΔE to the target's own clothes."""

MIN_IOU = 0.8
"""Target: the mean silhouette IoU of every condition."""

MIN_SEGMENTATION_IOU = 0.9
"""Sanity: the segmentation of the ground-truth targets against their parsing maps. Below it the
silhouette IoU measures the segmentation rather than the model."""


def part_regions(parsing: np.ndarray, labels: Iterable[str]) -> dict[str, np.ndarray]:
    """Each label's region of a parsing map, less its one-pixel rim, where a part's colour blends
    into its neighbours' and a generation a pixel off would pick up the neighbour. Labels with fewer
    than `MIN_REGION_PIXELS` left are skipped."""
    regions = {}
    for label in labels:
        region = ndimage.binary_erosion(parsing == PARSING_CLASSES.index(label))
        if region.sum() >= MIN_REGION_PIXELS:
            regions[label] = region
    return regions


def region_colours(image: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CIELAB mean colour of an 8-bit RGB image in each region."""
    return {label: mean_lab(image, region) for label, region in regions.items()}


def colour_errors(
    image: np.ndarray, regions: dict[str, np.ndarray], colours: dict[str, np.ndarray]
) -> dict[str, float]:
    """CIEDE2000 between the image's mean colour in each region and the given colour of that label,
    for the labels that have both."""
    measured = region_colours(image, {label: region for label, region in regions.items() if label in colours})
    return errors_between(measured, colours)


def errors_between(measured: dict[str, np.ndarray], colours: dict[str, np.ndarray]) -> dict[str, float]:
    """CIEDE2000 between measured CIELAB colours and the given colour of each label, for the labels
    that have both (colours measured once can be held against several references)."""
    return {label: delta_e(colour, colours[label]) for label, colour in measured.items() if label in colours}


def silhouette_iou(image: np.ndarray, parsing: np.ndarray) -> float:
    """IoU of the person segmented in `image` and the person of a parsing map (every class but 0)."""
    return iou(person_mask(image), parsing > 0)


def pair_people(samples: Sequence[Sample]) -> list[int | None]:
    """For each sample, the index of another person with exactly its set of labels: the next one in
    file order, wrapping around, so that the pairing is fixed by the file. None where there is nobody."""
    partners = []
    for index, sample in enumerate(samples):
        order = [*range(index + 1, len(samples)), *range(index)]
        partners.append(next((j for j in order if interchangeable(sample, samples[j])), None))
    return partners


def interchangeable(sample: Sample, other: Sample) -> bool:
    """Same labels, different people: a sample that shares a reference image with another is the
    same person in another view."""
    same_labels = set(other.appearance) == set(sample.appearance)
    shared_references = set(other.appearance.values()) & set(sample.appearance.values())
    return same_labels and not shared_references


def mean_by_label(scores: Iterable[dict[str, float]]) -> tuple[dict[str, float], dict[str, int]]:
    """The mean of each label's scores over the people who have it, and how many they are."""
    values = defaultdict(list)
    for person in scores:
        for label, value in person.items():
            values[label].append(value)
    labels = [label for label in PART_LABELS if label in values]
    return {label: float(np.mean(values[label])) for label in labels}, {label: len(values[label]) for label in labels}


def summarise(rows: list[dict], condition: str) -> dict:
    """One condition over the people it was run for: mean ΔE per label (and counts), mean IoU."""
    measured = [row["conditions"][condition] for row in rows if condition in row["conditions"]]
    summary = {"people": len(measured), "iou": float(np.mean([m["iou"] for m in measured])) if measured else None}
    for metric in ("delta_e", "delta_e_own"):
        if any(metric in m for m in measured):
            summary[metric], summary[f"{metric}_count"] = mean_by_label(m[metric] for m in measured)
    return summary


def ratio_target(name: str, numerators: dict[str, float], denominators: dict[str, float]) -> dict:
    """Every label with both means: numerator <= `MAX_DELTA_E_RATIO` x denominator."""
    labels = [label for label in numerators if label in denominators]
    detail = ", ".join(f"{label} {numerators[label]:.1f} vs {denominators[label]:.1f}" for label in labels)
    passed = all(numerators[label] <= MAX_DELTA_E_RATIO * denominators[label] for label in labels) if labels else None
    return {"target": name, "passed": passed, "detail": detail or "not measured"}


def check_targets(summary: dict[str, dict], segmentation_iou: float) -> list[dict]:
    """The targets the model is held to, each passed (True / False) or not measured (None)."""
    other = summary["other"]
    ious = {condition: s["iou"] for condition, s in summary.items() if s["iou"] is not None}
    return [
        ratio_target(
            f"all references: ΔE <= {MAX_DELTA_E_RATIO:g} x ΔE without references, every label",
            summary["all"].get("delta_e", {}),
            summary["none"].get("delta_e", {}),
        ),
        ratio_target(
            f"another person's references: ΔE to them <= {MAX_DELTA_E_RATIO:g} x ΔE to the target's own clothes",
            other.get("delta_e", {}),
            other.get("delta_e_own", {}),
        ),
        {
            "target": f"silhouette IoU >= {MIN_IOU:g}, every condition",
            "passed": all(value >= MIN_IOU for value in ious.values()) if ious else None,
            "detail": ", ".join(f"{condition} {value:.3f}" for condition, value in ious.items()),
        },
        {
            "target": f"sanity: segmentation of the ground truth, IoU > {MIN_SEGMENTATION_IOU:g}",
            "passed": segmentation_iou > MIN_SEGMENTATION_IOU,
            "detail": f"{segmentation_iou:.3f}",
        },
    ]
