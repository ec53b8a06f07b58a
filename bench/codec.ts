/**
 * SparseLoCo codec benchmark on a LLaMA-shaped 134M-parameter model (dim 768, 12 layers,
 * ffn 2048, vocab 32000, untied) with random pseudo-gradients. Prints numbers; asserts nothing.
 *
 *   bun bench/codec.ts [--peers 8,20] [--repeat 2]
 *
 * Encode = EF update + chunked top-k + quantization + index/code packing into the wire format.
 * Decode + aggregate = strict wire decode of every peer + median-clipped aggregation, tensor by tensor.
 */
import { Either } from "effect"
import { aggregate, compress, decode, defaultParams, encode } from "@covenant/sparseloco"
import type { IndexCoding, Manifest, TensorUpdate, UpdateMessage } from "@covenant/sparseloco"

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const peerCounts = arg("peers", "8,20").split(",").map(Number)
const repeat = Number(arg("repeat", "2"))

const dim = 768
const layers = 12
const ffn = 2048
const vocab = 32000
const manifest: Manifest = {
  tensors: [
    { name: "model.embed_tokens.weight", shape: [vocab, dim] },
    ...Array.from({ length: layers }, (_, i) => [
      { name: `model.layers.${i}.self_attn.q_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.k_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.v_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.o_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.mlp.gate_proj.weight`, shape: [ffn, dim] },
      { name: `model.layers.${i}.mlp.up_proj.weight`, shape: [ffn, dim] },
      { name: `model.layers.${i}.mlp.down_proj.weight`, shape: [dim, ffn] },
      { name: `model.layers.${i}.input_layernorm.weight`, shape: [dim] },
      { name: `model.layers.${i}.post_attention_layernorm.weight`, shape: [dim] },
    ]).flat(),
    { name: "model.norm.weight", shape: [dim] },
    { name: "lm_head.weight", shape: [vocab, dim] },
  ],
}
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1)
const total = manifest.tensors.reduce((a, t) => a + numelOf(t.shape), 0)

/** Gaussian-ish floats (sum of two uniforms from xorshift32), fast enough for 134M values. */
const fillRandom = (out: Float32Array, seed: number, scale: number): void => {
  let s = seed >>> 0 || 1
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    const a = (s >>> 0) / 4294967296
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    out[i] = (a + (s >>> 0) / 4294967296 - 1) * scale
  }
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20
const meta = (uid: number) => ({
  runId: "bench",
  window: 1,
  uid,
  hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  sampleDigest: "00".repeat(32),
  sampleCount: 1,
})

