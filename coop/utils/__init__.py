"""Small helpers every stage uses: one-line user errors, atomic writes, content hashes, the
project's folders, the seed recipe. They import nothing else from ``coop``."""
