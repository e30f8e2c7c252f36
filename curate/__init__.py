"""curate: turn raw medical-imaging collections into training sets you can trust and reproduce."""

from curate.catalog import read_catalog, validate_catalog, write_catalog
from curate.imaging import read_image, try_read_image
from curate.loaders import get_loader, load
from curate.manifest import load_manifest

__version__ = "0.1.0"

__all__ = [
    "read_catalog",
    "write_catalog",
    "validate_catalog",
    "read_image",
    "try_read_image",
    "get_loader",
    "load",
    "load_manifest",
]
