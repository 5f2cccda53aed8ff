"""Hand-offs of segmentation models to the libraries users train with (segmentation-models-pytorch)."""
