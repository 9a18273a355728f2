"""An exact, depth-buffered ray caster for the body's solids, and the DensePose IUV map it gives.

The camera is orthographic (a full-body photo is far enough for perspective not to matter):
`Camera.yaw` walks it around the person (0 = in front, 90 = at the person's left side, 180 =
behind), `pitch` raises it. Each pixel's ray is intersected with every solid's quadric in the
solid's local frame (`_hits`), only inside the solid's screen bounding box; the nearest hit wins,
so the person occludes itself exactly (an arm across the torso, the far leg behind the near one).
"""

import copy
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .skeleton import Build, Frame, Pose, bone_frames, rotation
from .solids import ACCESSORY_TAG, Ellipsoid, Solid, Tube, body_solids


@dataclass
class Camera:
    """View of the person: angles in degrees; `zoom` 1 fits the person's height in the frame with a margin."""

    yaw: float = 0.0
    pitch: float = 0.0
    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)  # of the person's centre, in fractions of width and height
    margin: float = 0.06

    def rotation(self) -> np.ndarray:
        """World -> camera axes (camera +z towards the viewer)."""
        return rotation("x", self.pitch) @ rotation("y", -self.yaw)


@dataclass
class SurfaceMaps:
    """Per-pixel results of a render (H, W arrays); background: `solid` = -1, `tag` = 0.

    `local` is the hit point in its bone's frame at the posed position, `rest` the same point with
    the body standing at rest (arms and legs down): a pattern defined on `rest` stays on the
    garment as the body moves. `normal` is in camera space (+z towards the viewer).
    """

    solid: np.ndarray
    tag: np.ndarray
    u: np.ndarray
    v: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    local: np.ndarray
    rest: np.ndarray

    @property
    def body(self) -> np.ndarray:
        return (self.tag > 0) & (self.tag < ACCESSORY_TAG)


class Projection:
    """World <-> pixel mapping for one camera fitted to one posed body."""

    def __init__(self, camera: Camera, frames: dict[str, Frame], solids: list[Solid], size: tuple[int, int]) -> None:
        self.width, self.height = size
        self.rotation = camera.rotation()
        points = np.array([p for s in solids for p in solid_extent(s, frames[s.bone])]) @ self.rotation.T
        low, high = points[:, :2].min(0), points[:, :2].max(0)
        usable = 1.0 - 2 * camera.margin
        self.scale = camera.zoom * min(usable * self.width / (high[0] - low[0]), usable * self.height / (high[1] - low[1]))
        self.centre_xy = (low + high) / 2
        self.pixel_centre = np.array([self.width * (0.5 + camera.shift[0]), self.height * (0.5 + camera.shift[1])])

    def to_pixels(self, world: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) pixel coordinates (x right, y down)."""
        cam = world @ self.rotation.T
        return np.stack(
            [self.pixel_centre[0] + self.scale * (cam[:, 0] - self.centre_xy[0]),
             self.pixel_centre[1] - self.scale * (cam[:, 1] - self.centre_xy[1])], axis=-1,
        )  # fmt: skip

    def cropped(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> "Projection":
        """This view narrowed to `box` (left, top, right, bottom, in its pixels) and drawn at `size`.

        The box is scaled to fit `size` without distortion and centred in it.
        """
        left, top, right, bottom = box
        zoom = min(size[0] / (right - left), size[1] / (bottom - top))
        cropped = copy.copy(self)
        cropped.width, cropped.height = size
        cropped.scale = self.scale * zoom
        box_centre = np.array([left + right, top + bottom]) / 2
        cropped.pixel_centre = (self.pixel_centre - box_centre) * zoom + np.array(size) / 2
        return cropped

    def rays(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points on the rays through pixel centres (at camera z = 0) and the ray direction."""
        cam_x = (xs + 0.5 - self.pixel_centre[0]) / self.scale + self.centre_xy[0]
        cam_y = -(ys + 0.5 - self.pixel_centre[1]) / self.scale + self.centre_xy[1]
        cam = np.stack([cam_x, cam_y, np.zeros_like(cam_x)], axis=-1)
        return cam @ self.rotation, self.rotation[2]


