"""Source of a function that leaves ~380 MiB freed in the middle of glibc's heap, for a
fresh interpreter (``python -c``) so nothing else shares that heap.

A freed 32 MiB block first raises glibc's threshold for handing blocks to mmap; then 400
blocks of 1 MiB go to its heap and every 20th is kept, so the heap cannot shrink from its
top: only ``malloc_trim`` gives the freed ones back."""

FRAGMENT_HEAP = """
def fragment_heap():
    big = bytearray(32 << 20)
    del big
    blocks = [bytearray(b"x" * (1 << 20)) for _ in range(400)]
    return blocks[::20]
"""
