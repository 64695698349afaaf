"""Serving settings: `RequestLimits` (what one ranking call may ask, shared by the API and the demo) and
`ServeConfig` (those plus the HTTP API's batching and request-size limits). `lcrec demo` parses the first,
`lcrec serve` the second, field by field as command-line options.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _check_positive_integers(config: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class RequestLimits:
    """What one ranking call may ask for; beyond it the API answers 422 and the demo says why."""

    max_top_k: int = field(default=50, metadata={"help": "largest top_k a request may ask for"})
    max_num_beams: int = field(default=50, metadata={"help": "largest num_beams a request may ask for (>= max_top_k)"})
    max_history: int = field(default=100, metadata={"help": "longest history accepted, in items"})
    default_top_k: int = field(default=10, metadata={"help": "top_k of a request that does not give one"})

    def __post_init__(self) -> None:
        _check_positive_integers(self, tuple(item.name for item in fields(RequestLimits)))
        if self.max_num_beams < self.max_top_k:
            raise ValueError(
                f"{type(self).__name__}.max_num_beams ({self.max_num_beams}) must be >= max_top_k ({self.max_top_k}): "
                "beam search returns at most num_beams items"
            )
        if self.default_top_k > self.max_top_k:
            raise ValueError(
                f"{type(self).__name__}.default_top_k ({self.default_top_k}) must be <= max_top_k ({self.max_top_k})"
            )


@dataclass(frozen=True)
class ServeConfig(RequestLimits):
    """`RequestLimits` plus the HTTP API's micro-batching (a full queue answers 503) and request-size limits.

    `max_batch` counts histories per decoder call; `max_wait_ms` is how long the first waiting request may wait for
    others to join its batch; `max_queue` counts requests waiting to be batched. `max_batch=1, max_wait_ms=0`
    serves one request at a time (the unbatched baseline).
    """

    max_batch: int = field(default=32, metadata={"help": "most histories decoded together (requests share a batch)"})
    max_wait_ms: float = field(
        default=10.0,
        metadata={
            "help": "how long the first waiting request waits for others to join its batch (only when "
            "requests arrive together: a lone client is never held)"
        },
    )
    max_queue: int = field(default=256, metadata={"help": "most requests waiting; beyond it the API answers 503"})
    max_users_per_request: int = field(default=64, metadata={"help": "most histories in one request (more: 422)"})
    max_body_bytes: int = field(default=1_048_576, metadata={"help": "largest request body in bytes (larger: 413)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_integers(self, ("max_batch", "max_queue", "max_users_per_request", "max_body_bytes"))
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, (int, float)):
            raise ValueError(f"ServeConfig.max_wait_ms must be a number, got {self.max_wait_ms!r}")
        if not 0 <= self.max_wait_ms <= 60_000:  # also refuses NaN
            raise ValueError(f"ServeConfig.max_wait_ms must be between 0 and 60000, got {self.max_wait_ms}")
