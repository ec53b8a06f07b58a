/**
 * The small contract both backends (CPU reference, WebGPU) implement.
 *
 * A logical buffer may be larger than one storage binding allows (128 MiB on lavapipe), so the
 * backend stores it as consecutive chunks of `chunkBytes` each (the last one may be shorter).
 * A kernel binds exactly one chunk per binding; ops that touch huge tensors loop over chunks and
 * pass element offsets as parameters. Chunks always hold whole rows of the tensor that owns the
 * buffer, so row-wise kernels never see a split row.
 */
import { Data } from "effect"

export type BufferId = number & { readonly BufferId: unique symbol }

/**
 * Element type of a storage binding; "vec4<f32>" is f32 data read four at a time (CPU: f32 view);
 * "f16" needs the kernel to `enable` "f16" (CPU: the half floats' bits, `CpuViews.f16bits`).
 */
export type ElemType = "f32" | "i32" | "vec4<f32>" | "f16"

/** A WGSL extension a kernel enables; the backend must have the matching `BackendFeatures` flag. */
export type WgslExtension = "f16" | "subgroups"

/**
 * Optional capabilities, beyond WebGPU's core, that a backend runs kernels for. WebGPU: what the
 * adapter offered and the device was created with; CPU: what its kernels' references emulate.
 */
export interface BackendFeatures {
  /** WebGPU "shader-f16": f16 storage and arithmetic (`enable f16;`). */
  readonly shaderF16: boolean
  /** WebGPU "subgroups" with the subgroup_id builtin (`enable subgroups;`). */
  readonly subgroups: boolean
}

const featureOf: Readonly<Record<WgslExtension, keyof BackendFeatures>> = { f16: "shaderF16", subgroups: "subgroups" }

/** Fails with a BackendError naming the feature when `kernel` enables an extension the backend lacks. */
export const requireFeatures = (kernel: Kernel, backendName: string, features: BackendFeatures): void => {
  for (const ext of kernel.enable ?? []) {
    if (!features[featureOf[ext]]) {
      throw new BackendError({ message: `${kernel.name} needs the ${featureOf[ext]} feature, which ${backendName} does not have` })
    }
  }
}

export interface KernelBindingSpec {
  readonly name: string
  readonly type: ElemType
  readonly access: "read" | "read_write"
}

export type ParamType = "u32" | "i32" | "f32"

/** Typed views of the bound chunks, handed to a kernel's CPU reference. */
export interface CpuViews {
  f32(name: string): Float32Array
  i32(name: string): Int32Array
  /** An "f16" binding: IEEE half-precision bit patterns (src/f16.ts converts them). */
  f16bits(name: string): Uint16Array
}

/** The values of a kernel's parameters, by name: what `cpu` receives and a dispatch must supply. */
export type KernelParams<P extends string> = Readonly<Record<P, number>>

/**
 * One compute kernel: WGSL for the WebGPU backend and a CPU reference with the same meaning.
 * The backend prepends the binding declarations (`var<storage> <name>: array<type>`) and a
 * uniform `P` holding `params` in order, so `wgsl` holds only helpers and the entry point `main`.
 * `P` (the parameter names) types `cpu`'s `p` and the params of `Runtime.run`; define kernels with
 * `defineKernel` (or `mapKernel`) so it is inferred from `params`. `Kernel` alone (any names) is
 * what backends and dispatches hold.
 */
export interface Kernel<P extends string = string> {
  readonly name: string
  readonly bindings: readonly KernelBindingSpec[]
  readonly params: readonly (readonly [P, ParamType])[]
  readonly wgsl: string
  /** WGSL extensions the kernel enables (the backend puts the `enable` directives first). */
  readonly enable?: readonly WgslExtension[]
  // A method, so a Kernel<"rows" | "D"> is also a Kernel: backends pass it the dispatch's params,
  // which Runtime.run has checked against P.
  cpu(views: CpuViews, p: KernelParams<P>): void
}

/** A kernel whose parameter names are inferred from `params`, so `cpu`'s `p` has exactly those fields. */
export const defineKernel = <const P extends string>(kernel: Kernel<P>): Kernel<P> => kernel

/** A binding: one chunk of one logical buffer. */
export interface Binding {
  readonly buf: BufferId
  readonly chunk: number
}

export interface Dispatch {
  readonly kernel: Kernel
  readonly bindings: Readonly<Record<string, Binding>>
  readonly params: Readonly<Record<string, number>>
  /** Workgroup counts; the CPU backend ignores them. */
  readonly workgroups: readonly [number, number, number]
}

export interface Backend {
  /** "cpu" or "webgpu (<adapter description>)" */
  readonly name: string
  /** Largest chunk a kernel may bind. */
  readonly maxBindingBytes: number
  /**
   * Which matmul and attention kernels suit the device: "tiled" (operands staged through
   * workgroup memory, real GPUs) or "blocked" (registers fed straight from storage, CPU
   * emulations such as lavapipe, where workgroup memory only adds copies).
   */
  readonly kernelFamily: "tiled" | "blocked"
  /** Optional capabilities; ops pick kernels that need one only where it is present. */
  readonly features: BackendFeatures
  /** `chunkBytes` defaults to one chunk when `bytes` fits, else it must be given by the caller. */
  alloc(bytes: number, chunkBytes?: number): BufferId
  chunkBytes(buf: BufferId): number
  byteLength(buf: BufferId): number
  upload(buf: BufferId, data: Float32Array | Int32Array | Uint32Array, byteOffset?: number): void
  download(buf: BufferId, byteOffset?: number, bytes?: number): Promise<ArrayBuffer>
  run(d: Dispatch): void
  free(buf: BufferId): void
  liveBuffers(): number
  sync(): Promise<void>
  /** Releases device resources (pooled buffers, the device itself where owned). */
  destroy(): void
}

export class BackendError extends Data.TaggedError("BackendError")<{ readonly message: string }> {}

/** Chunk layout shared by both backends: which chunks cover a byte range. */
export const chunkCount = (bytes: number, chunkBytes: number): number =>
  Math.max(1, Math.ceil(bytes / chunkBytes))

/** Splits a byte range of a chunked buffer into per-chunk pieces. */
export const chunkPieces = (
  byteOffset: number,
  bytes: number,
  chunkBytes: number
): Array<{ chunk: number; offset: number; bytes: number; srcOffset: number }> => {
  const pieces: Array<{ chunk: number; offset: number; bytes: number; srcOffset: number }> = []
  let pos = byteOffset
  const end = byteOffset + bytes
  while (pos < end) {
    const chunk = Math.floor(pos / chunkBytes)
    const offset = pos - chunk * chunkBytes
    const n = Math.min(end - pos, chunkBytes - offset)
    pieces.push({ chunk, offset, bytes: n, srcOffset: pos - byteOffset })
    pos += n
  }
  return pieces
}

/** 1-D dispatch over `n` invocations that stays under the 65535 workgroups-per-dimension limit. */
export const grid1d = (n: number, workgroupSize: number): readonly [number, number, number] => {
  const groups = Math.max(1, Math.ceil(n / workgroupSize))
  if (groups <= 65535) return [groups, 1, 1]
  const y = Math.ceil(groups / 65535)
  return [Math.ceil(groups / y), y, 1]
}
