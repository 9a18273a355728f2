"""Parts2Whole: a person generated from reference images of their parts and a DensePose pose."""

from .labels import MAX_PARTS, PART_LABELS
from .pipeline import Parts2WholePipeline, Parts2WholePipelineOutput
from .pose_guider import PoseGuider

__all__ = ["MAX_PARTS", "PART_LABELS", "Parts2WholePipeline", "Parts2WholePipelineOutput", "PoseGuider"]
