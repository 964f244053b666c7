"""`python -m inquiry_router`: the command line, as `inquiry-router` (how `serve` starts its
worker processes, whatever the console script is called or wherever it lies)."""

from .cli import app

app()
