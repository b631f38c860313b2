"""Import ONNX Re-ID models as differentiable torch modules, and export zoo models to ONNX.

    from pixelfade_fast.models.onnx import load_onnx, export_onnx, OnnxInfo
    module, info = load_onnx("osnet.onnx")   # [B, 3, H, W] normalised batch -> [B, D] features

Design decisions

- Our own graph builder rather than a converter. Each ONNX node is translated once, at load time, into a
  torch.fx graph (builder.py; one handler module per op family in ops/). We tried onnx2torch 1.5.15 (the
  maintained converter) on the same files as tests/test_onnx_import.py: it failed on every zoo export of
  torch 2.13 (KeyError on Conv biases that the TorchScript exporter routes through Identity nodes after BN
  folding; no converter for Identity-19), on every torch.onnx.export(dynamo=True) export (ReduceMean-18,
  Reshape allowzero=1), and on AveragePool-19, Reduce*-18, Pad-18, Split-18, Size, GlobalMaxPool,
  LpNormalization, auto_pad SAME_*, Clip with only a max, and Conv-22. A pre-pass would have had to rewrite
  most real exports, and would still tie us to its op coverage; the builder is a few hundred lines over
  torch functions whose semantics the tests pin against onnxruntime.
- The result is a ``torch.fx.GraphModule`` (OnnxGraphModule). Conv / BatchNormalization / Gemm / MatMul
  with constant weights become real nn.Conv{1,2,3}d / nn.BatchNorm{1,2,3}d / nn.Linear submodules holding
  nn.Parameters; every other constant is a buffer. So ``.to(device)``, ``requires_grad_(False)`` and
  torch.compile work as for zoo models, and fx passes such as Conv+BN folding apply to the graph as it is
  (``torch.fx.experimental.optimization.fuse(module, no_trace=True)``). Passes should work on this graph
  directly: re-tracing it with ``fx.symbolic_trace`` stops at helpers (pooling, Slice, ...) that branch on
  tensor sizes.
- Everything computed from constants only is folded while building. Shape arithmetic on the batch size
  (Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains that exporters emit for a dynamic batch) stays in
  Python ints, so Reshape receives ints (SymInts under torch.compile, with no graph break) instead of a
  tensor it would have to read back.
- While building, every new node is run on an example batch (one image of the graph's size, or of the
  ``input_size`` metadata, or 256x128). That gives each value's rank without per-op shape rules (ONNX shape
  inference loses ranks after data-dependent Reshapes) and reports a graph that cannot run at load time.
- Eval semantics: Dropout is the identity, BatchNormalization uses the stored statistics whatever its
  training_mode says, and ``train(True)`` raises. The module returns only the graph's first output (further
  outputs are ignored), flattened to [B, D] when it has more dims ([B, D, 1, 1] heads). A graph exported
  with a fixed batch size b runs any batch in chunks of b (FixedBatch).
- Opsets 11 to 22 of the default domain; older files are refused with a message (several attributes became
  inputs at opsets 10 and 11). Resize, control flow (If / Loop) and other domains are not supported; an
  unsupported op raises a ValueError naming it, its node, the opset and the supported ops.
- ``onnx`` is imported only when a file is read or written (proto.import_onnx).
"""

from .export import export_onnx
from .info import OnnxInfo
from .load import load_onnx

__all__ = ["OnnxInfo", "export_onnx", "load_onnx"]
