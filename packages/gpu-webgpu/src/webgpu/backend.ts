/**
 * WebGPU backend over a GPUDevice (Dawn). Logical buffers are lists of GPUBuffers (one per chunk,
 * each within the binding limit) drawn from a size-keyed pool, so training steps reuse memory.
 *
 * Dispatches are recorded into one compute pass and submitted in batches (on upload, download,
 * sync, or when the uniform arena fills). Kernel parameters go to a uniform arena bound with a
 * dynamic offset, which lets bind groups be cached per (kernel, storage buffers).
 */
import { BackendError, chunkPieces, requireFeatures, type Backend, type BackendFeatures, type BufferId, type Dispatch, type Kernel } from "../backend.ts"
import { ChunkedBufferTable } from "../chunkedBuffers.ts"

interface CompiledKernel {
  readonly pipeline: GPUComputePipeline
  readonly layout: GPUBindGroupLayout
  readonly id: number
}

const SLOT = 256 // minUniformBufferOffsetAlignment upper bound
const PROFILE_SLOTS = 1024

interface Profiler {
  readonly querySet: GPUQuerySet
  readonly resolve: GPUBuffer
  /** Kernel names of the timed dispatches recorded but not yet submitted. */
  readonly pending: string[]
  readonly reads: Array<Promise<void>>
  readonly totals: Map<string, { calls: number; ms: number }>
}
const ARENA_SLOTS = 1024
const POOL_ALIGN = 256

