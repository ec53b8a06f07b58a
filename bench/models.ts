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
  }
}
