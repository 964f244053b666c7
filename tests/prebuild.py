"""What the test workers share, made once beside them (`python -m tests.prebuild`, started by
the pytest-xdist controller): multilingual-e5-small converted, then the shared trained model."""

from __future__ import annotations

from .conftest import build_encoders, build_trained, shared_folder


def main() -> None:
    shared = shared_folder()
    if shared is None:
        raise SystemExit("no shared folder: the test session sets one under pytest-xdist")
    build_encoders()
    build_trained(shared / "trained")


if __name__ == "__main__":
    main()