/** The WGSL prelude the backend adds to every kernel: enable directives, storage bindings and the params uniform. */
export const kernelHeader = (k: Kernel): string => {
  const fields = k.params.length === 0 ? ["_unused: u32"] : k.params.map(([n, t]) => `${n}: ${t}`)
  const lines = [...(k.enable ?? []).map((ext) => `enable ${ext};`), `struct Params { ${fields.join(", ")} }`]
  k.bindings.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`)
  })
  lines.push(`@group(0) @binding(${k.bindings.length}) var<uniform> P: Params;`)
  return lines.join("\n")
}

export class WebGpuBackend implements Backend {
  readonly name: string
  readonly maxBindingBytes: number
  readonly kernelFamily: "tiled" | "blocked"
  readonly features: BackendFeatures
  private readonly buffers: ChunkedBufferTable<GPUBuffer>
  private readonly pool = new Map<number, GPUBuffer[]>()
  private readonly kernels = new Map<Kernel, CompiledKernel>()
  private readonly bindGroups = new Map<string, GPUBindGroup>()
  private readonly bufferIds = new WeakMap<GPUBuffer, number>()
  private nextBufferSerial = 1
  private encoder: GPUCommandEncoder | null = null
  private pass: GPUComputePassEncoder | null = null
  private readonly arena: GPUBuffer
  private readonly arenaData = new ArrayBuffer(SLOT * ARENA_SLOTS)
  private arenaUsed = 0
  private error: string | null = null
  private profiler: Profiler | null = null

  constructor(
    readonly device: GPUDevice,
    adapterDescription: string,
    maxBindingBytes?: number,
    kernelFamily?: "tiled" | "blocked",
    /**
     * At most what the device was created with (AcquiredDevice.features). Default: shader-f16 where
     * the device has it, subgroups off (whether WGSL has subgroup_id is not visible from the device).
     */
    features?: BackendFeatures
  ) {
    this.name = `webgpu (${adapterDescription})`
    this.kernelFamily = kernelFamily ?? (/llvmpipe|lavapipe|swiftshader/i.test(adapterDescription) ? "blocked" : "tiled")
    this.features = features ?? { shaderF16: device.features.has("shader-f16"), subgroups: false }
    if ((this.features.shaderF16 && !device.features.has("shader-f16")) || (this.features.subgroups && !device.features.has("subgroups"))) {
      throw new BackendError({ message: `features ${JSON.stringify(this.features)} exceed the device's (${[...device.features].join(", ")})` })
    }
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize)
    this.maxBindingBytes = Math.floor(Math.min(limit, maxBindingBytes ?? limit) / 4) * 4
    // Freed chunks go back to the pool for reuse, not to the device.
    this.buffers = new ChunkedBufferTable(this.maxBindingBytes, (bytes) => this.take(bytes), (g) => this.release(g))
    this.arena = device.createBuffer({ size: SLOT * ARENA_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
    device.addEventListener("uncapturederror", (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error
      this.error ??= e.message
    })
  }

  private check(): void {
    if (this.error !== null) {
      const message = this.error
      this.error = null
      throw new BackendError({ message: `WebGPU error: ${message}` })
    }
  }

  private take(bytes: number): GPUBuffer {
    const size = Math.ceil(bytes / POOL_ALIGN) * POOL_ALIGN
    const free = this.pool.get(size)
    const hit = free?.pop()
    if (hit !== undefined) return hit
    const b = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST
    })
    this.bufferIds.set(b, this.nextBufferSerial++)
    return b
  }

  private release(g: GPUBuffer): void {
    const list = this.pool.get(g.size)
    if (list === undefined) this.pool.set(g.size, [g])
    else list.push(g)
  }

  alloc(bytes: number, chunkBytes?: number): BufferId {
    return this.buffers.alloc(Math.max(4, Math.ceil(bytes / 4) * 4), chunkBytes)
  }

  chunkBytes(buf: BufferId): number {
    return this.buffers.get(buf).chunkBytes
  }

  byteLength(buf: BufferId): number {
    return this.buffers.get(buf).bytes
  }

  upload(buf: BufferId, data: Float32Array | Int32Array | Uint32Array, byteOffset = 0): void {
    const b = this.buffers.get(buf)
    this.flush()
    for (const p of chunkPieces(byteOffset, data.byteLength, b.chunkBytes)) {
      this.device.queue.writeBuffer(b.chunks[p.chunk]!, p.offset, data.buffer, data.byteOffset + p.srcOffset, p.bytes)
    }
  }

  async download(buf: BufferId, byteOffset = 0, bytes?: number): Promise<ArrayBuffer> {
    const b = this.buffers.get(buf)
    const n = bytes ?? b.bytes - byteOffset
    const out = new Uint8Array(n)
    if (n === 0) return out.buffer
    this.flush()
    const staging = this.device.createBuffer({ size: Math.ceil(n / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    const enc = this.device.createCommandEncoder()
    const pieces = chunkPieces(byteOffset, n, b.chunkBytes)
    for (const p of pieces) enc.copyBufferToBuffer(b.chunks[p.chunk]!, p.offset, staging, p.srcOffset, p.bytes)
    this.device.queue.submit([enc.finish()])
    try {
      await staging.mapAsync(GPUMapMode.READ)
      out.set(new Uint8Array(staging.getMappedRange(), 0, n))
      staging.unmap()
    } finally {
      staging.destroy()
    }
    this.check()
    return out.buffer
  }

  private compile(k: Kernel): CompiledKernel {
    const hit = this.kernels.get(k)
    if (hit !== undefined) return hit
    requireFeatures(k, this.name, this.features)
    const module = this.device.createShaderModule({ label: k.name, code: `${kernelHeader(k)}\n${k.wgsl}` })
    const layout = this.device.createBindGroupLayout({
      label: k.name,
      entries: [
        ...k.bindings.map((b, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b.access === "read" ? ("read-only-storage" as const) : ("storage" as const) }
        })),
        { binding: k.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" as const, hasDynamicOffset: true } }
      ]
    })
    const pipeline = this.device.createComputePipeline({
      label: k.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" }
    })
    const compiled = { pipeline, layout, id: this.kernels.size + 1 }
    this.kernels.set(k, compiled)
    return compiled
  }

  private writeParams(k: Kernel, params: Readonly<Record<string, number>>): number {
    if (this.arenaUsed === ARENA_SLOTS) this.flush()
    const slot = this.arenaUsed++
    const view = new DataView(this.arenaData, slot * SLOT, SLOT)
    k.params.forEach(([name, type], i) => {
      const v = params[name]
      if (v === undefined || !Number.isFinite(v)) throw new BackendError({ message: `${k.name}: parameter ${name} is ${v}` })
      if (type === "f32") view.setFloat32(i * 4, v, true)
      else if (type === "i32") view.setInt32(i * 4, v, true)
      else {
        if (v < 0 || v > 0xffffffff || !Number.isInteger(v)) throw new BackendError({ message: `${k.name}: u32 parameter ${name} = ${v}` })
        view.setUint32(i * 4, v, true)
      }
    })
    return slot * SLOT
  }

  run(d: Dispatch): void {
    const k = d.kernel
    if (d.workgroups.some((w) => w === 0)) return
    const compiled = this.compile(k)
    const buffers = k.bindings.map((spec) => {
      const bnd = d.bindings[spec.name]
      if (bnd === undefined) throw new BackendError({ message: `${k.name}: binding ${spec.name} missing` })
      const chunk = this.buffers.get(bnd.buf).chunks[bnd.chunk]
      if (chunk === undefined) throw new BackendError({ message: `${k.name}: chunk ${bnd.chunk} of ${spec.name} out of range` })
      return chunk
    })
    const offset = this.writeParams(k, d.params)
    const key = `${compiled.id}:${buffers.map((b) => this.bufferIds.get(b)).join(",")}`
    let group = this.bindGroups.get(key)
    if (group === undefined) {
      group = this.device.createBindGroup({
        layout: compiled.layout,
        entries: [
          ...buffers.map((buffer, i) => ({ binding: i, resource: { buffer } })),
          { binding: buffers.length, resource: { buffer: this.arena, offset: 0, size: SLOT } }
        ]
      })
      if (this.bindGroups.size > 4096) this.bindGroups.clear()
      this.bindGroups.set(key, group)
    }
    const [x, y, z] = d.workgroups
    const prof = this.profiler
    if (prof !== null) {
      // one pass per dispatch, bracketed by timestamps
      if (prof.pending.length === PROFILE_SLOTS) this.flush()
      this.encoder ??= this.device.createCommandEncoder()
      const slot = prof.pending.length
      prof.pending.push(k.name)
      const pass = this.encoder.beginComputePass({
        timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 }
      })
      pass.setPipeline(compiled.pipeline)
      pass.setBindGroup(0, group, [offset])
      pass.dispatchWorkgroups(x, y, z)
      pass.end()
      return
    }
    if (this.pass === null) {
      this.encoder = this.device.createCommandEncoder()
      this.pass = this.encoder.beginComputePass()
    }
    this.pass.setPipeline(compiled.pipeline)
    this.pass.setBindGroup(0, group, [offset])
    this.pass.dispatchWorkgroups(x, y, z)
  }

  /**
   * Starts timing every dispatch on the GPU (timestamp queries; each dispatch then gets its own
   * pass, which costs some speed). Returns false when the device has no timestamp-query feature.
   */
  startProfiling(): boolean {
    if (!this.device.features.has("timestamp-query")) return false
    this.flush()
    if (this.profiler === null) {
      const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 * PROFILE_SLOTS })
      const resolve = this.device.createBuffer({ size: 16 * PROFILE_SLOTS, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC })
      this.profiler = { querySet, resolve, pending: [], reads: [], totals: new Map() }
    }
    return true
  }

  /** Stops timing and returns GPU milliseconds and dispatch counts per kernel name. */
  async stopProfiling(): Promise<ReadonlyMap<string, { readonly calls: number; readonly ms: number }>> {
    await this.sync()
    const prof = this.profiler
    if (prof === null) return new Map()
    await Promise.all(prof.reads)
    this.profiler = null
    prof.querySet.destroy()
    prof.resolve.destroy()
    return prof.totals
  }

  /**
   * Records the resolve of the profiled dispatches' timestamps into `enc`; the returned function,
   * called after the submit, reads them back and adds them up per kernel.
   */
  private collect(enc: GPUCommandEncoder): () => void {
    const prof = this.profiler
    if (prof === null || prof.pending.length === 0) return () => {}
    const names = prof.pending.splice(0)
    const n = names.length
    enc.resolveQuerySet(prof.querySet, 0, 2 * n, prof.resolve, 0)
    const staging = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    enc.copyBufferToBuffer(prof.resolve, 0, staging, 0, 16 * n)
    return () => {
      prof.reads.push(
        (async () => {
          await staging.mapAsync(GPUMapMode.READ)
          const t = new BigInt64Array(staging.getMappedRange())
          names.forEach((name, i) => {
            const ns = Number(t[2 * i + 1]! - t[2 * i]!)
            const prev = prof.totals.get(name) ?? { calls: 0, ms: 0 }
            prof.totals.set(name, { calls: prev.calls + 1, ms: prev.ms + Math.max(0, ns) / 1e6 })
          })
          staging.unmap()
          staging.destroy()
        })()
      )
    }
  }

  /** Submits recorded dispatches, after uploading their parameters. */
  private flush(): void {
    if (this.encoder === null) return
    this.pass?.end()
    const afterSubmit = this.collect(this.encoder)
    this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed * SLOT)
    this.device.queue.submit([this.encoder.finish()])
    afterSubmit()
    this.pass = null
    this.encoder = null
    this.arenaUsed = 0
  }

  free(buf: BufferId): void {
    this.buffers.free(buf)
  }

  liveBuffers(): number {
    return this.buffers.size
  }

  async sync(): Promise<void> {
    this.flush()
    await this.device.queue.onSubmittedWorkDone()
    this.check()
  }

  /** Drops pooled (free) GPU buffers, e.g. between phases with different shapes. */
  trimPool(): void {
    for (const list of this.pool.values()) for (const g of list) g.destroy()
    this.pool.clear()
    this.bindGroups.clear()
  }

  destroy(): void {
    this.flush()
    // live chunks return to the pool first, so trimPool destroys them with the free ones
    this.buffers.clear()
    this.trimPool()
    this.arena.destroy()
  }
}