def solid_extent(solid: Solid, frame: Frame) -> np.ndarray:
    """World corners of a box around the solid (8, 3)."""
    shape = solid.shape
    if isinstance(shape, Ellipsoid):
        low, high = np.subtract(shape.centre, shape.radii), np.add(shape.centre, shape.radii)
    else:
        r = max(shape.r0, shape.r1)
        rx, rz = r * shape.aspect[0], r * shape.aspect[1]
        ax, az = shape.axis
        low, high = np.array([ax - rx, shape.y0, az - rz]), np.array([ax + rx, shape.y1, az + rz])
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    return frame.origin + corners @ frame.rotation.T


def _nearest_root(a: np.ndarray, b: np.ndarray, c: np.ndarray, inside) -> tuple[np.ndarray, np.ndarray]:
    """Largest t (nearest the viewer) solving a t^2 + b t + c = 0 whose point passes `inside(t)`."""
    disc = b * b - 4 * a * c
    ok = (disc >= 0) & (np.abs(a) > 1e-12)
    root = np.sqrt(np.where(ok, disc, 0.0))
    safe_a = np.where(ok, a, 1.0)
    t_hit = np.full(a.shape, -np.inf)
    for t in ((-b - root) / (2 * safe_a), (-b + root) / (2 * safe_a)):
        valid = ok & inside(t)
        t_hit = np.where(valid & (t > t_hit), t, t_hit)
    return t_hit, np.isfinite(t_hit)


