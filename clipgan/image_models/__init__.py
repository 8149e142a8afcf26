"""Image models: what turns parameters into a picture that CLIP guides."""
