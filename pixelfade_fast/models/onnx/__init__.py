"""Import ONNX Re-ID models as differentiable torch modules, and export zoo models to ONNX.

    from pixelfade_fast.models.onnx import load_onnx, export_onnx, OnnxInfo
    module, info = load_onnx("osnet.onnx")   # module: [B, 3, H, W] normalised batch -> [B, D] features

Design (decision and evidence: docs/onnx_import.md).

- Our own graph builder, not a converter. Each ONNX node is translated once, at load time, into a
  torch.fx graph (builder.py; one handler module per op family in ops/). onnx2torch 1.5.15, the maintained
  converter, failed on exports that Re-ID and tracking toolkits produce (BatchNormalization on the [N, C]
  embedding, AveragePool from opset 19, ...); a pre-pass would have had to rewrite those graphs, and the
  importer would still depend on its op coverage and version pace.
- The result is a ``torch.fx.GraphModule`` (OnnxGraphModule) whose Conv / BatchNormalization / Gemm /
  MatMul nodes with constant weights are real nn.Conv{1,2,3}d / nn.BatchNorm{1,2,3}d / nn.Linear
  submodules with nn.Parameters; other constants are buffers. fx passes (Conv+BN folding,
  torch.fx.experimental.optimization.fuse) and torch.compile therefore treat imported models like zoo models,
  and ``.to(device)`` / ``requires_grad_(False)`` work as usual.
- Everything that depends only on constants is folded while building. Shape arithmetic on the batch
  (Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains, as exporters emit for a dynamic batch) stays in
  Python ints, so Reshape gets ints (SymInts under torch.compile) rather than a tensor to read back.
- Eval semantics: Dropout is the identity, BatchNormalization uses the stored statistics, ``train(True)``
  raises. The module returns the graph's first output only (further outputs are ignored), flattened to
  [B, D] if it has more dims. A graph with a fixed batch size runs any batch in chunks of that size.
- Opsets 11 to 22 of the default domain (older ones are refused with a message: several attributes became
  inputs at 10-11). ``onnx`` is imported lazily, only when a file is read or written.
"""

from .export import export_onnx
from .info import OnnxInfo
from .load import load_onnx

__all__ = ["OnnxInfo", "export_onnx", "load_onnx"]
