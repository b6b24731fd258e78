"""Running the pipeline on more than one machine: Ray Data (ray.py)."""
