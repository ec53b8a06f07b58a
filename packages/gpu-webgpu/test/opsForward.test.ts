/**
 * Forward meaning of the primitives, independently of the kernels: each op on the CPU engine
 * equals a direct float64 transcription of its textbook / Hugging Face definition
 * (|engine - host| <= 1e-5 + 1e-4 * |host|). Gradients are covered by ops.test.ts (finite
 * differences) and WebGPU by opsWebgpu.test.ts (equal to this CPU reference).
 */
import { expect, test } from "bun:test"
import { FastCheck as fc } from "effect"
import { CpuBackend, makeEngine } from "../src/index.ts"
import { rng } from "./opsCases.ts"

const e = makeEngine(new CpuBackend())

const randArray = (seed: number, n: number, lo = -1, hi = 1) => {
  const r = rng(seed)
  return Float32Array.from({ length: n }, () => lo + r() * (hi - lo))
}

const near = (got: Float32Array, want: ArrayLike<number>) => {
  expect(got.length).toBe(want.length)
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-5 + 1e-4 * Math.abs(want[i]!))) throw new Error(`[${i}]: engine ${got[i]} vs host ${want[i]}`)
  }
}

const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 })
const dim = (max: number) => fc.integer({ min: 1, max })

test("matmul with transposes = sum_k op(A)[i,k] op(B)[k,j]", async () => {
  await fc.assert(
    fc.asyncProperty(dim(6), dim(6), dim(6), fc.boolean(), fc.boolean(), seed, async (m, k, n, ta, tb, s) => {
      const a = randArray(s, m * k)
      const b = randArray(s + 1, k * n)
      const A = (i: number, p: number) => (ta ? a[p * m + i]! : a[i * k + p]!)
      const B = (p: number, j: number) => (tb ? b[j * k + p]! : b[p * n + j]!)
      const want = Array.from({ length: m * n }, (_, x) => {
        let acc = 0
        for (let p = 0; p < k; p++) acc += A(Math.floor(x / n), p) * B(p, x % n)
        return acc
      })
      const out = e.matmul(e.fromArray(a, ta ? [k, m] : [m, k]), e.fromArray(b, tb ? [n, k] : [k, n]), { transA: ta, transB: tb })
      near(await e.read(out), want)
    }),
    { numRuns: 15 }
  )
})

test("rmsnorm = x / sqrt(mean(x^2) + eps) * w", async () => {
  await fc.assert(
    fc.asyncProperty(dim(4), dim(8), seed, async (N, D, s) => {
      const x = randArray(s, N * D)
      const w = randArray(s + 1, D, 0.5, 1.5)
      const want = Array.from({ length: N * D }, (_, i) => {
        const r = Math.floor(i / D)
        let ss = 0
        for (let j = 0; j < D; j++) ss += x[r * D + j]! ** 2
        return (x[i]! / Math.sqrt(ss / D + 1e-6)) * w[i % D]!
      })
      near(await e.read(e.rmsnorm(e.fromArray(x, [N, D]), e.fromArray(w, [D]), 1e-6)), want)
    }),
    { numRuns: 15 }
  )
})

test("rope = HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, inv_freq = theta^(-2i/hd)", async () => {
  await fc.assert(
    fc.asyncProperty(dim(2), dim(6), dim(3), dim(4), fc.constantFrom(10000, 500000), seed, async (B, T, H, half, theta, s) => {
      const hd = 2 * half
      const x = randArray(s, B * T * H * hd)
      const want = Array.from({ length: x.length }, (_, i) => {
        const d = i % hd
        const t = Math.floor(i / (H * hd)) % T
        const freq = t / theta ** ((2 * (d % half)) / hd)
        const rotated = d < half ? -x[i + half]! : x[i - half]!
        return x[i]! * Math.cos(freq) + rotated * Math.sin(freq)
      })
      near(await e.read(e.rope(e.fromArray(x, [B, T, H, hd]), theta)), want)
    }),
    { numRuns: 15 }
  )
})

test("attention = softmax(q k^T / sqrt(hd) + causal mask) v, query head h reads kv head h/(H/Hkv)", async () => {
  await fc.assert(
    fc.asyncProperty(dim(2), dim(5), dim(2), dim(3), dim(5), seed, async (B, T, Hkv, g, hd, s) => {
      const H = Hkv * g
      const q = randArray(s, B * T * H * hd)
      const k = randArray(s + 1, B * T * Hkv * hd)
      const v = randArray(s + 2, B * T * Hkv * hd)
      const want = new Float64Array(q.length)
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++)
          for (let t = 0; t < T; t++) {
            const kvh = Math.floor(h / g)
            const scores = Array.from({ length: T }, (_, u) => {
              if (u > t) return -Infinity
              let dot = 0
              for (let d = 0; d < hd; d++) dot += q[((b * T + t) * H + h) * hd + d]! * k[((b * T + u) * Hkv + kvh) * hd + d]!
              return dot / Math.sqrt(hd)
            })
            const mx = Math.max(...scores)
            const ex = scores.map((x) => Math.exp(x - mx))
            const z = ex.reduce((a, c) => a + c, 0)
            for (let d = 0; d < hd; d++) {
              let acc = 0
              for (let u = 0; u <= t; u++) acc += (ex[u]! / z) * v[((b * T + u) * Hkv + kvh) * hd + d]!
              want[((b * T + t) * H + h) * hd + d] = acc
            }
          }
      const out = e.attention(e.fromArray(q, [B, T, H, hd]), e.fromArray(k, [B, T, Hkv, hd]), e.fromArray(v, [B, T, Hkv, hd]))
      near(await e.read(out), want)
    }),
    { numRuns: 15 }
  )
})

test("softmax, silu, swiglu, embedding and cross-entropy (ignore index) follow their definitions", async () => {
  await fc.assert(
    fc.asyncProperty(dim(4), fc.integer({ min: 2, max: 7 }), seed, async (N, V, s) => {
      const x = randArray(s, N * V, -3, 3)
      const y = randArray(s + 1, N * V)
      const soft = Array.from({ length: N * V }, (_, i) => {
        const r = Math.floor(i / V)
        const row = Array.from(x.subarray(r * V, r * V + V))
        const mx = Math.max(...row)
        return Math.exp(x[i]! - mx) / row.reduce((a, c) => a + Math.exp(c - mx), 0)
      })
      const X = e.fromArray(x, [N, V])
      near(await e.read(e.softmax(X)), soft)
      const silu = Array.from(x, (z) => z / (1 + Math.exp(-z)))
      near(await e.read(e.silu(X)), silu)
      near(await e.read(e.swiglu(X, e.fromArray(y, [N, V]))), silu.map((z, i) => z * y[i]!))
      const ids = Int32Array.from({ length: N }, (_, i) => (s + 3 * i) % N)
      near(await e.read(e.embedding(X, e.fromArray(ids, [N]))), Array.from(ids).flatMap((id) => Array.from(x.subarray(id * V, id * V + V))))
      const targets = Int32Array.from({ length: N }, (_, i) => (i === 1 ? -100 : (s + i) % V))
      let total = 0
      let count = 0
      targets.forEach((t, r) => {
        if (t === -100) return
        total -= Math.log(soft[r * V + t]!)
        count++
      })
      near(await e.read(e.crossEntropy(X, e.fromArray(targets, [N]))), [count === 0 ? 0 : total / count])
    }),
    { numRuns: 15 }
  )
})