def _hits(shape, origin: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-quadric hits in the solid's frame: (t, hit, local gradient) for rays origin + t direction."""
    if isinstance(shape, Ellipsoid):
        radii = np.asarray(shape.radii)
        o = (origin - shape.centre) / radii
        d = direction / radii
        a = np.full(len(o), d @ d)
        t, hit = _nearest_root(a, 2 * o @ d, (o * o).sum(-1) - 1.0, lambda t: np.ones(t.shape, bool))
        point = origin + np.where(hit, t, 0.0)[:, None] * direction
        return t, hit, (point - shape.centre) / radii**2
    tube: Tube = shape
    slope = (tube.r1 - tube.r0) / (tube.y1 - tube.y0)
    ex, ez = tube.aspect
    ox, oy, oz = origin[:, 0] - tube.axis[0], origin[:, 1], origin[:, 2] - tube.axis[1]
    dx, dy, dz = direction
    r_at_origin = tube.r0 + slope * (oy - tube.y0)
    a = (dx / ex) ** 2 + (dz / ez) ** 2 - (slope * dy) ** 2
    b = 2 * (ox * dx / ex**2 + oz * dz / ez**2 - slope * dy * r_at_origin)
    c = (ox / ex) ** 2 + (oz / ez) ** 2 - r_at_origin**2
    t, hit = _nearest_root(np.full(len(ox), a), b, c, lambda t: (oy + t * dy >= tube.y0) & (oy + t * dy <= tube.y1))
    s = np.where(hit, t, 0.0)
    y = oy + s * dy
    gradient = np.stack([(ox + s * dx) / ex**2, -slope * (tube.r0 + slope * (y - tube.y0)), (oz + s * dz) / ez**2], -1)
    return t, hit, gradient


def _surface_coordinates(solid: Solid, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tag, U and V of hit points (N, 3) in the solid's frame."""
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    if isinstance(solid.shape, Tube):
        x, z = x - solid.shape.axis[0], z - solid.shape.axis[1]
    elif solid.split != "left_right":
        x, z = x - solid.shape.centre[0], z - solid.shape.centre[2]
    v0, v1 = solid.v_span
    v = np.clip((y - v0) / (v1 - v0), 0.0, 1.0)
    tag = np.full(len(local), solid.tag)
    if solid.split == "front_back":
        back = z < 0
        tag[back] = solid.back_tag
        angle = np.arctan2(x, np.abs(z))  # -90..90 degrees across the half
        u = np.where(back, -angle, angle) / np.pi + 0.5
    elif solid.split == "left_right":
        other = x < 0
        tag[other] = solid.back_tag
        u = np.arctan2(z, np.abs(x)) / np.pi + 0.5
    else:
        u = np.arctan2(x, z) / (2 * np.pi) + 0.5
    return tag, np.clip(u, 0.0, 1.0), v


def render_surface(
    solids: list[Solid], frames: dict[str, Frame], rest_frames: dict[str, Frame], projection: Projection
) -> SurfaceMaps:
    """Ray-cast `solids` (posed by `frames`) through every pixel; `rest_frames` give `rest`."""
    height, width = projection.height, projection.width
    maps = SurfaceMaps(
        solid=np.full((height, width), -1, np.int32),
        tag=np.zeros((height, width), np.int32),
        u=np.zeros((height, width), np.float32),
        v=np.zeros((height, width), np.float32),
        depth=np.full((height, width), -np.inf, np.float32),
        normal=np.zeros((height, width, 3), np.float32),
        local=np.zeros((height, width, 3), np.float32),
        rest=np.zeros((height, width, 3), np.float32),
    )
    for index, solid in enumerate(solids):
        frame = frames[solid.bone]
        box = projection.to_pixels(solid_extent(solid, frame))
        x0, y0 = np.maximum(np.floor(box.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(box.max(0)).astype(int) + 1, (width, height))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1]
        ys, xs = ys.ravel(), xs.ravel()
        world_points, world_direction = projection.rays(xs, ys)
        origin = (world_points - frame.origin) @ frame.rotation  # world -> local
        direction = world_direction @ frame.rotation
        t, hit, gradient = _hits(solid.shape, origin, direction)
        hit &= t > maps.depth[ys, xs]
        if not hit.any():
            continue
        ys, xs, t, gradient = ys[hit], xs[hit], t[hit], gradient[hit]
        local = origin[hit] + t[:, None] * direction
        tag, u, v = _surface_coordinates(solid, local)
        normal = gradient @ frame.rotation.T @ projection.rotation.T
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
        rest = rest_frames[solid.bone]
        maps.solid[ys, xs], maps.tag[ys, xs], maps.u[ys, xs], maps.v[ys, xs] = index, tag, u, v
        maps.depth[ys, xs], maps.normal[ys, xs] = t, normal
        maps.local[ys, xs] = local
        maps.rest[ys, xs] = rest.origin + local @ rest.rotation.T
    return maps


def iuv_image(maps: SurfaceMaps) -> Image.Image:
    """The DensePose IUV map of a render: R = V x 255, G = U x 255, B = part index, black background."""
    body = maps.body
    iuv = np.zeros((*maps.tag.shape, 3), np.uint8)
    iuv[..., 0] = np.where(body, np.rint(maps.v * 255), 0)
    iuv[..., 1] = np.where(body, np.rint(maps.u * 255), 0)
    iuv[..., 2] = np.where(body, maps.tag, 0)
    return Image.fromarray(iuv)


@dataclass
class Figure:
    """A posed body seen by a camera: what every renderer of this person needs."""

    build: Build
    pose: Pose
    camera: Camera
    size: tuple[int, int]  # (width, height)

    def __post_init__(self) -> None:
        self.frames = bone_frames(self.build, self.pose)
        self.rest_frames = bone_frames(self.build, Pose())
        self.body = body_solids(self.build)
        self.projection = Projection(self.camera, self.frames, self.body, self.size)

    def surface(self, extra: list[Solid] = ()) -> SurfaceMaps:
        return render_surface([*self.body, *extra], self.frames, self.rest_frames, self.projection)

    def crop(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> "Figure":
        """The same view narrowed to `box` (left, top, right, bottom, in this figure's pixels) at `size`.

        A crop rendered at any resolution: a part's close-up, or with the whole frame and twice the
        size, a supersampled render whose 2x2 pixel blocks are this figure's pixels.
        """
        cropped = copy.copy(self)
        cropped.size = size
        cropped.projection = self.projection.cropped(box, size)
        return cropped


def render_pose(
    pose: Pose | None = None,
    build: Build | None = None,
    camera: Camera | None = None,
    size: tuple[int, int] = (512, 768),
) -> Image.Image:
    """The DensePose IUV map (RGB, the released format) of a body in a pose, seen by a camera.

    `size` is (width, height). Defaults: an average body standing, seen from the front.
    """
    figure = Figure(build or Build(), pose or Pose(), camera or Camera(), size)
    return iuv_image(figure.surface())
