"""Exports the benchmark models to ONNX with a dynamic batch dim, with a seeded input and the
FP32 PyTorch reference output for it (run on the device: torch, torchvision, transformers).

    python3 bench/export_models.py OUT_DIR [resnet50 bert vit] [--small]

--small exports two-layer, narrow versions of BERT and ViT (same operator structure as the full
models, a few MB) for looking at the graphs and the fusions off the device.

Writes OUT_DIR/<name>.onnx, <name>.input_<k>.npy, <name>.ref.npy and <name>.json (input names,
shapes, output name).
"""
import json
import os
import sys

import numpy as np
import torch


def resnet50():
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet50().eval()
    x = torch.from_numpy(np.random.RandomState(0).randn(2, 3, 224, 224).astype(np.float32))
    return m, {"input": x}, ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}}


SMALL = "--small" in sys.argv


def vit():
    import torchvision
    torch.manual_seed(0)
    if SMALL:
        m = torchvision.models.VisionTransformer(image_size=224, patch_size=16, num_layers=2,
                                                 num_heads=3, hidden_dim=192, mlp_dim=768).eval()
    else:
        m = torchvision.models.vit_b_16().eval()
    # torchvision zero-initializes the classification head: every logit would be 0 and any
    # output would "match". Random head weights make the comparison mean something.
    with torch.no_grad():
        torch.nn.init.normal_(m.heads.head.weight, std=0.02)
        torch.nn.init.normal_(m.heads.head.bias, std=0.02)
    x = torch.from_numpy(np.random.RandomState(0).randn(2, 3, 224, 224).astype(np.float32))
    return m, {"input": x}, ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}}


class BertWrapper(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def bert():
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    cfg = BertConfig()  # bert-base: 12 layers, hidden 768, 12 heads
    if SMALL:
        cfg = BertConfig(vocab_size=1000, hidden_size=192, num_hidden_layers=2,
                         num_attention_heads=3, intermediate_size=768)
    cfg.attn_implementation = "eager"
    m = BertWrapper(BertModel(cfg, add_pooling_layer=False)).eval()
    rs = np.random.RandomState(0)
    ids = torch.from_numpy(rs.randint(0, cfg.vocab_size, size=(2, 128)).astype(np.int64))
    mask = torch.ones(2, 128, dtype=torch.int64)
    mask[1, 100:] = 0
    return (m, {"input_ids": ids, "attention_mask": mask}, ["hidden"],
            {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "hidden": {0: "batch"}})


MODELS = {"resnet50": resnet50, "bert": bert, "vit": vit}


def main():
    out = sys.argv[1]
    names = [n for n in sys.argv[2:] if not n.startswith("--")] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        m, inputs, out_names, dyn = MODELS[name]()
        args = tuple(inputs.values())
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(m, args, path, input_names=list(inputs), output_names=out_names,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)
        with torch.no_grad():
            ref = m(*args)
        np.save(os.path.join(out, name + ".ref.npy"), ref.numpy())
        for k, (n, t) in enumerate(inputs.items()):
            np.save(os.path.join(out, f"{name}.input_{k}.npy"), t.numpy())
        meta = {"inputs": {n: list(t.shape) for n, t in inputs.items()}, "output": out_names[0]}
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(meta, f)
        print(f"exported {name}: {os.path.getsize(path) / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
