"""Synthetic people in the authors' dataset format, for training and testing without real photos.

`python -m parts2whole.synthetic --out DIR --people N --seed S` writes a dataset; see
`dataset.write_dataset` and the README.md it writes into DIR.
"""

from .dataset import ORIGIN_FILE, Sample, Shot, make_sample, part_crops, person_and_target_shot, swapped_photo, write_dataset
from .poses import random_camera, random_pose, reference_view

__all__ = [
    "ORIGIN_FILE",
    "Sample",
    "Shot",
    "make_sample",
    "part_crops",
    "person_and_target_shot",
    "random_camera",
    "random_pose",
    "reference_view",
    "swapped_photo",
    "write_dataset",
]
