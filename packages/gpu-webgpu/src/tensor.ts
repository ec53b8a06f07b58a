/**
 * Tensors: a shape, a dtype and a reference-counted storage on a backend, plus the autograd node
 * that produced it.
 *
 * Final API notes for users of the engine (deviations from / additions to the agreed API):
 * - Every op is synchronous (it enqueues kernels); only `read`/`download`/`gradNorm` are async.
 * - `engine.backward(loss)` frees the graph: every intermediate (non-leaf) tensor reachable from
 *   `loss`, and everything saved for backward, is disposed, except `loss` itself. Reading such an
 *   intermediate afterwards fails with a `TensorError`. Keep what you need with `.read()` first.
 * - `engine.tidy(f)` disposes every tensor created inside `f` except the ones `f` returns (a tensor,
 *   an array or a record of tensors), gradients / optimiser state made inside it, and whatever the
 *   autograd graph of a returned tensor still needs: those are handed to the graph and freed by
 *   `backward`. So `const loss = engine.tidy(() => model(x)); engine.backward(loss); loss.dispose()`
 *   leaks nothing. (Without a backward, run the forward under `noGrad` so no graph is kept.)
 * - `engine.zeroGrad(params)` disposes and clears `.grad`.
 * - `new AdamWState()` holds the moments (created lazily on the first step); `state.dispose()`.
 * - Ops validate shapes and throw a `ShapeError` (a Data.TaggedError) on bad input.
 * - A tensor larger than the backend's binding limit is stored in row-aligned chunks. Every op
 *   accepts such tensors (operands chunked differently are re-laid-out by a copy; `reshape` is a
 *   free view unless the chunks would split the new rows, then a copy), except: `embedding` ids,
 *   `crossEntropy` targets, broadcast operands and norm weights must fit one binding, and
 *   `attention` needs one batch element ([T, heads, hd]) of each operand to fit one binding.
 * - Limits and conventions: attention head dim <= 256; `embedding` ids outside [0, V) read zero
 *   rows and get no gradient; `crossEntropy` targets outside [0, V) (the ignore index included)
 *   are ignored; a cached rope cos/sin table per (T, hd, theta) stays allocated (it shows in
 *   `liveBuffers()` once, not per step).
 * - WebGPU validation errors surface as a `BackendError` at the next `sync()`/`read()`.
 * - `backend.kernelFamily` picks workgroup-tiled matmul/attention kernels on real GPUs and
 *   register-blocked ones on CPU emulations (lavapipe); `EngineWebGpuWith({ kernels })` forces one.
 */
import { Data } from "effect"
import { BackendError, grid1d, type Backend, type Binding, type BufferId, type Kernel, type KernelParams } from "./backend.ts"

export class ShapeError extends Data.TaggedError("ShapeError")<{ readonly message: string }> {}
export class TensorError extends Data.TaggedError("TensorError")<{ readonly message: string }> {}

export type DType = "f32" | "i32"

/** A reference-counted backend buffer; views (reshape) share one. */
export class Storage {
  refs = 1
  constructor(
    readonly backend: Backend,
    readonly buf: BufferId,
    readonly bytes: number,
    readonly chunkBytes: number
  ) {}
  release(): void {
    this.refs--
    if (this.refs === 0) this.backend.free(this.buf)
  }
}

export type Attrs = Readonly<Record<string, number | boolean>>

/** What autograd records per op output: the rule is looked up by `op` in the derivative table. */
export interface GraphNode {
  readonly op: string
  readonly inputs: readonly Tensor[]
  /** Tensors saved for backward only (disposed with the graph). */
  readonly saved: readonly Tensor[]
  readonly attrs: Attrs
}

/**
 * A derivative rule: given the gradient of an op's output, the gradients of its inputs (null
 * where an input needs none). Runs with grad recording off; may return `grad` itself or views.
 */
export type DerivativeRule = (rt: Runtime, grad: Tensor, node: GraphNode, out: Tensor) => ReadonlyArray<Tensor | null>

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

export class Tensor {
  grad: Tensor | null = null
  node: GraphNode | null = null
  /** Set by `tidy` for tensors only a returned graph still references; backward frees them. */
  graphOwned = false
  private disposed = false

  constructor(
    readonly rt: Runtime,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly storage: Storage,
    private readonly leafRequiresGrad: boolean
  ) {}

  /** True for trainable leaves and for every op output that depends on one. */
  get requiresGrad(): boolean {
    return this.leafRequiresGrad || this.node !== null
  }
  get isLeaf(): boolean {
    return this.node === null
  }

