/**
 * Helpers to define kernels: element-wise maps (one invocation per element of a chunk) and the
 * shape checks shared by the ops.
 */
import type { ElemType, Kernel, KernelBindingSpec, KernelParams, ParamType } from "../backend.ts"
import { ShapeError, type Runtime, type Tensor } from "../tensor.ts"

export const WG = 256

/** Entry point header for 1-D kernels dispatched with `grid1d`. */
export const main1d = (wg: number = WG) =>
  `@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${wg}u;`

export const binding = (name: string, access: "read" | "read_write" = "read", type: ElemType = "f32"): KernelBindingSpec => ({
  name,
  type,
  access
})

interface MapSpec<B extends string, P extends string> {
  readonly name: string
  readonly inputs: readonly B[]
  readonly outputs: readonly B[]
  readonly params?: readonly (readonly [P, ParamType])[]
  /** WGSL functions the body calls. */
  readonly helpers?: string
  /** WGSL statements for element `i` (u32); `bi` is the broadcast index of `b` when present. */
  readonly body: string
  /** The CPU reference for element `i`: `v` holds the bindings by name, `p` the parameters. */
  readonly cpu: (i: number, bi: number, v: Readonly<Record<B, Float32Array>>, p: KernelParams<P | "n" | "bcast">) => void
}

/**
 * An element-wise kernel over the `n` elements of one chunk. Param `bcast` (0 = none) makes
 * input `b` repeat along rows of that length; chunks start on row boundaries so `i % bcast` holds.
 */
export const mapKernel = <const B extends string, const P extends string = never>(spec: MapSpec<B, P>): Kernel<P | "n" | "bcast"> => ({
  name: spec.name,
  bindings: [...spec.inputs.map((n) => binding(n)), ...spec.outputs.map((n) => binding(n, "read_write"))],
  params: [["n", "u32"], ["bcast", "u32"], ...(spec.params ?? [])],
  wgsl: `${spec.helpers ?? ""}
${main1d()}
  if (i >= P.n) { return; }
  var bi = i;
  if (P.bcast != 0u) { bi = i % P.bcast; }
  ${spec.body}
}`,
  cpu: (views, p) => {
    const v = Object.fromEntries([...spec.inputs, ...spec.outputs].map((name) => [name, views.f32(name)])) as Record<B, Float32Array>
    const bc = p.bcast
    for (let i = 0; i < p.n; i++) spec.cpu(i, bc === 0 ? i : i % bc, v, p)
  }
})

export const shapeStr = (s: readonly number[]) => `[${s.join(",")}]`

export const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i])

export const requireShape = (cond: boolean, message: string): void => {
  if (!cond) throw new ShapeError({ message })
}

export const requireF32 = (op: string, ...ts: Tensor[]): void => {
  for (const t of ts) {
    t.assertLive()
    requireShape(t.dtype === "f32", `${op}: expected f32 tensor, got ${t.dtype} ${shapeStr(t.shape)}`)
  }
}

export const sigmoidWgsl = `fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }`
export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x))

/** Workgroup size of row kernels: one workgroup per row, reducing through shared memory. */
export const RW = 64

/** Shared-memory sum and max over the RW invocations of a row workgroup. */
export const rowReduceWgsl = `var<workgroup> red: array<f32, ${RW}>;
fn rowSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var w = ${RW / 2}u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn rowMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var w = ${RW / 2}u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`

/** Entry point of a row kernel dispatched with grid1d(rows, 1): `row` and lane `lid`. */
export const rowMain = `@compute @workgroup_size(${RW}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let lid = lidv.x;
  if (row >= P.rows) { return; }`

/**
 * rowSum/rowMax over subgroups: each subgroup reduces in registers (subgroupAdd/Max), its lane 0
 * stores the partial at its subgroup_id, and every invocation combines the partials. The subgroup
 * size varies by device (and may exceed RW, giving one subgroup); WebGPU's minimum of 4 lanes
 * bounds the partials to RW / 4. Needs `rowMainSubgroup`, which sets the private subgroup ids.
 */
const rowReduceSubgroupWgsl = `var<workgroup> red: array<f32, ${RW / 4}>;
var<private> sgLane: u32;
var<private> sgId: u32;
var<private> sgCount: u32;
fn rowSum(v: f32, lid: u32) -> f32 {
  let s = subgroupAdd(v);
  if (sgLane == 0u) { red[sgId] = s; }
  workgroupBarrier();
  var r = red[0];
  for (var i = 1u; i < ${RW / 4}u; i++) { if (i < sgCount) { r += red[i]; } }
  workgroupBarrier();
  return r;
}
fn rowMax(v: f32, lid: u32) -> f32 {
  let s = subgroupMax(v);
  if (sgLane == 0u) { red[sgId] = s; }
  workgroupBarrier();
  var r = red[0];
  for (var i = 1u; i < ${RW / 4}u; i++) { if (i < sgCount) { r = max(r, red[i]); } }
  workgroupBarrier();
  return r;
}`

/** `rowMain` with the subgroup builtins the subgroup reductions read. */
const rowMainSubgroup = `@compute @workgroup_size(${RW}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>, @builtin(subgroup_invocation_id) sgLaneIn: u32, @builtin(subgroup_id) sgIdIn: u32, @builtin(num_subgroups) sgCountIn: u32) {
  sgLane = sgLaneIn;
  sgId = sgIdIn;
  sgCount = sgCountIn;
  let row = wid.x + wid.y * nwg.x;
  let lid = lidv.x;
  if (row >= P.rows) { return; }`

/** A row kernel in its two reductions: shared memory (every device) and subgroups (where the backend has them). */
export interface RowKernels<P extends string> {
  readonly shared: Kernel<P>
  readonly subgroup: Kernel<P>
}

/**
 * Both reductions of a row kernel whose `body` follows `rowMain` (it reads `row`, `lid` and calls
 * rowSum/rowMax). The two share the CPU reference; the subgroup one is named `<name>_subgroup`.
 */
export const rowKernels = <const P extends string>(spec: Omit<Kernel<P>, "wgsl" | "enable"> & { readonly body: string }): RowKernels<P> => {
  const { body, ...kernel } = spec
  return {
    shared: { ...kernel, wgsl: `${rowReduceWgsl}\n${rowMain}\n${body}` },
    subgroup: { ...kernel, name: `${kernel.name}_subgroup`, enable: ["subgroups"], wgsl: `${rowReduceSubgroupWgsl}\n${rowMainSubgroup}\n${body}` }
  }
}

/** The subgroup variant where the backend has subgroups, else the shared-memory one. */
export const pickRowKernel = <P extends string>(rt: Runtime, k: RowKernels<P>): Kernel<P> =>
  rt.backend.features.subgroups ? k.subgroup : k.shared
