"""The archive fuzzer: small base archives, hypothesis-drawn mutations, a sandboxed reader.

- ``bases``: the object every base archive holds, one archive per container and compression
  setting, and each archive's layout (byte regions, ZIP members, JSON documents).
- ``mutations``: what can be done to an archive (bit flips, truncation, member swaps, hostile
  metadata...), as a hypothesis strategy per base archive, and how to apply one to a copy.
- ``worker``: the script a long-lived subprocess runs: it reads every case with every reading
  path of zoblib (``load``, memory-mapped ``load``, ``LazyArray`` slices, ``verify``) and says
  how each ended.
- ``runner``: the parent's side: it feeds the worker under a time and memory limit, restarts
  it when it dies, and judges each outcome against the reader's contract.
"""
