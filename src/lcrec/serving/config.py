"""`ServeConfig`: the limits and batching knobs shared by the HTTP API, the demo and the load benchmark."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeConfig:
    """Request limits (violations answer 422) and micro-batching settings (a full queue answers 503).

    `max_batch` counts histories per recommend() call; `max_wait_ms` is how long the first waiting
    request may wait for others to join its batch; `max_queue` counts requests waiting to be batched.
    `max_batch=1, max_wait_ms=0` serves one request at a time (the unbatched baseline).
    """

    max_batch: int = 32
    max_wait_ms: float = 10.0
    max_queue: int = 256
    max_top_k: int = 50
    max_num_beams: int = 50
    max_history: int = 100
    max_users_per_request: int = 64
    default_top_k: int = 10

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_top_k", "max_num_beams", "max_history", "max_users_per_request", "default_top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"ServeConfig.max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.max_num_beams < self.max_top_k:
            raise ValueError(f"ServeConfig.max_num_beams ({self.max_num_beams}) must be >= max_top_k ({self.max_top_k}): beam search returns at most num_beams items")
        if self.default_top_k > self.max_top_k:
            raise ValueError(f"ServeConfig.default_top_k ({self.default_top_k}) must be <= max_top_k ({self.max_top_k})")

    @classmethod
    def unbatched(cls, **overrides) -> "ServeConfig":
        """One request per recommend() call, no waiting: the baseline the batcher is measured against."""
        return cls(**{**overrides, "max_batch": 1, "max_wait_ms": 0.0})
