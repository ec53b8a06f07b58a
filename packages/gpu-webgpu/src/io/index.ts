export * from "./errors.ts"
export * from "./files.ts"
export * from "./npy.ts"
export * from "./safetensors.ts"
