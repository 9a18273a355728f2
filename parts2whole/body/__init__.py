"""A posable, dressable body with an exact DensePose renderer (docs/body.md)."""

from .render import Camera, Figure, SurfaceMaps, iuv_image, render_pose
from .skeleton import Build, Pose

__all__ = ["Build", "Camera", "Figure", "Pose", "SurfaceMaps", "iuv_image", "render_pose"]
