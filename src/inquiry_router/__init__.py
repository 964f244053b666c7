"""inquiry-router: routes customer inquiries to the right service desk."""

__version__ = "0.1.0"
