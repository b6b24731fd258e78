"""The `rerank` command: options -> stage calls -> exit code. Never imports numpy or onnxruntime at import."""
