"""Model names -> files on disk: the registry, the Hugging Face cache and downloads, local int8 copies."""
