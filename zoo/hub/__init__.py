"""The zoo of searched checkpoints.

bundle (config.json + model.safetensors + README.md card), archive (.tar/.zip, safe
extraction), card (model cards), registry (versioned registry.json files), download
(cache, resume, sha256, locking), api (from_pretrained / create_model), publish (push),
export (ONNX / TorchScript), facts (what each task tells the hub, and the ecosystem
bridges tasks register). CLI: ``python -m zoo.hub``.
"""
