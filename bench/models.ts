/** The models bench/train.ts (and its PyTorch twin, bench/torch_train.py) train: spec and batch. */
import type { LlamaSpec } from "@covenant/gpu-webgpu"

const base = { family: "llama", ropeTheta: 10000, normEps: 1e-5, dtype: "float32" } as const

export const benchModels: Record<string, { spec: LlamaSpec; batch: number; microBatch: number }> = {
  debug: {
    spec: { ...base, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 256, seqLen: 64, tiedEmbeddings: false },
    batch: 8,
    microBatch: 8
  },
  "25m": {
    // 8 layers at dim 384 with a tied 32000-token embedding: 24.9M parameters
    spec: { ...base, dim: 384, nLayers: 8, nHeads: 6, nKvHeads: 2, ffnDim: 1024, vocabSize: 32000, seqLen: 256, tiedEmbeddings: true },
    batch: 2,
    microBatch: 1
  },
  // for a GPU (bench/device.sh): the issue's ~150 M and ~1 B LLaMA shapes
  "150m": {
    // GPT-2-small-like widths, LLaMA blocks, untied 32000-token head: 134.1 M parameters (bench/codec.ts's shapes)
    spec: { ...base, dim: 768, nLayers: 12, nHeads: 12, nKvHeads: 12, ffnDim: 2048, vocabSize: 32000, seqLen: 1024, tiedEmbeddings: false },
    batch: 8,
    microBatch: 8
  },
  "1b": {
    // TinyLlama-like widths with 20 layers and a tied head: ~1.0 B parameters
    spec: { ...base, dim: 2048, nLayers: 20, nHeads: 16, nKvHeads: 8, ffnDim: 5632, vocabSize: 32000, seqLen: 1024, tiedEmbeddings: true },
    batch: 4,
    microBatch: 4
  }
}
