"""glibc malloc settings for a long-lived CPU inference process: keep freed tensors in the heap."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_NEVER = 2**31 - 1


def keep_freed_memory_in_heap() -> bool:
    """Stop glibc from handing large freed blocks back to the OS; False where the C library is not glibc.

    Beam search allocates and frees KV-cache tensors above glibc's mmap threshold at every step; each is
    then a fresh mapping whose pages the kernel zeroes again. On CPU that is about half the time of a batched
    recommend() (measured in bench/serve_load.py). The price is a process that keeps its peak memory.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    done = all(
        mallopt(option, ctypes.c_int(value)) == 1
        for option, value in ((_M_MMAP_THRESHOLD, _NEVER), (_M_TRIM_THRESHOLD, _NEVER), (_M_TOP_PAD, 256 * 2**20))
    )
    logger.info("glibc malloc: keeping freed memory in the heap (%s)", "on" if done else "not supported")
    return done
