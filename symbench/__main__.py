"""``python -m symbench``: the same as the ``symbench`` console script."""

from symbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
