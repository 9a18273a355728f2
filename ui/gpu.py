"""`gpu_task`: `spaces.GPU` on a Hugging Face ZeroGPU Space, nothing elsewhere."""

from collections.abc import Callable

try:
    import spaces
except ImportError:
    spaces = None


def gpu_task(duration: int) -> Callable[[Callable], Callable]:
    """Mark a function that uses the GPU; on ZeroGPU it gets one for up to `duration` seconds."""
    if spaces is None:
        return lambda function: function
    return spaces.GPU(duration=duration)
