import { describe, expect, test } from "bun:test"
import {
  chunkEdge,
  chunkGrid,
  clampK,
  covenant72b,
  debug,
  dilocoBaseline,
  formatPlan,
  log2Binomial,
  modelTensors,
  parameterCount,
  plan,
  tensorWireSize,
  type CompressionSpec,
} from "../src/index.ts"

// By hand from protocol.md's table: 80 layers x (q, o 8192^2 each; k, v 1024 x 8192 each with 8 kv heads
// of head_dim 128; gate, up, down 8192 x 28672 each; two norms of 8192) + untied embeddings and lm_head
// 262144 x 8192 each + the final norm.
const covenant72bParameters =
  80 * (2 * 8192 * 8192 + 2 * 1024 * 8192 + 3 * 8192 * 28672 + 2 * 8192) + 2 * 262144 * 8192 + 8192

const packed12: CompressionSpec = { kind: "sparseloco", chunk: 64, topk: 64, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding: "packed12" }

describe("parameter count", () => {
  test("Covenant-72B has ~72.7B parameters (protocol.md), within 0.5 %", () => {
    const n = parameterCount(covenant72b().model)
    expect(Math.abs(n - 72.7e9) / 72.7e9).toBeLessThan(0.005)
    expect(n).toBe(covenant72bParameters)
  })

  test("the debug model, counted by hand", () => {
    // vocab 258, dim 64, 2 layers, head_dim 16, kv dim 2 x 16 = 32, ffn 128, untied:
    //   embeddings + lm_head  2 x 258 x 64                                   = 33,024
    //   per layer  q, o: 2 x 64 x 64 = 8,192; k, v: 2 x 32 x 64 = 4,096;
    //              gate, up, down: 3 x 64 x 128 = 24,576; two norms: 128     = 36,992
    //   2 layers                                                              = 73,984
    //   final norm                                                            = 64
    expect(parameterCount(debug().model)).toBe(33_024 + 73_984 + 64)
    expect(plan(debug()).parameters).toBe(107_072)
  })

  test("tied embeddings drop lm_head", () => {
    const m = debug().model
    const tied = { ...m, tiedEmbeddings: true }
    expect(parameterCount(m) - parameterCount(tied)).toBe(258 * 64)
    expect(modelTensors(tied).some((t) => t.name === "lm_head.weight")).toBe(false)
  })

  test("tensor names and shapes follow Hugging Face's LlamaForCausalLM", () => {
    const names = modelTensors(debug().model)
    expect(names[0]).toEqual({ name: "model.embed_tokens.weight", shape: [258, 64] })
    expect(names).toContainEqual({ name: "model.layers.1.self_attn.k_proj.weight", shape: [32, 64] })
    expect(names).toContainEqual({ name: "model.layers.0.mlp.down_proj.weight", shape: [64, 128] })
    expect(names).toContainEqual({ name: "model.layers.1.post_attention_layernorm.weight", shape: [64] })
    expect(names.at(-2)).toEqual({ name: "model.norm.weight", shape: [64] })
    expect(names.at(-1)).toEqual({ name: "lm_head.weight", shape: [258, 64] })
    expect(names.length).toBe(1 + 2 * 9 + 1 + 1)
  })
})

describe("chunking (sparseloco.md: largest divisor <= 64 per dimension)", () => {
  test("largest divisor", () => {
    expect(chunkEdge(8192, 64)).toBe(64)
    expect(chunkEdge(100, 64)).toBe(50)
    expect(chunkEdge(97, 64)).toBe(1)
    expect(chunkEdge(30, 64)).toBe(30)
  })
  test("grids", () => {
    expect(chunkGrid([8192, 8192], 64)).toEqual({ chunkLength: 4096, chunks: 128 * 128 })
    expect(chunkGrid([100, 30], 64)).toEqual({ chunkLength: 50 * 30, chunks: 2 })
    expect(chunkGrid([8192], 64)).toEqual({ chunkLength: 64, chunks: 128 })
  })
  test("above 2-D nothing is chunked: no grid, and the plan refuses such a tensor rather than size what the codec rejects", () => {
    expect(chunkGrid([4, 64, 64], 64)).toBeUndefined()
    expect(chunkGrid([2, 2, 2, 2], 64)).toBeUndefined()
    expect(() => tensorWireSize({ name: "conv", shape: [4, 64, 64] }, packed12)).toThrow(RangeError)
  })
  test("k per chunk is clamped as the codec clamps it: even, at least 2, at most the chunk length", () => {
    // 1-D [75]: rows of 25, so at most 24 values per row (not 25)
    expect(clampK(64, chunkGrid([75], 64)!.chunkLength)).toBe(24)
    expect(tensorWireSize({ name: "g", shape: [75] }, packed12).kept).toBe(3 * 24)
  })
})

