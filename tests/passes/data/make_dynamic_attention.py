"""Writes bert_attention_dyn.onnx for tests/passes/shape_value_test.cc: a BERT self-attention
block in the form torch.onnx.export gives it with dynamic_axes on the batch (opset 17): every
Reshape target is computed from the input's shape,
  Concat(Unsqueeze(Gather(Shape(x), 0)), [S], [HEADS], [DH])
so the batch stays the symbol "batch". Q/K/V projections (MatMul + Add), Reshape, Transpose,
MatMul(Q, Transpose(K)) / sqrt(DH) + mask [batch, 1, 1, S] → Softmax → MatMul(V), Transpose,
Reshape back through Concat(Unsqueeze(Gather(Shape(ctx), 0)), [S], [HID]), output projection.
Small sizes (hidden 32, 2 heads, sequence 8) keep the file tiny; the weights are random.

Run with Debian's python (onnx 1.12, numpy):  /usr/bin/python3 make_dynamic_attention.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

S, HID, HEADS = 8, 32, 2
DH = HID // HEADS
rng = np.random.RandomState(0)
nodes, inits = [], []
count = [0]


def const(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), name))
    return name


def op(op_type, inputs, **attrs):
    count[0] += 1
    out = f"{op_type.lower()}_{count[0]}"
    nodes.append(helper.make_node(op_type, inputs, [out], name=f"/{op_type}_{count[0]}", **attrs))
    return out


def i64(name, values):
    return const(name, np.array(values, dtype=np.int64))


def linear(x, p):
    w = const(p + ".weight", (rng.randn(HID, HID) * 0.2).astype(np.float32))
    b = const(p + ".bias", (rng.randn(HID) * 0.05).astype(np.float32))
    return op("Add", [op("MatMul", [x, w]), b])


def batch_dim(x, p):
    shape = op("Shape", [x])
    g = op("Gather", [shape, const(p + ".idx", np.array(0, dtype=np.int64))], axis=0)
    return op("Unsqueeze", [g, i64(p + ".axes", [0])])


def heads(x, p):
    target = op("Concat", [batch_dim("x", p), i64(p + ".s", [S]), i64(p + ".h", [HEADS]),
                           i64(p + ".d", [DH])], axis=0)
    return op("Transpose", [op("Reshape", [x, target])], perm=[0, 2, 1, 3])


def main():
    q = heads(linear("x", "query"), "q")
    k = heads(linear("x", "key"), "k")
    v = heads(linear("x", "value"), "v")
    kt = op("Transpose", [k], perm=[0, 1, 3, 2])
    scores = op("Div", [op("MatMul", [q, kt]), const("sqrt_dh", np.array(np.sqrt(DH), np.float32))])
    probs = op("Softmax", [op("Add", [scores, "mask"])], axis=-1)
    ctx = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    target = op("Concat", [batch_dim(ctx, "o"), i64("o.s", [S]), i64("o.hid", [HID])], axis=0)
    out = linear(op("Reshape", [ctx, target]), "output")
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "bert_attention_dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", S, HID]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, 1, S])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", S, HID])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="make_dynamic_attention")
    model.ir_version = 8
    onnx.checker.check_model(model)
    here = os.path.dirname(os.path.abspath(__file__))
    onnx.save(model, os.path.join(here, "bert_attention_dyn.onnx"))


if __name__ == "__main__":
    main()
