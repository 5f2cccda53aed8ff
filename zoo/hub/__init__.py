"""The zoo of searched checkpoints.

bundle (config.json + model.safetensors + README.md card), archive (.tar/.zip, safe
extraction), card (model cards), registry (versioned registry.json files), download
(cache, resume, sha256, locking), api (from_pretrained / create_model), publish (push),
export (ONNX / TorchScript), timm_adapter (timm.create_model("zoo_NAME")), adapters
(what each task tells the hub). CLI: ``python -m zoo.hub``.
"""
