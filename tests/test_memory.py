import gc
import subprocess
import sys
import weakref

import pytest

from slimrec.memory import glibc_malloc_trim, release_memory, resident_bytes
from tests.memory_fixtures import FRAGMENT_HEAP

# What release_memory gives back of a heap left fragmented, in an interpreter of its own.
FRAGMENTED_HEAP = (
    FRAGMENT_HEAP
    + """
from slimrec.memory import release_memory, resident_bytes
kept = fragment_heap()
before = resident_bytes()
release_memory()
print(before, resident_bytes())
"""
)


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="glibc's malloc_trim (Linux) only")
def test_freed_blocks_in_the_middle_of_the_heap_go_back_to_the_os():
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    before, after = map(int, out.stdout.split())
    # 380 of the 400 MiB were freed; the process held them until released.
    assert before - after > 300 << 20, (before, after)


def test_objects_kept_alive_only_by_a_cycle_are_collected():
    class Model:
        pass

    gc.disable()  # as if the collector had not come round yet
    try:
        model = Model()
        model.myself = model
        alive = weakref.ref(model)
        del model
        assert alive() is not None
        release_memory()
        assert alive() is None
    finally:
        gc.enable()


def test_resident_memory_is_read_where_proc_exists():
    rss = resident_bytes()
    assert rss is None or rss > 1 << 20
