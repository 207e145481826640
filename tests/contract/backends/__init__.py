"""Cloud backends of the contract suite: one module per cloud (see ../conftest.py)."""
