export * from "./io/index.ts"
