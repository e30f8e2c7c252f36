"""Image-quality scan: per-image measures and near-duplicate search."""
