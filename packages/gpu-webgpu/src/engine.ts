/**
 * The Engine binds a backend to the tensor ops and autograd. `Engine` is the Context.Tag;
 * `EngineCpu` is the CPU reference layer and `EngineWebGpu` (src/webgpu/layer.ts) the GPU one.
 */
import { Context, Effect, Layer } from "effect"
import type { Backend } from "./backend.ts"
import { CpuBackend } from "./cpu/backend.ts"
import { Runtime, ShapeError, Tensor, TensorError, sizeOf } from "./tensor.ts"

export { Tensor }
import { backward } from "./autograd.ts"
import { add, mul, sub } from "./ops/binary.ts"
import { scale } from "./ops/scale.ts"
import { mean, sum } from "./ops/reduce.ts"
import { reshape } from "./ops/reshape.ts"
import { matmul, type MatmulPrecision } from "./ops/matmul.ts"
import { embedding } from "./ops/embedding.ts"
import { rmsnorm } from "./ops/rmsnorm.ts"
import { rope } from "./ops/rope.ts"
import { attention } from "./ops/attention.ts"
import { silu } from "./ops/silu.ts"
import { swiglu } from "./ops/swiglu.ts"
import { softmax } from "./ops/softmax.ts"
import { crossEntropy } from "./ops/crossEntropy.ts"
import { fill } from "./ops/util.ts"
import { adamwStep, type AdamWHyper, type AdamWState } from "./optim/adamw.ts"
import { clipGradNorm, gradNorm } from "./optim/clip.ts"

export interface TensorOpts {
  readonly requiresGrad?: boolean
}

/** What `engine.tidy` may return and keep alive. */
export type Kept = Tensor | readonly Tensor[] | Readonly<Record<string, Tensor>> | void | number | undefined

export interface Engine {
  readonly backend: Backend
  fromArray(data: Float32Array | Int32Array, shape: readonly number[], opts?: TensorOpts): Tensor
  zeros(shape: readonly number[], opts?: TensorOpts): Tensor
  /**
   * op(a)·op(b). `precision: "f16"` (backends with `features.shaderF16`) multiplies f16 copies of
   * a and b with f32 accumulation, in the backward too; a, b, the result and the gradients stay f32.
   */
  matmul(a: Tensor, b: Tensor, opts?: { readonly transA?: boolean; readonly transB?: boolean; readonly precision?: MatmulPrecision }): Tensor
  add(a: Tensor, b: Tensor): Tensor
  sub(a: Tensor, b: Tensor): Tensor
  mul(a: Tensor, b: Tensor): Tensor
  scale(a: Tensor, s: number): Tensor
  sum(a: Tensor): Tensor
  mean(a: Tensor): Tensor
  reshape(a: Tensor, shape: readonly number[]): Tensor
  embedding(weight: Tensor, ids: Tensor): Tensor
  rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor
  rope(x: Tensor, theta: number): Tensor
  attention(q: Tensor, k: Tensor, v: Tensor): Tensor
  silu(x: Tensor): Tensor
  swiglu(gate: Tensor, up: Tensor): Tensor
  softmax(x: Tensor): Tensor
  crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex?: number): Tensor
  backward(loss: Tensor): void
  noGrad<T>(f: () => T): T
  /** Disposes every tensor created inside `f` except what it returns, grads and optimiser state. */
  tidy<T extends Kept>(f: () => T): T
  zeroGrad(params: readonly Tensor[]): void
  adamwStep(params: readonly Tensor[], state: AdamWState, hp: AdamWHyper): void
  gradNorm(params: readonly Tensor[]): Promise<number>
  clipGradNorm(params: readonly Tensor[], maxNorm: number): Promise<number>
  read(t: Tensor): Promise<Float32Array>
  write(t: Tensor, data: Float32Array): void
  sync(): Promise<void>
}

export const Engine = Context.GenericTag<Engine>("@covenant/gpu-webgpu/Engine")

const keptTensors = (v: Kept): Tensor[] => {
  if (v instanceof Tensor) return [v]
  if (Array.isArray(v)) return v.filter((x): x is Tensor => x instanceof Tensor)
  if (typeof v === "object" && v !== null) return Object.values(v).filter((x): x is Tensor => x instanceof Tensor)
  return []
}

