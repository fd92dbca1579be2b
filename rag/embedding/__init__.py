"""Embedders: text to normalised vectors. sentence-transformers (torch), and the same model
exported to int8 for ONNX Runtime or OpenVINO; ``factory.make_embedder`` picks one."""