const fmt = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(1)} M`)

console.log(`model: ${manifest.tensors.length} tensors, ${(total / 1e6).toFixed(1)} M parameters; k = 64 per 64x64 chunk`)
console.log(`machine: ${navigator.hardwareConcurrency} cores, shared with other jobs while measuring (best of ${repeat})`)

// ---------------------------------------------------------------- encode
const efs = manifest.tensors.map((t) => new Float32Array(numelOf(t.shape)))
const deltas = manifest.tensors.map((t, i) => {
  const d = new Float32Array(numelOf(t.shape))
  fillRandom(d, 1000 + i, 1e-3)
  return d
})
let bestCompress = Infinity
let bestEncode: Record<IndexCoding, number> = { packed12: Infinity, rice: Infinity }
const sizes: Record<IndexCoding, number> = { packed12: 0, rice: 0 }
let peakExtra = 0
for (let r = 0; r < repeat; r++) {
  Bun.gc(true)
  const before = rssMB()
  let peak = before
  const t0 = performance.now()
  const updates: TensorUpdate[] = []
  manifest.tensors.forEach((t, i) => {
    updates.push(Either.getOrThrow(compress(efs[i]!, deltas[i]!, t.shape, defaultParams, t.name)).update)
    peak = Math.max(peak, rssMB())
  })
  const t1 = performance.now()
  bestCompress = Math.min(bestCompress, t1 - t0)
  for (const coding of ["rice", "packed12"] as const) {
    const t2 = performance.now()
    const msg: UpdateMessage = { meta: meta(0), tensors: updates.map((update) => ({ coding, update })) }
    const bytes = Either.getOrThrow(encode(msg))
    bestEncode = { ...bestEncode, [coding]: Math.min(bestEncode[coding], performance.now() - t2) }
    sizes[coding] = bytes.length
    peak = Math.max(peak, rssMB())
  }
  peakExtra = Math.max(peakExtra, peak - before)
}
console.log(`\nwire size at k=64/4096 (whole model, header + checksum + signature included):`)
for (const coding of ["packed12", "rice"] as const) {
  const bpp = (sizes[coding] * 8) / total
  console.log(`  ${coding.padEnd(8)} ${(sizes[coding] / 2 ** 20).toFixed(2)} MiB, ${bpp.toFixed(4)} bits/param, ${(32 / bpp).toFixed(1)}x smaller than fp32`)
}
console.log(`\nencode (EF + top-k + quantize): ${(bestCompress / 1e3).toFixed(2)} s = ${fmt((total / bestCompress) * 1e3)} params/s`)
for (const coding of ["rice", "packed12"] as const) {
  const t = bestCompress + bestEncode[coding]
  console.log(`encode + pack (${coding}): ${(t / 1e3).toFixed(2)} s = ${fmt((total / t) * 1e3)} params/s (packing alone ${bestEncode[coding].toFixed(0)} ms)`)
}
console.log(`peak extra RSS while encoding: ${peakExtra.toFixed(0)} MB (reference PyTorch: ~230 MB)`)
efs.length = 0
deltas.length = 0
Bun.gc(true)

// ---------------------------------------------------------------- decode + aggregate
const peerMessages = (P: number, coding: IndexCoding): Uint8Array[] => {
  const out: Uint8Array[] = []
  for (let p = 0; p < P; p++) {
    const updates = manifest.tensors.map((t, i) => {
      const n = numelOf(t.shape)
      const common = new Float32Array(n)
      fillRandom(common, 77 + i, 1e-3)
      const own = new Float32Array(n)
      fillRandom(own, 5000 + p * 1000 + i, 1e-3)
      for (let j = 0; j < n; j++) common[j] = common[j]! + own[j]!
      return Either.getOrThrow(compress(new Float32Array(n), common, t.shape, defaultParams, t.name)).update
    })
    out.push(Either.getOrThrow(encode({ meta: meta(p), tensors: updates.map((update) => ({ coding, update })) })))
  }
  return out
}

const maxNumel = Math.max(...manifest.tensors.map((t) => numelOf(t.shape)))
const outBuf = new Float32Array(maxNumel)
for (const P of peerCounts) {
  for (const coding of ["rice", "packed12"] as const) {
    const msgs = peerMessages(P, coding)
    let best = Infinity
    let bestDecode = Infinity
    for (let r = 0; r < repeat; r++) {
      Bun.gc(true)
      const t0 = performance.now()
      const decoded = msgs.map((m) => Either.getOrThrow(decode(m, manifest)))
      const t1 = performance.now()
      manifest.tensors.forEach((t, i) => {
        const ups = decoded.map((d) => {
          const w = d.tensors[i]!
          if (w.coding === "f32") throw new Error("unexpected dense tensor")
          return w.update
        })
        Either.getOrThrow(aggregate(ups, { out: outBuf.subarray(0, numelOf(t.shape)) }))
      })
      const t2 = performance.now()
      best = Math.min(best, t2 - t0)
      bestDecode = Math.min(bestDecode, t1 - t0)
    }
    console.log(
      `decode + aggregate, ${P} peers, ${coding}: ${(best / 1e3).toFixed(2)} s = ${fmt(((total * P) / best) * 1e3)} params x peers/s (decode alone ${(bestDecode / 1e3).toFixed(2)} s)`,
    )
  }
}
console.log(`reference PyTorch on this machine: encode ~127 M params/s; decode+aggregate ~1.1 G (8 peers), ~1.9 G (20 peers) params x peers/s`)