export const makeEngine = (backend: Backend): Engine => {
  const rt = new Runtime(backend)
  const leaf = (shape: readonly number[], dtype: "f32" | "i32", opts?: TensorOpts): Tensor =>
    rt.empty(shape, dtype, undefined, opts?.requiresGrad === true)
  return {
    backend,
    fromArray: (data, shape, opts) => {
      if (sizeOf(shape) !== data.length) {
        throw new ShapeError({ message: `fromArray: ${data.length} values do not fill shape [${shape.join(",")}]` })
      }
      const dtype = data instanceof Int32Array ? "i32" : "f32"
      if (dtype === "i32" && opts?.requiresGrad === true) throw new TensorError({ message: "fromArray: i32 tensors cannot require grad" })
      const t = leaf(shape, dtype, opts)
      if (data.length > 0) backend.upload(t.storage.buf, data)
      return t
    },
    zeros: (shape, opts) => {
      const t = leaf(shape, "f32", opts)
      fill(rt, t, 0)
      return t
    },
    matmul: (a, b, opts) => matmul(rt, a, b, opts?.transA === true, opts?.transB === true, opts?.precision ?? "f32"),
    add: (a, b) => add(rt, a, b),
    sub: (a, b) => sub(rt, a, b),
    mul: (a, b) => mul(rt, a, b),
    scale: (a, s) => scale(rt, a, s),
    sum: (a) => sum(rt, a),
    mean: (a) => mean(rt, a),
    reshape: (a, shape) => reshape(rt, a, shape),
    embedding: (w, ids) => embedding(rt, w, ids),
    rmsnorm: (x, w, eps) => rmsnorm(rt, x, w, eps),
    rope: (x, theta) => rope(rt, x, theta),
    attention: (q, k, v) => attention(rt, q, k, v),
    silu: (x) => silu(rt, x),
    swiglu: (g, u) => swiglu(rt, g, u),
    softmax: (x) => softmax(rt, x),
    crossEntropy: (logits, targets, ignoreIndex) => crossEntropy(rt, logits, targets, ignoreIndex ?? -100),
    backward: (loss) => backward(rt, loss),
    noGrad: (f) => rt.noGrad(f),
    tidy: (f) => {
      const scope = new Set<Tensor>()
      rt.scopes.push(scope)
      let result: ReturnType<typeof f>
      try {
        result = f()
      } finally {
        rt.scopes.pop()
      }
      const keep = new Set(keptTensors(result))
      const graph = new Set<Tensor>()
      const stack = [...keep]
      while (stack.length > 0) {
        const node = stack.pop()!.node
        for (const x of [...(node?.inputs ?? []), ...(node?.saved ?? [])]) {
          if (!graph.has(x)) {
            graph.add(x)
            stack.push(x)
          }
        }
      }
      for (const t of scope) {
        if (keep.has(t)) rt.track(t)
        else if (graph.has(t)) t.graphOwned = true
        else t.dispose()
      }
      return result
    },
    zeroGrad: (params) => {
      for (const p of params) {
        p.grad?.dispose()
        p.grad = null
      }
    },
    adamwStep: (params, state, hp) => adamwStep(rt, params, state, hp),
    gradNorm: (params) => gradNorm(rt, params),
    clipGradNorm: (params, maxNorm) => clipGradNorm(rt, params, maxNorm),
    read: async (t) => {
      const data = await t.read()
      if (data instanceof Float32Array) return data
      throw new TensorError({ message: "read: tensor is i32; use tensor.read()" })
    },
    write: (t, data) => {
      t.assertLive()
      if (t.dtype !== "f32" || data.length !== t.size) {
        throw new ShapeError({ message: `write: ${data.length} f32 values into ${t.dtype} [${t.shape.join(",")}]` })
      }
      if (data.length > 0) backend.upload(t.storage.buf, data)
    },
    sync: () => backend.sync()
  }
}

/** CPU reference engine; `maxBindingBytes` can be lowered to exercise chunked big tensors cheaply. */
export const EngineCpuWith = (maxBindingBytes?: number): Layer.Layer<Engine> =>
  Layer.scoped(
    Engine,
    Effect.acquireRelease(
      Effect.sync(() => makeEngine(new CpuBackend(maxBindingBytes))),
      (e) => Effect.sync(() => e.backend.destroy())
    )
  )

export const EngineCpu: Layer.Layer<Engine> = EngineCpuWith()
