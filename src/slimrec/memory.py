"""Giving a finished stage's memory back to the operating system.

A pipeline runs its stages in one process, one after the other, and what a stage frees
stays with the process: glibc's allocator keeps freed blocks in its heaps for reuse
instead of returning them. The amazon-games run held 14 GB after distilling its student,
and the vLLM server it then started for the student's rationales left 0.1 GB of 24 free.
Measured on a short distillation (docs/benchmarks.md, "The aim end to end"): 7.4 GB
resident once it returned, 7.4 GB after a garbage collection, 0.8 GB after
``malloc_trim``. So the stage runner calls :func:`release_memory` after every stage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
from functools import cache


@cache
def glibc_malloc_trim():
    """glibc's ``malloc_trim``, or None (another libc: musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Collect unreachable objects, then hand the allocator's free pages back to the OS."""
    gc.collect()
    trim = glibc_malloc_trim()
    if trim is not None:
        trim(0)


def resident_bytes() -> int | None:
    """This process's resident memory (Linux), or None where /proc is absent."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")
