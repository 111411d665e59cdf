"""Writes small transformer blocks in the form torch.onnx.export gives them (opset 17, static
shapes, constants folded), for tests/passes/transformer_blocks_test.cc:

  bert_layer.onnx  HF BERT encoder layer, eager attention: Q/K/V projections, Reshape + Transpose
                   (K's two transposes merged into perm [0,2,3,1], as torch's peephole pass does),
                   MatMul / sqrt(dh) + extended mask (1 - mask, float32 min where it is 1) →
                   Softmax → MatMul, output projection, residual, LayerNorm written out
                   (ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta),
                   FFN with the erf GELU (Div by sqrt(2), Mul x, Mul 0.5), residual, LayerNorm.
  vit_block.onnx   torchvision ViT encoder block, pre-norm: LayerNorm, attention as exported from
                   scaled_dot_product_attention (Q and K^T each times sqrt(1/sqrt(dh)), no mask),
                   MLP with the GELU written as x * 0.5 first and Mul by 1/sqrt(2), and an
                   RMSNorm (x * Reciprocal(Sqrt(mean(x^2) + eps)) * w) at the end.

Run with Debian's python (onnx 1.12, numpy):  /usr/bin/python3 make_transformer_blocks.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

B, S, HID, HEADS, FFN = 2, 8, 16, 2, 32
DH = HID // HEADS
rng = np.random.RandomState(0)


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name, shape, scale=0.2):
        return self.const(name, (rng.randn(*shape) * scale).astype(np.float32))

    def op(self, op, inputs, **attrs):
        self.n += 1
        out = f"{op.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", **attrs))
        return out

    def f(self, name, v):
        return self.const(name, np.array(v, dtype=np.float32))

    def linear(self, x, p, n_in, n_out):
        w = self.weight(p + ".weight", (n_in, n_out))
        b = self.weight(p + ".bias", (n_out,), 0.05)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x, p):
        mean = self.op("ReduceMean", [x], axes=[-1])
        d = self.op("Sub", [x, mean])
        sq = self.op("Pow", [d, self.f(p + ".two", 2.0)])
        var = self.op("ReduceMean", [sq], axes=[-1])
        s = self.op("Sqrt", [self.op("Add", [var, self.f(p + ".eps", 1e-12)])])
        n = self.op("Div", [d, s])
        g = self.const(p + ".weight", (1 + 0.1 * rng.randn(HID)).astype(np.float32))
        b = self.const(p + ".bias", (0.1 * rng.randn(HID)).astype(np.float32))
        return self.op("Add", [self.op("Mul", [n, g]), b])

    def heads(self, x, p, perm):
        shape = self.const(p + ".shape", np.array([B, S, HEADS, DH], dtype=np.int64))
        return self.op("Transpose", [self.op("Reshape", [x, shape])], perm=perm)

    def merge_heads(self, x, p):
        t = self.op("Transpose", [x], perm=[0, 2, 1, 3])
        return self.op("Reshape", [t, self.const(p, np.array([B, S, HID], dtype=np.int64))])


def bert_layer():
    g = G()
    h = "hidden"
    # Extended mask, as transformers' _prepare_4d_attention_mask builds it: inverted = 1 - mask,
    # masked_fill(inverted.bool(), float32 min).
    m = g.op("Unsqueeze", ["attention_mask", g.const("mask_axes", np.array([1, 2], np.int64))])
    m = g.op("Cast", [m], to=TensorProto.FLOAT)
    m = g.op("Sub", [g.f("one", 1.0), m])
    cond = g.op("Cast", [m], to=TensorProto.BOOL)
    ext = g.op("Where", [cond, g.f("fmin", np.finfo(np.float32).min), m])
    q = g.heads(g.linear(h, "q", HID, HID), "q", [0, 2, 1, 3])
    kt = g.heads(g.linear(h, "k", HID, HID), "k", [0, 2, 3, 1])
    v = g.heads(g.linear(h, "v", HID, HID), "v", [0, 2, 1, 3])
    s = g.op("Div", [g.op("MatMul", [q, kt]), g.f("sqrt_dh", np.sqrt(DH))])
    p = g.op("Softmax", [g.op("Add", [s, ext])], axis=-1)
    ctx = g.merge_heads(g.op("MatMul", [p, v]), "ctx_shape")
    a = g.layer_norm(g.op("Add", [g.linear(ctx, "attn_out", HID, HID), h]), "ln1")
    f = g.linear(a, "ffn_in", HID, FFN)
    e = g.op("Erf", [g.op("Div", [f, g.f("sqrt2", 1.4142135)])])
    f = g.op("Mul", [g.op("Mul", [f, g.op("Add", [e, g.f("one_b", 1.0)])]), g.f("half", 0.5)])
    y = g.layer_norm(g.op("Add", [g.linear(f, "ffn_out", FFN, HID), a]), "ln2")
    g.nodes.append(helper.make_node("Identity", [y], ["out"], name="out"))
    inputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [B, S, HID]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [B, S])]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [B, S, HID])]
    return g, inputs, outputs


def vit_block():
    g = G()
    x = "x"
    n = g.layer_norm(x, "ln_1")
    r = g.f("sqrt_scale", np.sqrt(1.0 / np.sqrt(DH)))
    q = g.op("Mul", [g.heads(g.linear(n, "q", HID, HID), "q", [0, 2, 1, 3]), r])
    k = g.heads(g.linear(n, "k", HID, HID), "k", [0, 2, 1, 3])
    kt = g.op("Mul", [g.op("Transpose", [k], perm=[0, 1, 3, 2]), r])
    v = g.heads(g.linear(n, "v", HID, HID), "v", [0, 2, 1, 3])
    p = g.op("Softmax", [g.op("MatMul", [q, kt])], axis=-1)
    ctx = g.merge_heads(g.op("MatMul", [p, v]), "ctx_shape")
    x1 = g.op("Add", [g.linear(ctx, "out_proj", HID, HID), x])
    m = g.linear(g.layer_norm(x1, "ln_2"), "mlp_0", HID, FFN)
    half = g.op("Mul", [m, g.f("half", 0.5)])
    e = g.op("Erf", [g.op("Mul", [m, g.f("inv_sqrt2", 0.70710678)])])
    m = g.op("Mul", [half, g.op("Add", [g.f("one", 1.0), e])])
    x2 = g.op("Add", [g.linear(m, "mlp_3", FFN, HID), x1])
    ms = g.op("ReduceMean", [g.op("Mul", [x2, x2])], axes=[-1], keepdims=1)
    rs = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, g.f("rms_eps", 1e-6)])])])
    w = g.const("rms.weight", (1 + 0.1 * rng.randn(HID)).astype(np.float32))
    y = g.op("Mul", [w, g.op("Mul", [x2, rs])])
    g.nodes.append(helper.make_node("Identity", [y], ["out"], name="out"))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, HID])]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [B, S, HID])]
    return g, inputs, outputs


def save(name, build):
    global S
    g, inputs, outputs = build()
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    model = helper.make_model(graph, producer_name="kiln-tests",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    onnx.save(model, path)
    print(f"wrote {path}: {os.path.getsize(path)} bytes, {len(g.nodes)} nodes")


save("bert_layer.onnx", bert_layer)
S = 9  # ViT: class token + 8 patches
save("vit_block.onnx", vit_block)