describe("bytes on the wire", () => {
  test("packed12, one 8192 x 8192 matrix at k = 64", () => {
    // 16,384 chunks x 64 kept = 1,048,576 values: 12-bit indices 1,572,864 B, 2-bit values 262,144 B,
    // stats (shift, scale, 4 lookup entries) 24 B.
    expect(tensorWireSize({ name: "q", shape: [8192, 8192] }, packed12)).toEqual({
      indexBytes: 1_572_864,
      valueBytes: 262_144,
      statsBytes: 24,
      bytes: 1_835_032,
      kept: 1_048_576,
    })
  })

  test("k is capped at the chunk length: a 1-D norm of 8192 is sent whole", () => {
    expect(tensorWireSize({ name: "norm", shape: [8192] }, packed12).kept).toBe(8192)
  })

  test("Covenant-72B at k = 64/4096 is ~146x smaller than fp32 (sparseloco.md)", () => {
    const p = plan(covenant72b())
    expect(p.wire.ratioVsFp32).toBeGreaterThan(145.5)
    expect(p.wire.ratioVsFp32).toBeLessThan(146.3) // 32 / (14 x 64 / 4096) = 146.29 is the bound
    expect(p.wire.fp32Bytes).toBe(4 * p.parameters)
  })

  test("rice: log2 C(4096, 64) ~ 471 bits per chunk (sparseloco.md says ~470)", () => {
    // Python: math.log2(math.comb(4096, 64)) = 471.29108146206903
    expect(log2Binomial(4096, 64)).toBeCloseTo(471.29108146206903, 6)
    // Python: math.log2(math.comb(1500, 16)) = 124.44599288572
    expect(log2Binomial(1500, 16)).toBeCloseTo(124.44599288572, 6)
    const rice = { ...packed12, indexCoding: "rice" as const }
    const w = tensorWireSize({ name: "q", shape: [8192, 8192] }, rice)
    expect(w.indexBytes).toBe(Math.ceil((16_384 * 471.29108146206903) / 8))
    expect(plan({ ...covenant72b(), compression: rice }).wire.bytes).toBeLessThan(plan(covenant72b()).wire.bytes)
  })

  test("none sends 4 bytes per parameter", () => {
    const p = plan(dilocoBaseline(covenant72b()))
    expect(p.wire.bytes).toBe(4 * p.parameters)
    expect(p.wire.ratioVsFp32).toBe(1)
  })
})

describe("tokens, memory, time, budget", () => {
  test("Covenant-72B", () => {
    const p = plan(covenant72b())
    expect(p.tokens.perPeerPerWindow).toBe(192 * 30 * 2048)
    expect(p.tokens.perRound).toBe(20 * 192 * 30 * 2048)
    expect(p.time.windowMs).toBe(115 * 12_000)
    // bfloat16: params, grads, theta0, EF at 2 bytes each, AdamW's two moments at 2 bytes each.
    expect(p.memoryPerPeer.total).toBe(6 * 2 * p.parameters)
    expect(p.budget?.rounds).toBe(Math.ceil(1.1e12 / (20 * 192 * 30 * 2048)))
  })

  test("DiLoCo keeps a momentum buffer instead of EF", () => {
    const m = plan(dilocoBaseline(covenant72b())).memoryPerPeer
    expect(m.errorFeedback).toBe(0)
    expect(m.outerMomentum).toBe(m.parameters)
  })

  test("no budget, no budget rows", () => {
    const { tokenBudget: _omitted, ...spec } = debug()
    expect(plan(spec).budget).toBeUndefined()
    expect(formatPlan(plan(spec))).not.toContain("token budget")
  })

  test("formatPlan names the numbers", () => {
    const text = formatPlan(plan(covenant72b()))
    expect(text).toContain(covenant72bParameters.toLocaleString("en-US"))
    expect(text).toContain("146.1x")
  })
})
