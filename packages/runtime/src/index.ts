export * from "./data/index.ts"
export * from "./report/index.ts"