  get size(): number {
    return numel(this.shape)
  }
  get isDisposed(): boolean {
    return this.disposed
  }
  /** Elements of the last dimension (1 for scalars). */
  get rowLength(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1]!
  }
  get chunkElems(): number {
    return this.storage.chunkBytes / 4
  }
  get chunks(): number {
    return Math.max(1, Math.ceil(this.size / this.chunkElems))
  }
  /** Elements in chunk `c`. */
  chunkSize(c: number): number {
    return Math.min(this.chunkElems, this.size - c * this.chunkElems)
  }
  binding(chunk = 0): Binding {
    this.assertLive()
    return { buf: this.storage.buf, chunk }
  }
  assertLive(): void {
    if (this.disposed) throw new TensorError({ message: `tensor [${this.shape.join(",")}] was disposed` })
  }

  async read(): Promise<Float32Array | Int32Array> {
    this.assertLive()
    const bytes = await this.storage.backend.download(this.storage.buf, 0, this.size * 4)
    return this.dtype === "f32" ? new Float32Array(bytes) : new Int32Array(bytes)
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.storage.release()
  }
}

/** Backend plus the engine-wide state that ops need: grad mode and tidy scopes. */
export class Runtime {
  gradEnabled = true
  readonly scopes: Array<Set<Tensor>> = []

  constructor(readonly backend: Backend) {}

  /**
   * Default chunking: as many whole "units" as fit in one binding, the unit being the largest
   * trailing block of dimensions that fits (a row, a [T,H,hd] batch element, ...), so chunks
   * stay aligned for the reshapes a model does ([n, dim] <-> [B, T, H, hd]).
   */
  chunkBytesFor(shape: readonly number[]): number {
    const bytes = Math.max(4, numel(shape) * 4)
    if (bytes <= this.backend.maxBindingBytes) return bytes
    // 1-D tensors have no row structure: any 4-byte boundary will do
    let unit = shape.length <= 1 ? 1 : shape[shape.length - 1]!
    for (let j = shape.length - 2; j >= 1; j--) {
      const bigger = unit * shape[j]!
      if (bigger * 4 > this.backend.maxBindingBytes) break
      unit = bigger
    }
    const rowBytes = unit * 4
    const rows = Math.floor(this.backend.maxBindingBytes / rowBytes)
    if (rows < 1) {
      throw new BackendError({ message: `a row of ${rowBytes} bytes exceeds the binding limit ${this.backend.maxBindingBytes}` })
    }
    return rows * rowBytes
  }

  /** A fresh, uninitialised tensor (contents are whatever the pool had). */
  empty(shape: readonly number[], dtype: DType = "f32", like?: Tensor, requiresGrad = false): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError({ message: `bad shape [${shape.join(",")}]` })
    }
    const bytes = Math.max(4, numel(shape) * 4)
    const chunkBytes =
      like !== undefined && like.size === numel(shape) ? like.storage.chunkBytes : this.chunkBytesFor(shape)
    const buf = this.backend.alloc(bytes, Math.min(chunkBytes, bytes))
    const t = new Tensor(this, shape, dtype, new Storage(this.backend, buf, bytes, Math.min(chunkBytes, bytes)), requiresGrad)
    this.track(t)
    return t
  }

  /** Registers a tensor with the innermost tidy scope. */
  track(t: Tensor): void {
    const scope = this.scopes[this.scopes.length - 1]
    if (scope !== undefined) scope.add(t)
  }

  /** Removes a tensor from every open tidy scope (it outlives them). */
  keep(t: Tensor): void {
    for (const s of this.scopes) s.delete(t)
  }

  run<P extends string>(kernel: Kernel<P>, bindings: Record<string, Binding>, params: KernelParams<P>, workgroups: readonly [number, number, number]): void {
    this.backend.run({ kernel, bindings, params, workgroups })
  }

  run1d<P extends string>(kernel: Kernel<P>, bindings: Record<string, Binding>, params: KernelParams<P>, n: number, wg = 256): void {
    if (n === 0) return
    this.backend.run({ kernel, bindings, params, workgroups: grid1d(n, wg) })
  }

  /**
   * Records `out` as produced by `op` when grad mode is on and any input needs a gradient;
   * otherwise disposes `saved` right away (nothing will read them).
   */
  record(out: Tensor, op: string, inputs: readonly Tensor[], saved: readonly Tensor[] = [], attrs: Attrs = {}): Tensor {
    if (this.gradEnabled && inputs.some((t) => t.requiresGrad)) {
      out.node = { op, inputs, saved, attrs }
    } else {
      for (const s of saved) s.dispose()
    }
    return out
  }

  /** Runs `f` with gradient recording off. */
  noGrad<T>(f: () => T): T {
    const prev = this.gradEnabled
    this.gradEnabled = false
    try {
      return f()
    } finally {
      this.gradEnabled = prev
    }
  }

  /** A tensor sharing `src`'s storage with another shape. */
  view(src: Tensor, shape: readonly number[]): Tensor {
    src.assertLive()
    src.storage.refs++
    const t = new Tensor(this, shape, src.dtype, src.storage, false)
    this.track(t)
    return t
  }
}

export const sizeOf = numel
